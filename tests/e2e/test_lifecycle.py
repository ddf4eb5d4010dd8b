"""Lifecycle of a real `jetvoice serve` under real calls (RELIABILITY rows 8, 10, 15, 16).

- Row 8: a peer that vanishes (ICE transport gone, no DTLS close, no more pings) has its
  session ended, its pipeline finished and its peer connection freed within 20 s.
- Row 15: five simultaneous offers against max_sessions=2: two sessions, three 503s, and each
  model constructed once in the process (the engines count their constructions).
- Row 10: SIGINT, and SIGTERM, while the bot is answering: exit 0 within 10 s, and none of
  asyncio's complaints about tasks destroyed while pending in the log.
- Row 16: in a whole spoken session no model was called on the event loop's thread (each
  model checks, services.off_loop). asyncio's debug mode runs too; its slow callbacks and the
  pacing of the bot's audio frames are printed, not judged: both stretch with the machine's load
  (pacing p95 10 ms idle, 42.6 ms beside a CPU hog), and timing is the benchmark's to measure.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from models.store import ModelStore
from pipeline.bench.client.loopback_caller import LoopbackCaller
from pipeline.cli import ASYNCIO_DEBUG_ENV
from pipeline.ops.agent_process import AgentProcess
from pipeline.webrtc.ice_policy import loopback_only_ice
from services.off_loop import ON_LOOP
from tests.conftest import keep_log
from tests.support.conversation import ask, fixture_clip, hear, wait_out_greeting

# A test's timeout covers its own work, not an agent fixture's start: the first test to use a
# shared agent waits for its models to load, minutes on two loaded cores, bounded by this.
AGENT_READY_S = 300.0
# The watchdog gives a silent peer 10 s; aiortc's own consent checks would take 25-35 s.
VANISH_BOUND_S = 20.0
# How long a connected caller may take to show in /health, or a closed session's tasks to finish:
# a state to wait for, with room for two cores shared with other work.
SETTLE_BOUND_S = 30.0
EXIT_BOUND_S = 10.0
# What asyncio (and Python) print when tasks or coroutines are dropped instead of finished.
DANGLING = (
    "Task was destroyed but it is pending",
    "Task exception was never retrieved",
    "was never awaited",
    "Exception ignored in",
)
SLOW_CALLBACK = re.compile(r"Executing (?P<what>.*) took (?P<secs>[0-9.]+) seconds")


async def _health(base_url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        body: dict[str, Any] = (await client.get(f"{base_url}/health")).json()
        return body


async def _wait_for_sessions(base_url: str, active: int, bound_s: float) -> dict[str, Any]:
    """Poll /health until ``active`` sessions run and no other peer is held."""

    async def poll() -> dict[str, Any]:
        while True:
            health = await _health(base_url)
            sessions = health["sessions"]
            if sessions["active"] == active and sessions["peers"] == active:
                return health
            await asyncio.sleep(0.25)

    return await asyncio.wait_for(poll(), bound_s)


async def _wait_for_tasks(base_url: str, at_most: int, bound_s: float) -> dict[str, Any]:
    """Poll /health until the server runs at most ``at_most`` asyncio tasks."""

    async def poll() -> dict[str, Any]:
        while True:
            health = await _health(base_url)
            if health["tasks"] <= at_most:
                return health
            await asyncio.sleep(0.25)

    try:
        return await asyncio.wait_for(poll(), bound_s)
    except TimeoutError:
        health = await _health(base_url)
        raise AssertionError(
            f"{health['tasks']} tasks after {bound_s} s, not <= {at_most}"
        ) from None


# --- row 8: a peer that vanishes ------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.timeout(120, func_only=True)
async def test_a_vanished_peer_ends_its_session_and_frees_it(agent: AgentProcess) -> None:
    before = await _wait_for_sessions(agent.base_url, 0, 30)
    with loopback_only_ice():
        caller = LoopbackCaller(agent.base_url)
        try:
            await caller.connect()
            await _wait_for_sessions(agent.base_url, 1, SETTLE_BOUND_S)
            vanished = time.monotonic()
            await caller.vanish()
            await _wait_for_sessions(agent.base_url, 0, VANISH_BOUND_S)
            took = time.monotonic() - vanished
        finally:
            await caller.close()
    print(f"vanished peer's session ended after {took:.1f} s")
    # Its pipeline's tasks finish too (a few HTTP connection tasks come and go); on busy cores
    # the last of them may still be unwinding when /health first shows no session.
    await _wait_for_tasks(agent.base_url, before["tasks"] + 3, SETTLE_BOUND_S)


# --- row 15: duplicate offers, models loaded once --------------------------------------------


async def _metrics(base_url: str) -> str:
    async with httpx.AsyncClient(timeout=5.0, trust_env=False) as client:
        response = await client.get(f"{base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


def _sample(metrics: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


@pytest.mark.asyncio
@pytest.mark.timeout(120, func_only=True)
async def test_five_offers_at_once_get_two_sessions_and_the_models_load_once(
    agent: AgentProcess,
) -> None:
    await _wait_for_sessions(agent.base_url, 0, 30)
    busy = 'jetvoice_sessions_refused_total{reason="busy"}'
    refused_before = _sample(await _metrics(agent.base_url), busy)
    with loopback_only_ice():
        callers = [LoopbackCaller(agent.base_url) for _ in range(5)]
        try:
            results = await asyncio.gather(
                *(caller.connect(timeout=30) for caller in callers), return_exceptions=True
            )
            connected = [r for r in results if r is None]
            refused = [r for r in results if isinstance(r, ConnectionError) and "503" in str(r)]
            assert len(connected) == 2 and len(refused) == 3, results
            health = await _wait_for_sessions(agent.base_url, 2, SETTLE_BOUND_S)
        finally:
            for caller in callers:
                await caller.close()
    assert health["models"] == {
        "whisper": {"loaded": True, "loads": 1},
        "kokoro": {"loaded": True, "loads": 1},
    }, health["models"]
    await _wait_for_sessions(agent.base_url, 0, 30)
    metrics = await _metrics(agent.base_url)
    assert _sample(metrics, busy) == refused_before + 3, metrics
    assert _sample(metrics, 'jetvoice_model_loads_total{model="whisper"}') == 1
    assert _sample(metrics, 'jetvoice_model_loads_total{model="kokoro"}') == 1
    assert _sample(metrics, "jetvoice_sessions_active") == 0
    assert _sample(metrics, "jetvoice_asyncio_tasks") > 0
    assert "# TYPE jetvoice_stage_seconds histogram" in metrics


@pytest.mark.asyncio
@pytest.mark.timeout(180, func_only=True)
async def test_two_sessions_asking_at_once_both_get_a_real_answer(agent: AgentProcess) -> None:
    """llama.cpp's server answers one request at a time; the second must wait, not cut the
    first one's stream short (which left one user in silence, with no error)."""
    question, rate = fixture_clip("weather_question.wav")
    await _wait_for_sessions(agent.base_url, 0, 30)

    async def converse() -> str:
        with loopback_only_ice():
            async with LoopbackCaller(agent.base_url) as caller:
                # Both greetings are the same length: both questions go out together.
                await wait_out_greeting(caller, time.monotonic())
                reply = await ask(caller, question, rate, answer_timeout=60)
                return await hear(reply.audio, reply.rate)

    answers = await asyncio.wait_for(asyncio.gather(converse(), converse()), 150)
    for spoken in answers:
        assert "sorry" not in spoken.lower() and len(spoken.split()) >= 3, answers


