"""The conversation history: WAL, a turn written and read back, retention, resume, store-nothing."""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
from pathlib import Path

import pytest

from pipeline.cli import build_parser, main
from pipeline.conversation.history_cli import history_config
from pipeline.conversation.store import (
    DB_FILENAME,
    ConversationStore,
    ConversationWriter,
    TurnRecord,
)

LATENCY = {"total_ms": 812.5, "contributions": [{"key": "llm", "label": "LLM", "ms": 301.0}]}


def _turn(conversation_id: str, index: int, user: str, bot: str) -> TurnRecord:
    return TurnRecord(
        conversation_id=conversation_id,
        index=index,
        started=1000.0 + index,
        ended=1001.0 + index,
        user_text=user,
        bot_text=bot,
        latency=LATENCY,
    )


def test_wal_mode_and_normal_sync(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / DB_FILENAME)
    try:
        assert store.journal_mode() == "wal"
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        store.close()
        store.close()  # idempotent


def test_turn_written_is_read_back_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    store = ConversationStore(path)
    store.start_conversation("abc123", started=1000.0, profile="cpu", client="pc-1")
    store.add_turn(_turn("abc123", 1, "My name is Sam.", "Nice to meet you, Sam."))
    failed = TurnRecord("abc123", 2, 1010.0, 1011.0, "Hello?", error_stage="llm", error_message="x")
    store.add_turn(failed)
    # Not closed: a crash right now must still find both turns committed.
    reader = sqlite3.connect(path)
    try:
        assert reader.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 2
    finally:
        reader.close()
    second = ConversationStore(path)
    try:
        (conversation,) = second.conversations()
        assert (conversation.id, conversation.turns, conversation.profile) == ("abc123", 2, "cpu")
        turns = second.turns("abc123")
        assert turns[0].user_text == "My name is Sam."
        assert turns[0].bot_text == "Nice to meet you, Sam."
        assert turns[0].latency == LATENCY
        assert (turns[1].error_stage, turns[1].bot_text) == ("llm", "")
        assert second.find("abc").id == "abc123"
    finally:
        second.close()
        store.close()


def test_resume_messages_come_from_the_last_conversation_with_answers(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / DB_FILENAME)
    try:
        store.start_conversation("old", started=100.0)
        store.add_turn(_turn("old", 1, "Old question.", "Old answer."))
        store.start_conversation("last", started=200.0)
        for index in range(1, 5):
            store.add_turn(_turn("last", index, f"Q{index}", f"A{index}"))
        store.start_conversation("current", started=300.0)  # no turns yet
        messages = store.resume_messages(2, exclude="current")
        assert messages == [
            {"role": "user", "content": "Q3"},
            {"role": "assistant", "content": "A3"},
            {"role": "user", "content": "Q4"},
            {"role": "assistant", "content": "A4"},
        ]
    finally:
        store.close()


def test_retention_prunes_old_conversations_and_their_turns(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / DB_FILENAME)
    day = 86400.0
    now = 100 * day
    try:
        store.start_conversation("ancient", started=now - 40 * day)
        store.add_turn(_turn("ancient", 1, "a", "b"))
        store.start_conversation("recent", started=now - 2 * day)
        assert store.prune(30, now=now) == 1
        assert [c.id for c in store.conversations()] == ["recent"]
        assert store.db.execute("SELECT COUNT(*) FROM turns").fetchone()[0] == 0
    finally:
        store.close()


def test_delete_and_clear(tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / DB_FILENAME)
    try:
        store.start_conversation("one", started=1.0)
        store.start_conversation("two", started=2.0)
        assert store.delete("one")
        assert not store.delete("one")
        assert store.clear() == 1
        assert store.conversations() == []
    finally:
        store.close()


def test_writer_runs_off_the_loop_and_closes_once(tmp_path: Path) -> None:
    async def scenario() -> list[TurnRecord]:
        writer = ConversationWriter(tmp_path / DB_FILENAME, retention_days=30)
        await writer.open()
        await writer.start_conversation("s1", profile="cpu", client="")
        await writer.add_turn(_turn("s1", 1, "Hi.", "Hello."))
        await writer.end_conversation("s1")
        await writer.close()
        await writer.close()
        with pytest.raises(RuntimeError):
            await writer.add_turn(_turn("s1", 2, "x", "y"))
        store = ConversationStore(tmp_path / DB_FILENAME)
        try:
            assert store.conversations()[0].ended is not None
            return store.turns("s1")
        finally:
            store.close()

    turns = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert [t.bot_text for t in turns] == ["Hello."]


def _serve_args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["serve", *extra])


def test_no_history_writes_no_file(tmp_path: Path) -> None:
    from pipeline.config import AgentConfig, LLMConfig, STTConfig, TTSConfig
    from pipeline.runtime import AgentRuntime

    config = history_config(_serve_args("--no-history"), tmp_path)
    assert not config.enabled
    agent = AgentConfig(
        profile="cpu",
        stt=STTConfig(model_dir=tmp_path),
        tts=TTSConfig(model_path=tmp_path, voices_path=tmp_path),
        llm=LLMConfig(),
        history=config,
    )
    runtime = AgentRuntime(agent)
    assert runtime.history is None
    asyncio.run(asyncio.wait_for(runtime.close(), 30))
    assert list(tmp_path.iterdir()) == []


def test_history_flags() -> None:
    config = history_config(
        _serve_args("--history-retention-days", "7", "--resume"), Path("/state")
    )
    assert (config.enabled, config.retention_days, config.resume) == (True, 7.0, True)
    assert config.path == Path("/state") / DB_FILENAME
    with pytest.raises(ValueError, match="--resume needs the history"):
        history_config(_serve_args("--no-history", "--resume"), Path("/state"))
    with pytest.raises(ValueError, match="must be positive"):
        history_config(_serve_args("--history-retention-days", "0"), Path("/state"))


def test_history_command_lists_shows_and_deletes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ConversationStore(tmp_path / DB_FILENAME)
    store.start_conversation("conv42", started=1000.0, profile="cpu")
    store.add_turn(_turn("conv42", 1, "My name is Sam.", "Hi Sam."))
    store.close()
    state = ["--state-dir", str(tmp_path)]
    assert main(["history", *state, "list"]) == 0
    assert "conv42" in capsys.readouterr().out
    assert main(["history", *state, "show", "conv4"]) == 0
    shown = capsys.readouterr().out
    assert "My name is Sam." in shown and "Hi Sam." in shown and "total 812 ms" in shown
    assert main(["history", *state, "show", "nope"]) == 1
    assert main(["history", *state, "delete", "conv42"]) == 0
    assert main(["history", *state, "clear"]) == 0
    assert "deleted 0" in capsys.readouterr().out.splitlines()[-1]
