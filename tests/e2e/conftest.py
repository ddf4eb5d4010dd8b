"""A real ``jetvoice serve`` (cpu profile, real models, managed llama.cpp) shared by e2e tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.agent_process import AgentProcess


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
def agent(cpu_models: ModelStore) -> Iterator[AgentProcess]:
    """One agent for the whole session: model loading is paid once."""
    process = AgentProcess(["--max-sessions", "2"])
    process.start(ready_timeout=300)
    try:
        yield process
    finally:
        code = process.stop()
        process.log_path.unlink(missing_ok=True)
        assert code == 0, f"jetvoice serve exited with {code} on SIGINT"
