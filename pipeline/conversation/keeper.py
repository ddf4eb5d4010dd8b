"""One session's memory: records each turn in the history and keeps its LLM context short.

It listens to the context aggregators (the user's finished transcript; the assistant's answer
as it was spoken, cut short when interrupted), to the per-turn latency report and to pipeline
errors. A turn is committed when the bot's answer is complete or the turn failed. After each
answer the context window folds older turns into a summary; that runs in the aggregator's
event-handler task, after the answer, never before the next turn's LLM call.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any, cast

import httpx
from loguru import logger
from pipecat.frames.frames import ErrorFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext, LLMContextMessage
from pipecat.processors.aggregators.llm_response_universal import (
    AssistantTurnStoppedMessage,
    LLMContextAggregatorPair,
    UserTurnStoppedMessage,
)

from pipeline.config import AgentConfig
from pipeline.conversation.context_window import (
    Compactor,
    Message,
    prewarm_with_llm,
    summarize_folded,
)
from pipeline.conversation.store import ConversationWriter, TurnRecord
from pipeline.ops.fallback import stage_of
from pipeline.tools.schemas import openai_tools
from services.llm_server import LLMEndpoint

# Stages whose failure ends the turn: no answer will come.
_FATAL_STAGES = ("llm", "stt")


class _Turn:
    """The turn being collected."""

    def __init__(self, user_text: str) -> None:
        self.user_text = user_text
        self.started = time.time()
        self.latency: dict[str, Any] | None = None
        self.error_stage: str | None = None
        self.error_message: str | None = None


class ConversationKeeper:
    """Wires the history and the context window into one session's pipeline."""

    def __init__(
        self,
        config: AgentConfig,
        aggregators: LLMContextAggregatorPair,
        history: ConversationWriter | None,
        endpoint: LLMEndpoint,
        *,
        session_id: str,
        client: str = "",
    ) -> None:
        self._config = config
        self._context: LLMContext = aggregators.user().context
        self._history = history
        self._endpoint = endpoint
        self._session_id = session_id
        self._client = client
        self._turn: _Turn | None = None
        self._index = 0
        self.compactor = Compactor(
            config.context_window, self._summarize, prewarm=self._prewarm, session_id=session_id
        )
        aggregators.user().add_event_handler("on_user_turn_stopped", self._on_user_turn)
        aggregators.assistant().add_event_handler("on_assistant_turn_stopped", self._on_answer)

    async def begin(self) -> bool:
        """Record the session; with resume on, load the last conversation into the context.

        Returns whether earlier turns were loaded (the greeting then says so).
        """
        if self._history is None:
            return False
        resumed = False
        try:
            if self._config.history.resume:
                window = self._config.context_window
                messages = await self._history.resume_messages(
                    window.keep_turns + window.fold_every, exclude=self._session_id
                )
                if messages:
                    self._set_messages([*messages, *self._messages_or_all()])
                    resumed = True
                    logger.info(f"[{self._session_id}] resumed {len(messages) // 2} earlier turns")
            await self._history.start_conversation(
                self._session_id, profile=self._config.profile, client=self._client
            )
        except (sqlite3.Error, RuntimeError) as error:
            logger.warning(f"[{self._session_id}] history unavailable: {error!r}")
        return resumed

    async def end(self) -> None:
        """Commit a turn still open and mark the session ended."""
        await self._commit(bot_text="", interrupted=True)
        if self._history is None:
            return
        try:
            await self._history.end_conversation(self._session_id)
        except (sqlite3.Error, RuntimeError) as error:
            logger.warning(f"[{self._session_id}] history unavailable: {error!r}")

    def on_latency(self, data: dict[str, Any]) -> None:
        """The turn's latency report (sent to the page too)."""
        if self._turn is not None:
            self._turn.latency = data

    async def _on_user_turn(
        self, _aggregator: Any, _strategy: Any, message: UserTurnStoppedMessage
    ) -> None:
        if not message.content:
            return
        # A turn still open got no answer before the user spoke again.
        await self._commit(bot_text="", interrupted=True)
        self._turn = _Turn(message.content)

    async def _on_answer(self, _aggregator: Any, message: AssistantTurnStoppedMessage) -> None:
        if self._turn is not None:
            await self._commit(bot_text=message.content, interrupted=message.interrupted)
        await self.compactor.compact(self._messages, self._set_messages)

    async def on_error(self, _worker: PipelineWorker, error: ErrorFrame) -> None:
        """A pipeline error (the worker's ``on_pipeline_error``): noted on the open turn."""
        turn = self._turn
        if turn is None:
            return
        stage = stage_of(error)
        turn.error_stage, turn.error_message = stage, str(error.error)[:500]
        if stage in _FATAL_STAGES:
            await self._commit(bot_text="", interrupted=False)

    async def _commit(self, *, bot_text: str, interrupted: bool) -> None:
        turn, self._turn = self._turn, None
        if turn is None or self._history is None:
            return
        self._index += 1
        record = TurnRecord(
            conversation_id=self._session_id,
            index=self._index,
            started=turn.started,
            ended=time.time(),
            user_text=turn.user_text,
            bot_text=bot_text,
            interrupted=interrupted,
            latency=turn.latency,
            error_stage=turn.error_stage,
            error_message=turn.error_message,
        )
        try:
            await self._history.add_turn(record)
        except (sqlite3.Error, RuntimeError) as error:
            logger.warning(f"[{self._session_id}] turn {self._index} not stored: {error!r}")

    def _messages(self) -> list[Message]:
        messages = self._context.get_messages()
        # Tool calls or provider-specific messages are not this window's to fold.
        if not all(isinstance(m, dict) for m in messages):
            return []
        return [cast("Message", m) for m in messages]

    def _messages_or_all(self) -> list[Message]:
        return [cast("Message", m) for m in self._context.get_messages()]

    def _set_messages(self, messages: list[Message]) -> None:
        self._context.set_messages(cast("list[LLMContextMessage]", messages))

    async def _prewarm(self, messages: Sequence[Message]) -> None:
        async with httpx.AsyncClient(trust_env=False) as client:
            await prewarm_with_llm(
                self._endpoint,
                self._config.llm.system_prompt,
                client,
                messages,
                timeout_secs=self._config.context_window.summary_timeout_secs,
                tools=openai_tools(self._config.tools),
            )

    async def _summarize(self, previous: str, folded: Sequence[Message]) -> str:
        llm = self._config.llm
        async with httpx.AsyncClient(trust_env=False) as client:
            return await summarize_folded(
                self._endpoint,
                llm.system_prompt,
                self._config.context_window,
                client,
                previous=previous or None,
                folded=folded,
            )
