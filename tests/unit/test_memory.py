"""Freed heap goes back to the OS after a session (glibc's malloc_trim)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from pipeline.ops.memory import release_free_memory


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_fragmented_free_heap_is_returned() -> None:
    # 100 MB of 1 KB blocks, every 64th kept: the heap cannot shrink from its top, and glibc
    # keeps the free pages in between until trimmed.
    blocks = [bytes(1000) + bytes([i % 256]) for i in range(100_000)]
    survivors = blocks[::64]
    del blocks
    held = _rss_kb()
    assert release_free_memory()
    assert _rss_kb() < held - 40_000, (held, _rss_kb())
    assert survivors
