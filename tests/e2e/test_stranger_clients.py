"""Clients the project did not write: a plain aiortc peer in its own process, no jetvoice code.

The loopback tests drive the agent with the project's own caller, whose process runs the same
ICE policy as the server; that proves nothing about what a person's client gets. Here the
client is ``tests/support/plain_aiortc_client.py``: ``RTCPeerConnection()`` with its default
configuration (it gathers on this machine's LAN addresses, never on 127.0.0.1), aiortc's own
``MediaPlayer`` as the microphone, run by the interpreter as a separate process with nothing of
this repository imported. One spoken turn per mode:

- the loopback default (what `just serve` runs), with ``POST /api/offer``;
- HTTPS with a required pairing token, with pipecat's own client contract (``POST /start``,
  then ``/sessions/{id}/api/offer``).

Both agents run under the network audit (tests/conftest.py): answering these clients over this
machine's LAN address must not make them talk to any other machine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.ops.agent_process import AgentProcess
from tests.support.plain_client import call_with_plain_client


def _check(summary: dict[str, object], spoken: str) -> None:
    assert "connected" in list(summary["states"]), summary  # type: ignore[call-overload]
    assert summary["project_modules"] == [], summary
    assert summary["answered"], f"no voice after the question: {summary}"
    words = re.findall(r"[A-Za-z']+", spoken)
    assert len(words) >= 3, f"the answer transcribes to {spoken!r} ({summary})"


@pytest.mark.timeout(240)
def test_a_plain_aiortc_client_gets_a_spoken_answer_from_the_default_bind(
    agent: AgentProcess, tmp_path: Path
) -> None:
    summary, spoken = call_with_plain_client(agent, tmp_path)
    print(f"plain aiortc client: {summary}; answer: {spoken!r}")
    _check(summary, spoken)


@pytest.mark.timeout(240)
def test_pipecat_start_contract_over_https_with_a_token(
    secure_agent: AgentProcess, tmp_path: Path
) -> None:
    summary, spoken = call_with_plain_client(
        secure_agent,
        tmp_path,
        "--pipecat-start",
        "--token",
        secure_agent.token,
        "--cafile",
        str(secure_agent.ca_file),
    )
    print(f"pipecat contract, https + token: {summary}; answer: {spoken!r}")
    _check(summary, spoken)
