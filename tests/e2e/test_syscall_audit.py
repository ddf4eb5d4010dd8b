"""Nothing leaves this machine, proven where packets are made: the real agent under `strace -f`.

The network audit (pipeline/ops/network_audit.py) sees Python's socket calls; native libraries call
libc directly (onnxruntime's telemetry looked up mobile.events.data.microsoft.com that way, from
its own threads). Here the kernel's view: `jetvoice serve` (cpu profile, real models) and every
process it starts (the llama.cpp server) run under `strace -f`, tracing connect, sendto, sendmsg
and sendmmsg, through start-up, one spoken turn from a plain aiortc client in its own process (it
calls from this machine's LAN address, as a browser does) and shutdown. Any destination that is
not loopback or one of this machine's interface addresses fails the test, and so does anything
sent to port 53 (a DNS query, whatever the resolver's address, loopback included); the names
asked for are decoded into the failure message.

The agent starts with every telemetry switch removed from its environment: what is proven is
that its own code turns them off (services/telemetry.py), not that the test's environment did.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from models.store import ModelStore
from pipeline.ops.agent_process import AgentProcess
from pipeline.webrtc.own_addresses import is_own_address
from services.telemetry import SWITCH_NAMES
from tests.support.plain_client import call_with_plain_client
from tests.support.processes import llm_server_pid
from tests.support.syscall_trace import TRACED_CALLS, TraceReport, parse_trace

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ANSWER_BOUND_S = 60.0
# Long enough for any DNS name and the question after it; the rest of a payload is not needed.
STRING_LIMIT = 300


def _runs(command: list[str]) -> str | None:
    """None when ``command`` traces ``true`` cleanly, else why not."""
    try:
        done = subprocess.run(
            [*command, "-o", os.devnull, "true"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return str(error)
    if done.returncode == 0:
        return None
    return (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]


def strace_command() -> list[str]:
    """The strace invocation (without -o and the command); skips when strace cannot run here."""
    strace = shutil.which("strace") or shutil.which("strace", path="/usr/bin:/bin")
    if strace is None:
        pytest.skip(
            "strace is not installed and `just strace-deps` could not install it (needs apt-get "
            "and root or sudo): the system-call audit cannot run"
        )
    base = [
        strace,
        "-f",
        "-qq",
        "-e",
        "signal=none",
        "-e",
        f"trace={','.join(TRACED_CALLS)}",
        "-s",
        str(STRING_LIMIT),
    ]
    # With a seccomp filter only the traced calls stop the tracee: the audio path keeps its pace.
    if _runs([*base, "--seccomp-bpf"]) is None:
        return [*base, "--seccomp-bpf"]
    why = _runs(base)
    if why is not None:
        pytest.skip(f"strace cannot trace processes here ({why}): the system-call audit cannot run")
    return base


@pytest.mark.asyncio
@pytest.mark.timeout(540)
async def test_a_spoken_session_sends_nothing_off_this_machine_and_looks_no_name_up(
    cpu_models: ModelStore, tmp_path: Path
) -> None:
    trace = tmp_path / "agent.strace"
    agent = AgentProcess(
        # A warm-up request under strace on a busy 2-core machine can take longer than 30 s.
        ["--max-sessions", "1", "--llm-timeout", "30"],
        wrapper=[*strace_command(), "-o", str(trace)],
        unset_env=sorted(SWITCH_NAMES),
    )
    started = time.monotonic()
    try:
        ready_s = await asyncio.to_thread(agent.start, 300.0)
        assert agent.pid is not None
        llm_pid = llm_server_pid(agent.pid)
        # A stranger's client (plain aiortc in its own process, default configuration): it
        # calls from this machine's LAN address, as a browser does, so the agent's WebRTC runs
        # over its own interface address, not only 127.0.0.1.
        client_dir = tmp_path / "client"
        client_dir.mkdir()
        call, spoken = await asyncio.to_thread(call_with_plain_client, agent, client_dir)
    finally:
        code = await asyncio.to_thread(agent.stop, 30.0)
        log = agent.log_tail(15) if agent.log_path.exists() else ""
        agent.log_path.unlink(missing_ok=True)
    elapsed_s = time.monotonic() - started
    assert code == 0, f"jetvoice serve under strace exited with {code}:\n{log}"
    assert call["answered"] and spoken.strip(), f"the spoken turn got no answer: {call}"

    calls = parse_trace(trace.read_text(errors="replace").splitlines())
    report = TraceReport.of(calls, is_own_address)
    summary = report.summary()
    print(f"\nsystem-call audit ({elapsed_s:.0f} s, agent ready in {ready_s:.0f} s):\n{summary}")
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "syscall_audit.json").write_text(
        json.dumps(
            {
                "seconds": round(elapsed_s, 1),
                "agent_ready_s": round(ready_s, 1),
                "calls": report.calls,
                "threads": len(report.threads),
                "destinations": dict(report.destinations.most_common()),
                "dns_lookups": dict(report.lookups),
                "offending": [c.line for c in report.offending],
            },
            indent=1,
        )
        + "\n"
    )
    # The trace followed the whole tree: the llama.cpp server's answers are in it too.
    assert llm_pid in report.threads, f"no call of the LLM server ({llm_pid}) traced"
    assert not report.offending, f"the agent sent packets off this machine:\n{summary}"
