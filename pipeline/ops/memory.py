"""Memory between sessions: a finished session's heap goes back to the operating system.

A session's pipeline is a web of reference cycles (processors, event handlers, tasks), so it is
freed only by a full garbage collection, which Python runs when it sees fit: the soak measured
RSS climbing about 17 MB per session, then dropping by hundreds at each full collection. And a
full collection walks every object in the process, about 190,000 of them once the models are
loaded, holding the event loop for some 200 ms on two cores: an audible gap in every call.

So: once the models are loaded, :func:`freeze_startup_heap` moves everything alive into the
collector's permanent generation (gc.freeze: those objects live as long as the process), and a
full collection then takes about 35 ms. When a session ends, :func:`collect_session_garbage`
frees its cycles at once, and :func:`release_free_memory` (glibc's ``malloc_trim(0)``, in a
worker thread: ctypes releases the GIL) hands the free pages of every malloc arena back to the
kernel, which glibc otherwise keeps, fragmented, per thread. Without glibc the last is a no-op.
"""

from __future__ import annotations

import ctypes
import functools
import gc
from collections.abc import Callable


def freeze_startup_heap() -> int:
    """Collect, then exempt every object alive now from later collections; returns how many."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def collect_session_garbage() -> int:
    """A full collection (on the event loop thread: finalizers may touch the loop)."""
    return gc.collect()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return free heap pages to the OS; True if glibc released any. Blocking: use a thread."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