# --- rows 16 and 10: an agent in asyncio debug mode, then stopped mid-answer ------------------


@pytest.fixture(scope="module")
def debug_agent(cpu_models: ModelStore) -> Iterator[AgentProcess]:
    """An agent running its event loop in asyncio debug mode (50 ms slow-callback log)."""
    process = AgentProcess(["--max-sessions", "1"], env={ASYNCIO_DEBUG_ENV: "1"})
    process.start(ready_timeout=AGENT_READY_S)
    try:
        yield process
    finally:
        process.stop()
        keep_log(process, "debug-agent")


def _pacing_jitter(arrivals: list[tuple[float, int, int]], start: float, end: float) -> list[float]:
    """|inter-arrival - frame duration| for the frames received between start and end."""
    window = [a for a in arrivals if start <= a[0] <= end]
    return [
        abs((later[0] - earlier[0]) - earlier[1] / earlier[2])
        for earlier, later in itertools.pairwise(window)
    ]


@pytest.mark.asyncio
@pytest.mark.timeout(240, func_only=True)
async def test_no_inference_on_the_event_loop(
    debug_agent: AgentProcess,
) -> None:
    question, rate = fixture_clip("weather_question.wav")
    with loopback_only_ice():
        async with LoopbackCaller(debug_agent.base_url) as caller:
            await wait_out_greeting(caller, time.monotonic())
            reply = await ask(caller, question, rate)
            voice_end = caller.recorder.last_voiced_end(reply.first_voice)
            assert voice_end is not None
            jitter = _pacing_jitter(caller.frame_arrivals, reply.first_voice, voice_end)
    log = debug_agent.log_path.read_text(errors="replace")
    assert "asyncio debug mode" in log, "the agent did not run in asyncio debug mode"
    slow = [m.group(0) for m in SLOW_CALLBACK.finditer(log)]
    print(f"{len(slow)} slow callbacks (> 50 ms) in the whole session:", *slow[:20], sep="\n  ")
    # Slow callbacks are shown, not judged: busy cores stretch any callback's wall time. Each
    # model reports a call on the event loop's thread itself (services.off_loop).
    on_loop = [line for line in log.splitlines() if ON_LOOP in line]
    assert not on_loop, "\n".join(on_loop)
    assert len(jitter) > 50, "too few bot audio frames to judge pacing"
    # Shown, not judged: a busy machine delays some frames (p95 42.6 ms under a CPU hog, 10 ms
    # when idle), and how smooth the bot's speech is belongs to the benchmark (its pauses
    # inside an answer). Inference on the loop is caught above, where it happens.
    p50, p95 = (float(v) for v in np.percentile(jitter, [50, 95]))
    print(
        f"bot audio pacing: {len(jitter)} frames, jitter p50 {p50 * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms"
    )


