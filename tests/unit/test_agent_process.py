"""`AgentProcess.start` interrupted while it waits leaves no agent behind."""

from __future__ import annotations

import pytest

import pipeline.ops.agent_process
from pipeline.ops.agent_process import AgentProcess


class _Interrupted(BaseException):
    """What a test's timeout or Ctrl-C raises in the waiting thread."""


def test_an_interrupted_start_stops_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in that never becomes ready: `sh -c 'sleep 60'` ignores the agent's command line.
    agent = AgentProcess(wrapper=["sh", "-c", "exec sleep 60"])

    def interrupt(*_args: object, **_kwargs: object) -> None:
        raise _Interrupted

    # The interruption lands where the wait spends its time: polling /health.
    monkeypatch.setattr(pipeline.ops.agent_process.httpx.Client, "get", interrupt)
    with pytest.raises(_Interrupted):
        agent.start(ready_timeout=30)
    assert agent.pid is None, "the process was left running"
    assert agent.exit_code is not None
