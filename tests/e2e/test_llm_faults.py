"""RELIABILITY row 11: the LLM server hangs, fails, cuts its stream or stalls.

A real `jetvoice serve` (real VAD, turn, Whisper, Kokoro, WebRTC) talks to a deliberately
misbehaving OpenAI-compatible server. In every case the user hears a short apology, the LLM's
timeout (not a client default of minutes) ending the wait, and the next turn works. How soon
belongs to the benchmark: on two loaded cores a fault's turn can take seconds longer than the
normal turn measured just before it, so the waits here are for what is heard, within bounds
that only a timeout that never fired would overrun.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from pipeline.bench.client.loopback_caller import LoopbackCaller
from pipeline.ops.agent_process import AgentProcess
from pipeline.ops.latency_report import MESSAGE_LABEL
from pipeline.webrtc.ice_policy import loopback_only_ice
from tests.support.conversation import ask, fixture_clip, hear, wait_out_greeting
from tests.support.server_process import server_process

LLM_TIMEOUT_S = 3.0
# Room for VAD, Whisper and Kokoro on two cores shared with other work, on top of a normal turn.
LOAD_SLACK_S = 10.0


@pytest.fixture(scope="module")
def faulty_llm() -> Iterator[str]:
    """The misbehaving server in its own process; yields its base URL."""
    with server_process("tests.support.faulty_llm", "/v1/models") as url:
        yield url


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


async def _hear_until(caller: LoopbackCaller, word: str, *, after: float, bound_s: float) -> str:
    """What the bot said from ``after`` on, once ``word`` is in it or the bot stayed quiet.

    A pause between the words spoken before a fault and the apology can outlast a reply's
    1.5 s of silence on busy cores, so the reply is read again after each pause.
    """
    deadline = time.monotonic() + bound_s
    voice = await caller.wait_for_voice(after, timeout=bound_s)
    while True:
        remaining = max(1.0, deadline - time.monotonic())
        quiet = await caller.wait_for_silence(1.5, timeout=remaining, after=voice)
        heard = (await hear(*caller.received_audio(after))).lower()
        if word in heard:
            return heard
        try:
            voice = await caller.wait_for_voice(quiet, timeout=deadline - time.monotonic())
        except TimeoutError:
            return heard


def _set_mode(url: str, mode: str) -> None:
    response = httpx.post(f"{url}/control", json={"mode": mode}, timeout=5.0, trust_env=False)
    response.raise_for_status()


@pytest.mark.asyncio
@pytest.mark.timeout(420, func_only=True)  # the agent fixture has its own ready bound
async def test_every_llm_fault_gets_an_apology_and_the_next_turn_works(
    faulty_llm: str, faulty_agent: AgentProcess
) -> None:
    question, rate = fixture_clip("weather_question.wav")
    with loopback_only_ice():
        async with LoopbackCaller(faulty_agent.base_url) as caller:
            await wait_out_greeting(caller, time.monotonic())
            _set_mode(faulty_llm, "ok")
            normal = await ask(caller, question, rate)
            assert "sunny" in (await hear(normal.audio, normal.rate)).lower()
            # A hung request is only ever ended by the timeout: past this, it did not fire.
            bound = normal.latency_s + LLM_TIMEOUT_S + LOAD_SLACK_S
            for mode in ("hang", "error", "cut", "slow"):
                _set_mode(faulty_llm, mode)
                failed = await ask(caller, question, rate, answer_timeout=bound)
                print(f"{mode}: first voice {failed.latency_s:.1f} s after the speech")
                # jetvoice's own error message (pipecat's RTVI sends one of its own too).
                error = await caller.wait_for_message(
                    "error",
                    timeout=LLM_TIMEOUT_S + LOAD_SLACK_S,
                    after=failed.speech_end,
                    label=MESSAGE_LABEL,
                )
                assert error.data.get("data", {}).get("stage") == "llm", error.data
                if mode in ("hang", "error"):
                    # Nothing was spoken before the fault, so the apology is the first voice.
                    heard = (await hear(failed.audio, failed.rate)).lower()
                else:
                    # The words streamed before the fault are spoken first; the apology follows.
                    heard = await _hear_until(
                        caller, "sorry", after=failed.first_voice - 0.2, bound_s=bound
                    )
                assert "sorry" in heard, f"{mode}: the bot said {heard!r}"

                _set_mode(faulty_llm, "ok")
                recovered = await ask(caller, question, rate)
                heard = (await hear(recovered.audio, recovered.rate)).lower()
                assert "sunny" in heard, f"after {mode}, the next turn said {heard!r}"
