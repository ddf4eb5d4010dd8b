"""Model inference at a lower CPU priority than the audio path.

On a box with few cores (two on the development machine), Whisper, Smart Turn, Kokoro and the
LLM keep every core busy at exactly the moments the audio path has work: the last packets of the
user's speech on their way to the VAD, the first packets of the answer on their way out. At equal
priority, each hop of a packet (network, event loop, codec thread, VAD thread) waits its turn
behind them, a scheduler slice at a time. So the model threads run at a higher ``nice`` value
(lower priority): the event loop, aiortc's codec threads and the VAD, a small share of one core,
run at once whenever they have work, and the models share the rest among themselves as before,
since all of them (the managed LLM server too) are lowered alike.

Any thread may lower its own priority; raising it back needs a privilege (RLIMIT_NICE is 0 by
default), so a thread is lowered for good: model threads are their own, never the event loop's
or a shared pool's. Threads that a library starts inside a model's constructor (onnxruntime's
intra-op pool, CTranslate2's workers) inherit the priority of the thread that built them, so the
models are built on lowered threads too, or their new threads are lowered after the fact.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from loguru import logger

_TASKS = Path("/proc/self/task")


def lower_thread(nice: int, native_id: int | None = None) -> bool:
    """Give a thread of this process (default: the calling one) at least ``nice``; True if set.

    Never raises: a platform without per-thread priorities runs at the one it has.
    """
    if nice <= 0:
        return False
    tid = threading.get_native_id() if native_id is None else native_id
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) >= nice:
            return False
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except (OSError, AttributeError) as error:
        logger.debug(f"thread {tid} keeps its priority: {error}")
        return False
    return True


def _thread_ids() -> set[int]:
    try:
        return {int(name) for name in os.listdir(_TASKS)}
    except (OSError, ValueError):
        return set()


@contextlib.contextmanager
def lowering_new_threads(nice: int) -> Iterator[None]:
    """Lower every thread that this process starts inside the block (a model's pools).

    Meant for constructors run on a thread that must keep its priority (the event loop's): the
    loop is blocked meanwhile, so the threads that appear are the constructor's.
    """
    before = _thread_ids() if nice > 0 else set()
    try:
        yield
    finally:
        if nice > 0:
            for tid in _thread_ids() - before:
                lower_thread(nice, tid)


def compute_executor(nice: int, name: str, max_workers: int | None = None) -> ThreadPoolExecutor:
    """A thread pool for model calls whose threads run at ``nice``.

    Models built on it (called through it) start their own threads at that priority as well.
    """
    workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
    return ThreadPoolExecutor(
        max_workers=workers,
        thread_name_prefix=name,
        initializer=lower_thread,
        initargs=(nice,),
    )
