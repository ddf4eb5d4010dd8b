"""Finding an agent's child processes from /proc."""

from __future__ import annotations

import time
from pathlib import Path


def llm_server_pid(agent_pid: int) -> int:
    """The managed llama.cpp server: the agent's child whose command line names it."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == agent_pid and b"llama_cpp.server" in cmdline:
            return int(entry.name)
    raise AssertionError("no llama.cpp server child found")


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (for vLLM: its engine core and that one's workers)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:  # a thread or process that ended meanwhile
            continue
        for child in map(int, children):
            found |= {child, *descendants(child)}
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def still_running(pids: set[int], grace_s: float = 5.0) -> list[int]:
    """Those of ``pids`` still running after up to ``grace_s`` (a SIGKILL takes a moment)."""
    deadline = time.monotonic() + grace_s
    while (left := sorted(pid for pid in pids if running(pid))) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
