"""Finding an agent's child processes from /proc."""

from __future__ import annotations

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
