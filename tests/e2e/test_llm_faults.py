"""RELIABILITY row 11: the LLM server hangs, fails, cuts its stream or stalls.

A real `jetvoice serve` (real VAD, turn, Whisper, Kokoro, WebRTC) talks to a deliberately
misbehaving OpenAI-compatible server. In every case the user hears a short apology within the
LLM timeout plus one second more than a normal turn takes, and the next turn works.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from pipeline.agent_process import AgentProcess
from pipeline.ice_policy import loopback_only_ice
from pipeline.loopback_caller import LoopbackCaller
from services.llm_server import free_loopback_port
from tests.support.conversation import ask, fixture_clip, transcribe, wait_out_greeting

LLM_TIMEOUT_S = 3.0


@pytest.fixture(scope="module")
def faulty_llm() -> Iterator[str]:
    """The misbehaving server in its own process; yields its base URL."""
    port = free_loopback_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.faulty_llm", "--port", str(port)],
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v1/models", timeout=1.0, trust_env=False).is_success:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            pytest.fail("the faulty LLM server did not start")
        yield url
    finally:
        # A request stuck in "hang" mode keeps uvicorn from shutting down gracefully.
        process.kill()
        process.wait(10)


@pytest.fixture(scope="module")
def faulty_agent(faulty_llm: str) -> Iterator[AgentProcess]:
    """A real agent whose LLM is the faulty server."""
    agent = AgentProcess(
        ["--llm", "external", "--llm-url", f"{faulty_llm}/v1", "--llm-timeout", str(LLM_TIMEOUT_S)]
    )
    agent.start(ready_timeout=300)
    try:
        yield agent
    finally:
        code = agent.stop()
        agent.log_path.unlink(missing_ok=True)
        assert code == 0


def _set_mode(url: str, mode: str) -> None:
    response = httpx.post(f"{url}/control", json={"mode": mode}, timeout=5.0, trust_env=False)
    response.raise_for_status()


@pytest.mark.asyncio
@pytest.mark.timeout(420)
async def test_every_llm_fault_gets_an_apology_and_the_next_turn_works(
    faulty_llm: str, faulty_agent: AgentProcess
) -> None:
    question, rate = fixture_clip("weather_question.wav")
    with loopback_only_ice():
        async with LoopbackCaller(faulty_agent.base_url) as caller:
            await wait_out_greeting(caller, time.monotonic())
            _set_mode(faulty_llm, "ok")
            normal = await ask(caller, question, rate)
            assert "sunny" in transcribe(normal.audio, normal.rate).lower()
            bound = normal.latency_s + LLM_TIMEOUT_S + 1.0
            for mode in ("hang", "error", "cut", "slow"):
                _set_mode(faulty_llm, mode)
                failed = await ask(caller, question, rate, answer_timeout=bound + 5)
                error = await caller.wait_for_message(
                    "error", timeout=LLM_TIMEOUT_S + 5, after=failed.speech_end
                )
                assert error.data.get("data", {}).get("stage") == "llm", error.data
                if mode in ("hang", "error"):
                    # Nothing was spoken before the fault, so the apology is the first voice.
                    assert failed.latency_s <= bound, (
                        f"{mode}: apology after {failed.latency_s:.1f} s"
                    )
                    apology = failed.audio, failed.rate
                else:
                    # The words streamed before the fault are spoken first; the apology follows.
                    start = await caller.wait_for_voice(error.received_at, timeout=10)
                    assert start - error.received_at <= 1.0 + normal.latency_s
                    await caller.wait_for_silence(1.5, timeout=30, after=start)
                    apology = caller.received_audio(start - 0.2)
                heard = transcribe(*apology).lower()
                assert "sorry" in heard, f"{mode}: the bot said {heard!r}"

                _set_mode(faulty_llm, "ok")
                recovered = await ask(caller, question, rate)
                heard = transcribe(recovered.audio, recovered.rate).lower()
                assert "sunny" in heard, f"after {mode}, the next turn said {heard!r}"
