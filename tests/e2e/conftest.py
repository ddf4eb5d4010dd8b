"""A real ``jetvoice serve`` (cpu profile, real models, managed llama.cpp) shared by e2e tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.agent_process import AgentProcess
from pipeline.network_audit import ENV_VAR as NETWORK_AUDIT_ENV


@pytest.fixture(scope="session")
def cpu_models() -> ModelStore:
    """The cpu profile's store; the suite's set-up (`just test`) pulls it first."""
    store = ModelStore(default_models_dir())
    try:
        profile_paths("cpu", store)
    except ModelUnavailableError as error:
        pytest.fail(f"cpu models missing (run `just setup`): {error}")
    return store


@pytest.fixture(scope="session")
def agent(
    cpu_models: ModelStore, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AgentProcess]:
    """One agent for the whole session: model loading is paid once.

    It runs under the network audit (RELIABILITY row 6): the agent and the llama.cpp server it
    starts record any socket call aimed off loopback, and the whole session must record none.
    """
    audit_log = tmp_path_factory.mktemp("audit") / "network.log"
    audit_log.touch()
    os.environ[NETWORK_AUDIT_ENV] = str(audit_log)
    try:
        process = AgentProcess(["--max-sessions", "2"])
        process.start(ready_timeout=300)
    finally:
        # Only the agent (and its children) inherit it; this process is not audited by file.
        del os.environ[NETWORK_AUDIT_ENV]
    try:
        yield process
    finally:
        code = process.stop()
        process.log_path.unlink(missing_ok=True)
        assert code == 0, f"jetvoice serve exited with {code} on SIGINT"
        violations = audit_log.read_text()
        assert violations == "", f"the agent left loopback:\n{violations}"