async def _stop_mid_answer(agent: AgentProcess, sig: signal.Signals) -> tuple[int | None, float]:
    """Ask a question; when the answer starts playing, send ``sig``; exit code and seconds."""
    question, rate = fixture_clip("weather_question.wav")
    # A previous test's session may still be closing on a shared agent with one session slot.
    await _wait_for_sessions(agent.base_url, 0, 60)
    with loopback_only_ice():
        async with LoopbackCaller(agent.base_url) as caller:
            await wait_out_greeting(caller, time.monotonic())
            said = await caller.say(np.concatenate([question, np.zeros(rate, np.float32)]), rate)
            await caller.wait_for_voice(after=said - 1.0, timeout=60)
            sent = time.monotonic()
            code = await asyncio.to_thread(agent.stop, EXIT_BOUND_S + 5, sig)
            return code, time.monotonic() - sent


def _assert_clean_exit(agent: AgentProcess, code: int | None, took: float, name: str) -> None:
    log = agent.log_path.read_text(errors="replace")
    assert code == 0, f"exit code {code} after {name}:\n{agent.log_tail()}"
    assert took < EXIT_BOUND_S, f"took {took:.1f} s to exit after {name}"
    found = [line for line in log.splitlines() if any(text in line for text in DANGLING)]
    assert not found, "\n".join(found)


@pytest.mark.asyncio
@pytest.mark.timeout(240, func_only=True)
async def test_sigint_mid_answer_exits_cleanly(debug_agent: AgentProcess) -> None:
    # In debug mode asyncio also reports coroutines never awaited and resources left open.
    code, took = await _stop_mid_answer(debug_agent, signal.SIGINT)
    print(f"SIGINT mid-answer: exit {code} after {took:.1f} s")
    _assert_clean_exit(debug_agent, code, took, "SIGINT")


@pytest.mark.asyncio
@pytest.mark.timeout(AGENT_READY_S + 240)  # its own agent starts inside the test
async def test_sigterm_mid_answer_exits_cleanly(cpu_models: ModelStore) -> None:
    agent = AgentProcess(["--max-sessions", "1", "--no-warmup"])
    agent.start(ready_timeout=AGENT_READY_S)
    try:
        code, took = await _stop_mid_answer(agent, signal.SIGTERM)
        print(f"SIGTERM mid-answer: exit {code} after {took:.1f} s")
        _assert_clean_exit(agent, code, took, "SIGTERM")
    finally:
        agent.stop()
        keep_log(agent, "sigterm-agent")
