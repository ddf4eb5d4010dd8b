"""The session's keeper: turns reach the history as they finish, and resume fills the context."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    LLMContextAggregatorPair,
    UserTurnStoppedMessage,
)

from pipeline.config import AgentConfig, HistoryConfig, LLMConfig, STTConfig, TTSConfig
from pipeline.conversation.keeper import ConversationKeeper
from pipeline.conversation.store import DB_FILENAME, ConversationStore, ConversationWriter
from services.llm_server import LLMEndpoint

ENDPOINT = LLMEndpoint(base_url="http://127.0.0.1:9/v1", model="local", api_key="k")


def _config(tmp_path: Path, *, resume: bool) -> AgentConfig:
    return AgentConfig(
        profile="cpu",
        stt=STTConfig(model_dir=tmp_path),
        tts=TTSConfig(model_path=tmp_path, voices_path=tmp_path),
        llm=LLMConfig(),
        history=HistoryConfig(path=tmp_path / DB_FILENAME, resume=resume),
    )


async def _session(
    tmp_path: Path, session_id: str, *, resume: bool, say: list[tuple[str, str, bool]]
) -> tuple[bool, LLMContext]:
    writer = ConversationWriter(tmp_path / DB_FILENAME, retention_days=30)
    await writer.open()
    context = LLMContext()
    keeper = ConversationKeeper(
        _config(tmp_path, resume=resume),
        LLMContextAggregatorPair(context),
        writer,
        ENDPOINT,
        session_id=session_id,
    )
    resumed = await keeper.begin()
    for user, bot, interrupted in say:
        await keeper._on_user_turn(None, None, UserTurnStoppedMessage(user, "t"))
        keeper.on_latency({"total_ms": 700.0})
        await keeper._on_answer(None, AssistantTurnStoppedMessage(bot, interrupted, "t"))
    await keeper.end()
    await writer.close()
    return resumed, context


def test_turns_are_committed_and_resume_loads_them(tmp_path: Path) -> None:
    say = [("My name is Sam.", "Hi Sam.", False), ("Tell me a story.", "Once upon", True)]
    resumed, _ = asyncio.run(asyncio.wait_for(_session(tmp_path, "s1", resume=True, say=say), 30))
    assert not resumed  # nothing to resume yet
    store = ConversationStore(tmp_path / DB_FILENAME)
    try:
        turns = store.turns("s1")
        assert [(t.user_text, t.bot_text, t.interrupted) for t in turns] == say
        assert turns[0].latency == {"total_ms": 700.0}
        assert store.find("s1").ended is not None
    finally:
        store.close()

    resumed, context = asyncio.run(
        asyncio.wait_for(_session(tmp_path, "s2", resume=True, say=[]), 30)
    )
    assert resumed
    assert [m["content"] for m in context.get_messages() if isinstance(m, dict)] == [
        "My name is Sam.",
        "Hi Sam.",
        "Tell me a story.",
        "Once upon",
    ]
