"""Fixtures shared by test layers: the task-leak check every in-process async test gets, the
opt-in soak layer, and two real agents: the loopback default (``agent``, what ``just serve``
runs) and one serving HTTPS with a required pairing token (``secure_agent``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from hypothesis import settings

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.ops.agent_process import AgentProcess
from pipeline.ops.network_audit import ENV_VAR as NETWORK_AUDIT_ENV

LEAK_GRACE_SECS = 5.0

# Hypothesis fails an example slower than 200 ms by default: a timing assertion, and one that
# failed on two loaded cores (847 ms). Speed belongs to the benchmark; examples here check values.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")
# The shared agents' logs, kept after the run: a failure in a test they served is read there.
LOGS = Path(__file__).resolve().parents[1] / "artifacts" / "logs"
SOAK_OPTION = "--soak"


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--soak`` runs the soak layer (tests/soak), which the default run skips."""
    parser.addoption(
        SOAK_OPTION,
        action="store_true",
        help="run the soak tests (hundreds of sessions against a real agent; `just soak`)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the soak marker; give each test worker a session of its own."""
    config.addinivalue_line("markers", "soak: long soak test, run only with --soak (just soak)")
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # The kernel's autogroup scheduler shares the CPU between sessions, then between the
        # processes of each. A test worker's callers must keep real time (their microphone, 10 ms
        # packets, pings) while the agents (each in a session of its own, AgentProcess) and
        # whatever else the machine runs are busy; in the session that started pytest, both
        # workers and any busy process there shared one slice. The controller still ends the
        # worker (its channel closes); only a terminal's Ctrl-C no longer reaches it directly.
        with contextlib.suppress(OSError):  # already a session or group leader: keep it
            os.setsid()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip soak tests unless asked for; give every asyncio test the task-leak check first."""
    skip_soak = pytest.mark.skip(reason="soak test: run `just soak` (pytest --soak tests/soak)")
    for item in items:
        if item.get_closest_marker("soak") and not config.getoption(SOAK_OPTION):
            item.add_marker(skip_soak)
        fixtures = getattr(item, "fixturenames", None)
        if (
            item.get_closest_marker("asyncio")
            and fixtures is not None
            and "no_leaked_tasks" not in fixtures
        ):
            # First, so it is set up before (and torn down after) the test's other fixtures.
            fixtures.insert(0, "no_leaked_tasks")


@pytest_asyncio.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """Fail the test if asyncio tasks it started are still alive once everything closed.

    Applied to every ``@pytest.mark.asyncio`` test (livekit/agents does the same); tasks still
    finishing their close get a few seconds.
    """
    before = set(asyncio.all_tasks())
    yield
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LEAK_GRACE_SECS
    while True:
        leaked = set(asyncio.all_tasks()) - before - {asyncio.current_task()}
        if not leaked or loop.time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert not leaked, "leaked tasks: " + ", ".join(sorted(repr(t.get_coro()) for t in leaked))


def keep_log(process: AgentProcess, name: str) -> None:
    """Move the agent's log to artifacts/logs/NAME.log (the pairing token is checked before);
    NAME-gwN.log under pytest-xdist, where each worker runs its own shared agents."""
    LOGS.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if process.log_path.exists():
        shutil.move(process.log_path, LOGS / (f"{name}-{worker}.log" if worker else f"{name}.log"))


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
    """One agent for the whole session, as `just serve` runs it: model loading is paid once.

    It runs under the network audit (RELIABILITY row 6): the agent and the llama.cpp server it
    starts record any socket call aimed at an address that is not this machine's (loopback or
    its own interface addresses, where a browser on this machine calls WebRTC from), and the
    whole session must record none.
    """
    audit_log = tmp_path_factory.mktemp("audit") / "network.log"
    audit_log.touch()
    os.environ[NETWORK_AUDIT_ENV] = str(audit_log)
    try:
        # Greedy decoding: the tests read an answer's words ("weather", "lamp"), and with the
        # default sampling the 0.5B model once answered the weather question about itself.
        process = AgentProcess(["--max-sessions", "2", "--llm-temperature", "0"])
        process.start(ready_timeout=300)
    finally:
        # Only the agent (and its children) inherit it; this process is not audited by file.
        del os.environ[NETWORK_AUDIT_ENV]
    try:
        yield process
    finally:
        code = process.stop()
        keep_log(process, "agent")
        assert code == 0, f"jetvoice serve exited with {code} on SIGINT"
        violations = audit_log.read_text()
        assert violations == "", f"the agent talked to another machine:\n{violations}"


@pytest.fixture(scope="session")
def secure_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    """`jetvoice serve --tls --require-token` on loopback, real models, its own state dir.

    Bound to loopback: its WebRTC talks to this machine's own addresses only (ice_policy.py).
    Shared by the browser test and the HTTPS loopback test (model loading is paid
    once); its certificate and token live in a temporary state directory. It runs under the
    network audit (RELIABILITY row 6): a real browser calling it must not make it talk to
    another machine.
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
        keep_log(process, "secure-agent")
        assert code == 0, f"jetvoice serve --tls exited with {code} on SIGINT"
        # Everything the agent wrote in the whole session (its output is not a terminal, so
        # the banner points to /pair instead of printing the link).
        assert token not in log, "the pairing token appeared in the agent's log"
        violations = audit_log.read_text()
        assert violations == "", f"the HTTPS agent talked to another machine:\n{violations}"
