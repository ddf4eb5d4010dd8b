"""RELIABILITY row 13, opt-in (`just soak`): memory and tasks stay flat over hundreds of sessions.

One real `jetvoice serve` (cpu profile, real models, managed llama.cpp) takes CYCLES sessions
in a row, each a real WebRTC call from a LoopbackCaller: connect, hear the greeting, ask a short
question, hear the answer start, hang up. After each session has ended, the agent's resident
memory (VmRSS from /proc, the agent alone and with its children, i.e. the llama.cpp server) and
its asyncio task count (from /health) are sampled. The test fails when the agent's RSS grows by
more than 50 KB per session (least-squares slope over the cycles after the warm-up) or when the
task count does not come back to its idle baseline. Then max_sessions callers at once, several
rounds: every call answered, each model still constructed once.

RSS is sampled at a quiet moment: /health counts a session as active until its task is done,
and that task ends only after the session's garbage collection and ``malloc_trim``
(pipeline.sessions.manager); no peer connection is held either. The warm-up cycles are left out
of the slope: the first sessions import modules lazily and grow malloc's arenas to their working
size.

Results go to artifacts/soak.json. JETVOICE_SOAK_CYCLES overrides the number of sessions and
JETVOICE_SOAK_WARM_UP the warm-up (`just break-check` runs a short soak with both).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.bench.client.loopback_caller import LoopbackCaller
from pipeline.ops.agent_process import AgentProcess
from pipeline.webrtc.ice_policy import loopback_only_ice
from tests.support.conversation import fixture_clip

pytestmark = pytest.mark.soak

CYCLES = int(os.environ.get("JETVOICE_SOAK_CYCLES", "200"))
WARM_UP = int(os.environ.get("JETVOICE_SOAK_WARM_UP", "20"))
MAX_SESSIONS = 2
CONCURRENT_ROUNDS = 5
RSS_SLOPE_LIMIT_KB = 50.0
# How much of the answer a caller listens to before hanging up: it was heard, and the cycle
# stays short (hanging up mid-answer is also what people do).
LISTEN_S = 1.0
ARTIFACT = Path(__file__).resolve().parents[2] / "artifacts" / "soak.json"


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A memory field of /proc/PID/status in KB (VmRSS; RssAnon is the heap part of it)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


async def _health(base_url: str) -> dict[str, Any]:
    # A fresh connection each time, closed after: no idle keep-alive task is counted.
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
        response = await client.get(f"{base_url}/health", headers={"Connection": "close"})
        body: dict[str, Any] = response.json()
        return body


async def _idle(base_url: str, bound_s: float = 60.0) -> dict[str, Any]:
    """Wait until no session runs and no peer is held."""
    deadline = time.monotonic() + bound_s
    while True:
        health = await _health(base_url)
        if health["sessions"]["active"] == 0 and health["sessions"]["peers"] == 0:
            return health
        if time.monotonic() > deadline:
            raise TimeoutError(f"sessions still held after {bound_s:.0f} s: {health['sessions']}")
        await asyncio.sleep(0.2)


async def _settled_tasks(base_url: str, at_most: int | None = None, bound_s: float = 15) -> int:
    """The task count once it stops falling (or reaches ``at_most``)."""
    deadline = time.monotonic() + bound_s
    lowest = (await _health(base_url))["tasks"]
    while time.monotonic() < deadline:
        if at_most is not None and lowest <= at_most:
            break
        await asyncio.sleep(0.5)
        lowest = min(lowest, (await _health(base_url))["tasks"])
    return int(lowest)


@dataclass
class Cycle:
    """One sampled session."""

    index: int
    seconds: float
    answer_latency_s: float
    rss_kb: int
    rss_anon_kb: int
    rss_with_children_kb: int
    tasks: int


async def _call(base_url: str, question: np.ndarray, rate: int) -> float:
    """One conversation; returns the seconds from the end of the question to the answer."""
    with loopback_only_ice():
        async with LoopbackCaller(base_url) as caller:
            started = time.monotonic()
            greeting = await caller.wait_for_voice(started, timeout=30)
            await caller.wait_for_silence(0.6, timeout=30, after=greeting)
            padded = np.concatenate([question, np.zeros(int(rate * 0.8), np.float32)])
            said = await caller.say(padded, rate)
            speech_end = said - 0.8
            answer = await caller.wait_for_voice(after=speech_end, timeout=60)
            await asyncio.sleep(LISTEN_S)
            return answer - speech_end


def _slope_kb_per_session(cycles: list[Cycle], field: str) -> float:
    """Least-squares slope of ``field`` (KB) over the session index."""
    xs = np.array([c.index for c in cycles], dtype=np.float64)
    ys = np.array([getattr(c, field) for c in cycles], dtype=np.float64)
    return float(np.polyfit(xs, ys, 1)[0])


def _median_slope_kb_per_session(cycles: list[Cycle], field: str) -> float:
    """Theil-Sen slope (median of pairwise slopes), reported next to the least-squares one.

    The pass criterion stays the least-squares slope: a leak that shows only in part of the run
    (a step every few sessions) must count in full, and a median would shrug it off.
    """
    points = [(c.index, float(getattr(c, field))) for c in cycles]
    slopes = [
        (y2 - y1) / (x2 - x1)
        for i, (x1, y1) in enumerate(points)
        for x2, y2 in points[i + 1 :]
        if x2 != x1
    ]
    return float(np.median(slopes)) if slopes else 0.0


@pytest.fixture(scope="module")
def soak_agent() -> Any:
    """One agent for the whole soak."""
    try:
        profile_paths("cpu", ModelStore(default_models_dir()))
    except ModelUnavailableError as error:
        pytest.fail(f"cpu models missing (run `just setup`): {error}")
    agent = AgentProcess(["--max-sessions", str(MAX_SESSIONS)])
    agent.start(ready_timeout=300)
    try:
        yield agent
    finally:
        code = agent.stop()
        agent.log_path.unlink(missing_ok=True)
        assert code == 0, f"the soaked agent exited with {code}"


@pytest.mark.asyncio
@pytest.mark.timeout(3 * 3600)
async def test_soak_memory_and_tasks_stay_flat(soak_agent: AgentProcess) -> None:
    base = soak_agent.base_url
    pid = soak_agent.pid
    assert pid is not None
    question, rate = fixture_clip("hello_world.wav")
    await _idle(base)
    baseline_tasks = await _settled_tasks(base)
    started = time.monotonic()
    cycles: list[Cycle] = []
    for index in range(CYCLES):
        cycle_started = time.monotonic()
        latency = await asyncio.wait_for(_call(base, question, rate), 120)
        health = await _idle(base)
        rss = _rss_kb(pid)
        children = sum(_rss_kb(child) for child in _descendants(pid))
        cycles.append(
            Cycle(
                index=index,
                seconds=round(time.monotonic() - cycle_started, 2),
                answer_latency_s=round(latency, 3),
                rss_kb=rss,
                rss_anon_kb=_rss_kb(pid, "RssAnon"),
                rss_with_children_kb=rss + children,
                tasks=int(health["tasks"]),
            )
        )
        if index % 10 == 0 or index == CYCLES - 1:
            print(
                f"cycle {index}: {cycles[-1].seconds:.1f} s, answer {latency:.2f} s, "
                f"RSS {rss / 1024:.1f} MiB (+children {(rss + children) / 1024:.1f} MiB), "
                f"tasks {health['tasks']}",
                flush=True,
            )
    sequential_s = time.monotonic() - started
    final_tasks = await _settled_tasks(base, at_most=baseline_tasks)

    concurrent_started = time.monotonic()
    for _ in range(CONCURRENT_ROUNDS):
        latencies = await asyncio.wait_for(
            asyncio.gather(*(_call(base, question, rate) for _ in range(MAX_SESSIONS))), 180
        )
        assert len(latencies) == MAX_SESSIONS
        await _idle(base)
    concurrent_s = time.monotonic() - concurrent_started
    after_concurrent = await _health(base)
    concurrent_tasks = await _settled_tasks(base, at_most=baseline_tasks)

    measured = cycles[WARM_UP:] if len(cycles) > WARM_UP + 2 else cycles
    summary = {
        "cycles": len(cycles),
        "warm_up_cycles": len(cycles) - len(measured),
        "sequential_s": round(sequential_s, 1),
        "mean_cycle_s": round(sequential_s / max(1, len(cycles)), 2),
        "rss_slope_kb_per_session": round(_slope_kb_per_session(measured, "rss_kb"), 2),
        "rss_median_slope_kb_per_session": round(
            _median_slope_kb_per_session(measured, "rss_kb"), 2
        ),
        "rss_anon_slope_kb_per_session": round(_slope_kb_per_session(measured, "rss_anon_kb"), 2),
        "rss_with_children_slope_kb_per_session": round(
            _slope_kb_per_session(measured, "rss_with_children_kb"), 2
        ),
        "rss_first_kb": cycles[0].rss_kb,
        "rss_last_kb": cycles[-1].rss_kb,
        "rss_with_children_last_kb": cycles[-1].rss_with_children_kb,
        "tasks_baseline": baseline_tasks,
        "tasks_after_cycles": final_tasks,
        "tasks_after_concurrent": concurrent_tasks,
        "concurrent_rounds": CONCURRENT_ROUNDS,
        "concurrent_sessions": MAX_SESSIONS,
        "concurrent_s": round(concurrent_s, 1),
        "models": after_concurrent["models"],
    }
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text(
        json.dumps({"summary": summary, "cycles": [asdict(c) for c in cycles]}, indent=1)
    )
    print(json.dumps(summary, indent=2))

    assert summary["rss_slope_kb_per_session"] <= RSS_SLOPE_LIMIT_KB, summary
    assert final_tasks <= baseline_tasks, summary
    assert concurrent_tasks <= baseline_tasks, summary
    assert after_concurrent["models"] == {
        "whisper": {"loaded": True, "loads": 1},
        "kokoro": {"loaded": True, "loads": 1},
    }, summary
