"""Issue 7: a spoken session survives a server restart in the history, and resuming continues it.

A real agent (real VAD, turn, Whisper, Kokoro, WebRTC) with a temporary state directory answers
one spoken turn through a scripted OpenAI-compatible server (tests/support/faulty_llm.py in
"ok" mode, which records the last request). The agent is stopped with SIGINT, ``jetvoice
history`` shows the turn, and a new agent started with ``--resume`` on the same state directory
sends that turn back to the LLM as context.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline.bench.client.loopback_caller import LoopbackCaller
from pipeline.config import DEFAULT_SYSTEM_PROMPT
from pipeline.conversation.store import DB_FILENAME, ConversationStore
from pipeline.ops.agent_process import AgentProcess
from pipeline.webrtc.ice_policy import loopback_only_ice
from tests.support.conversation import ask, fixture_clip, wait_out_greeting
from tests.support.faulty_llm import ANSWER
from tests.support.server_process import server_process


@pytest.fixture(scope="module")
def scripted_llm() -> Iterator[str]:
    """The scripted LLM server in its own process; yields its base URL."""
    with server_process("tests.support.faulty_llm", "/v1/models") as url:
        yield url


def _last_request(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/last_request", timeout=5.0, trust_env=False)
    response.raise_for_status()
    body: dict[str, Any] = response.json()["body"] or {}
    return body


def _stored_turns(state_dir: Path, timeout: float = 30.0) -> list[Any]:
    """The turns in the history once at least one is committed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (state_dir / DB_FILENAME).exists():
            store = ConversationStore(state_dir / DB_FILENAME)
            try:
                turns = [t for c in store.conversations() for t in store.turns(c.id)]
            finally:
                store.close()
            if turns:
                return turns
        time.sleep(0.5)
    pytest.fail("no turn reached the history")


def _history(state_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "history", "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def _one_turn(agent: AgentProcess) -> None:
    question, rate = fixture_clip("weather_question.wav")
    with loopback_only_ice():
        async with LoopbackCaller(agent.base_url) as caller:
            await wait_out_greeting(caller, time.monotonic())
            await ask(caller, question, rate)


@pytest.mark.asyncio
@pytest.mark.timeout(600)
async def test_spoken_turn_survives_restart_and_resume_continues_the_context(
    scripted_llm: str, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    llm_args = ["--llm", "external", "--llm-url", f"{scripted_llm}/v1"]

    first = AgentProcess(llm_args, state_dir=state_dir)
    first.start(ready_timeout=300)
    try:
        await _one_turn(first)
        (turn,) = _stored_turns(state_dir)
    finally:
        code = first.stop()
        first.log_path.unlink(missing_ok=True)
    assert code == 0, f"jetvoice serve exited with {code} on SIGINT"
    assert "weather" in turn.user_text.lower(), turn
    assert turn.bot_text.strip() == ANSWER, turn
    assert turn.latency is not None and turn.latency["total_ms"] > 0

    listing = _history(state_dir, "list")
    assert turn.conversation_id in listing and "1 turns" in listing
    shown = _history(state_dir, "show", turn.conversation_id)
    assert turn.user_text in shown and ANSWER in shown and "latency: total" in shown

    resumed = AgentProcess([*llm_args, "--resume"], state_dir=state_dir)
    resumed.start(ready_timeout=300)
    try:
        await _one_turn(resumed)
    finally:
        code = resumed.stop()
        resumed.log_path.unlink(missing_ok=True)
    assert code == 0
    messages = _last_request(scripted_llm)["messages"]
    contents = [(m["role"], m["content"]) for m in messages]
    # The system prompt leads every request byte for byte (the server's cached prefix).
    assert contents[0] == ("system", DEFAULT_SYSTEM_PROMPT)
    # The previous session's turn, then the "welcome back" greeting, then the new question.
    assert ("user", turn.user_text) in contents, contents
    assert ("assistant", ANSWER) in contents, contents
    assert any(role == "assistant" and "welcome back" in text.lower() for role, text in contents)
    assert contents[-1][0] == "user"
    assert len(_history(state_dir, "list").strip().splitlines()) == 2
