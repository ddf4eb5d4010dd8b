"""Fixtures shared by test layers: a real agent serving HTTPS with a required pairing token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.agent_process import AgentProcess
from pipeline.network_audit import ENV_VAR as NETWORK_AUDIT_ENV


@pytest.fixture(scope="session")
def secure_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """`jetvoice serve --tls --require-token` on loopback, real models, its own state dir.

    Loopback only: the test machine's LAN address is never used, and the agent's ICE stays on
    127.0.0.1. Shared by the browser test and the HTTPS loopback test (model loading is paid
    once); its certificate and token live in a temporary state directory. It runs under the
    network audit (RELIABILITY row 6): a real browser calling it must not make it leave loopback.
    """
    try:
        profile_paths("cpu", ModelStore(default_models_dir()))
    except ModelUnavailableError as error:
        pytest.fail(f"cpu models missing (run `just setup`): {error}")
    audit_log = tmp_path_factory.mktemp("secure-audit") / "network.log"
    audit_log.touch()
    process = AgentProcess(
        ["--require-token", "--max-sessions", "2"],
        tls=True,
        env={NETWORK_AUDIT_ENV: str(audit_log)},
    )
    process.start(ready_timeout=300)
    token = process.token
    try:
        yield process
    finally:
        code = process.stop()
        log = process.log_path.read_text(errors="replace")
        process.log_path.unlink(missing_ok=True)
        assert code == 0, f"jetvoice serve --tls exited with {code} on SIGINT"
        # Everything the agent wrote in the whole session (its output is not a terminal, so
        # the banner points to /pair instead of printing the link).
        assert token not in log, "the pairing token appeared in the agent's log"
        violations = audit_log.read_text()
        assert violations == "", f"the HTTPS agent left loopback:\n{violations}"
