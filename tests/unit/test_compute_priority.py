"""Model threads run below the audio path; the threads that must not, keep their priority."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from pipeline.audio.early_smart_turn import EarlySmartTurn
from pipeline.ops.compute_priority import compute_executor, lower_thread, lowering_new_threads

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread priorities: Linux")


def _nice(tid: int | None = None) -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id() if tid is None else tid)


def _threads() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/task")}


def test_the_executor_runs_calls_at_the_lowered_priority_and_the_caller_keeps_its_own() -> None:
    caller = _nice()
    executor = compute_executor(caller + 7, "test-models", max_workers=2)
    try:
        assert executor.submit(_nice).result(timeout=10) == caller + 7
    finally:
        executor.shutdown(wait=True)
    assert _nice() == caller


def test_threads_started_inside_the_block_are_lowered_and_older_ones_are_not() -> None:
    release = threading.Event()
    started: list[int] = []

    def park() -> None:
        started.append(threading.get_native_id())
        release.wait(10)

    older = threading.Thread(target=park)
    older.start()
    caller = _nice()
    try:
        with lowering_new_threads(caller + 5):
            newer = threading.Thread(target=park)
            newer.start()
            while len(started) < 2:
                release.wait(0.01)
        assert _nice(started[1]) == caller + 5
        assert _nice(started[0]) == caller
        assert _nice() == caller
    finally:
        release.set()
        older.join()
        newer.join()


def test_a_thread_already_lower_is_left_alone_and_zero_changes_nothing() -> None:
    executor = compute_executor(0, "test-zero", max_workers=1)
    try:
        caller = _nice()
        assert executor.submit(_nice).result(timeout=10) == caller
        assert executor.submit(lower_thread, caller + 3).result(timeout=10)
        # Asking for less than it has cannot raise a thread back up.
        assert not executor.submit(lower_thread, caller + 1).result(timeout=10)
        assert executor.submit(_nice).result(timeout=10) == caller + 3
    finally:
        executor.shutdown(wait=True)


def test_smart_turn_builds_and_runs_its_real_model_on_lowered_threads() -> None:
    """Any thread onnxruntime starts while the session is built (an intra-op pool, with more
    than pipecat's one thread) is lowered with the thread pipecat runs the model on; the
    building thread is not."""
    caller = _nice()
    before = _threads()
    analyzer = EarlySmartTurn(quiet_secs=0.04, pad_to_secs=0.2, nice=caller + 6, cpu_count=2)
    try:
        pool = _threads() - before
        assert pool, "onnxruntime started no intra-op threads for a two-thread session"
        assert {_nice(tid) for tid in pool} == {caller + 6}
        model_thread = analyzer._model_executor.submit(_nice).result(timeout=10)
        assert model_thread == caller + 6
        assert _nice() == caller
    finally:
        analyzer._model_executor.shutdown(wait=True)
