"""The process-wide runtime: models loaded once and the LLM server, shared by all sessions."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from loguru import logger

from pipeline.config import AgentConfig
from pipeline.conversation.store import ConversationWriter
from pipeline.ops.compute_priority import compute_executor
from pipeline.ops.metrics import Metrics
from pipeline.tools.schemas import openai_tools
from services.llm_gate import LLMGate
from services.llm_server import LLMEndpoint, LLMServer
from services.stt import WhisperEngine
from services.tts import KokoroEngine

T = TypeVar("T")


@dataclass
class StartupTimings:
    """How long each part of start-up took, in seconds (reported by /health and the logs)."""

    stt_load: float = 0.0
    tts_load: float = 0.0
    llm_ready: float = 0.0
    warm_up: float = 0.0
    total: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


class AgentRuntime:
    """Owns the shared engines and the LLM server; ``start`` once, ``close`` once."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.llm_server = LLMServer(config.llm, avoid_ports=(config.server.port,))
        # Every session's turns line up here for a server that serves one at a time.
        self.llm_gate = LLMGate(config.llm.parallel_requests, config.llm.queue_timeout_secs)
        self.whisper: WhisperEngine | None = None
        self.kokoro: KokoroEngine | None = None
        self.timings = StartupTimings()
        self.metrics = Metrics()
        self.ready = False
        self._closed = False
        self._supervisor: asyncio.Task[None] | None = None
        history = config.history
        # With the history off nothing is opened or written: no file at all.
        self.history: ConversationWriter | None = (
            ConversationWriter(history.path, retention_days=history.retention_days)
            if history.enabled and history.path is not None
            else None
        )
        self._pruner: asyncio.Task[None] | None = None
        self._openers: asyncio.Task[int] | None = None
        self._openers_stop = threading.Event()
        # Whisper and Kokoro are built, warmed and run on these threads, below the audio path.
        self.compute = compute_executor(config.compute_nice, "models")

    def models_status(self) -> dict[str, dict[str, bool | int]]:
        """Per in-process model: loaded yet, and how many times this process constructed one."""
        return {
            "whisper": {"loaded": self.whisper is not None, "loads": WhisperEngine.loads},
            "kokoro": {"loaded": self.kokoro is not None, "loads": KokoroEngine.loads},
        }

    @property
    def llm_endpoint(self) -> LLMEndpoint:
        """Where sessions send chat completions."""
        return self.llm_server.endpoint

    async def start(self) -> None:
        """Load the models (off the event loop) while the LLM server starts, then warm up."""
        started = time.perf_counter()
        if self.history is not None:
            pruned = await self.history.open()
            logger.info(f"Conversation history at {self.history.path} ({pruned} expired removed)")
            self._pruner = asyncio.create_task(self._prune_daily(), name="history-pruner")
        llm_task = asyncio.create_task(self._start_llm())
        try:
            # Loading one model at a time keeps peak memory and core contention down while
            # the LLM server is loading its own weights in parallel.
            self.whisper = await self._on_compute(WhisperEngine, self.config.stt, self.compute)
            self.timings.stt_load = self.whisper.load_secs
            self.kokoro = await self._on_compute(KokoroEngine, self.config.tts, self.compute)
            self.timings.tts_load = self.kokoro.load_secs
            await llm_task
        except BaseException:
            llm_task.cancel()
            await asyncio.gather(llm_task, return_exceptions=True)
            raise
        if self.config.warmup:
            warm_started = time.perf_counter()
            await asyncio.gather(
                self._on_compute(self.whisper.warm_up),
                self._on_compute(self.kokoro.warm_up, self._fixed_phrases()),
                self._warm_llm(),
            )
            self.timings.warm_up = time.perf_counter() - warm_started
        self.timings.total = time.perf_counter() - started
        # A restarted server reads the system prompt again before it says it is back, so the
        # first turn after a crash is not the one that pays for it.
        self._supervisor = asyncio.create_task(
            self.llm_server.supervise(on_back=self._warm_llm if self.config.warmup else None),
            name="llm-supervisor",
        )
        if self.config.warmup and self.config.tts.opener_phrases:
            # After ready, not before: the server answers at once, and the first turns find
            # more of the openers cached as the seconds pass.
            self._openers = asyncio.create_task(
                self._on_compute(
                    self.kokoro.prerender, self.config.tts.opener_phrases, self._openers_stop
                ),
                name="tts-openers",
            )
        self.ready = True
        logger.info(
            "Models ready in {:.1f} s (whisper {:.2f} s, kokoro {:.2f} s, LLM server {:.1f} s, "
            "warm-up {:.2f} s)",
            self.timings.total,
            self.timings.stt_load,
            self.timings.tts_load,
            self.timings.llm_ready,
            self.timings.warm_up,
        )

    async def _on_compute(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.compute, function, *args)

    def _fixed_phrases(self) -> tuple[str, ...]:
        from pipeline.ops.fallback import APOLOGIES

        greetings = (self.config.greeting, self.config.resume_greeting)
        greeting = tuple(g for g in greetings if g)
        tools = self.config.tools
        tool_phrases = (tools.working_phrase, tools.timeout_apology) if tools.enabled else ()
        return (*greeting, *APOLOGIES.values(), *(p for p in tool_phrases if p))

    async def _prune_daily(self) -> None:
        """Apply the history's retention period once a day while the server runs."""
        while self.history is not None:
            await asyncio.sleep(86400)
            try:
                await self.history.prune()
            except (sqlite3.Error, RuntimeError) as error:
                logger.warning(f"history pruning failed: {error!r}")

    async def _start_llm(self) -> None:
        started = time.perf_counter()
        await self.llm_server.start()
        self.timings.llm_ready = time.perf_counter() - started

    async def _warm_llm(self) -> None:
        """One tiny completion with the real system prompt and tools, so the prompt prefix they
        render to is in the KV cache."""
        endpoint = self.llm_endpoint
        body: dict[str, object] = {
            "model": endpoint.model,
            "messages": [
                {"role": "system", "content": self.config.llm.system_prompt},
                {"role": "user", "content": "Hello."},
            ],
            "max_tokens": 1,
            "temperature": 0.0,
        }
        tools = openai_tools(self.config.tools)
        if tools:
            body["tools"] = tools
        headers = {"Authorization": f"Bearer {endpoint.api_key}"}
        # Part of start-up, so it gets start-up's bound, not a turn's: on a busy machine the
        # agent's own model warm-ups share the cores with the LLM server's first prompt (at its
        # lower priority), and 30 s was not always enough for it (the agent then exited).
        timeout = httpx.Timeout(self.config.llm.start_timeout_secs, connect=2.0)
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            try:
                response = await client.post(
                    f"{endpoint.base_url}/chat/completions", json=body, headers=headers
                )
                response.raise_for_status()
            except httpx.HTTPError as error:
                # A server that crashes on its first real request (a CPU feature the build
                # assumed) otherwise shows up as a bare "Server disconnected".
                raise await self.llm_server.failure(
                    f"the LLM's warm-up request failed ({error!r})"
                ) from error

    async def close(self) -> None:
        """Stop the LLM supervisor and server, then close the history. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.ready = False
        # The supervisor first: one caught mid-restart would start a new server after close.
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        await self.llm_server.close()
        if self._pruner is not None:
            self._pruner.cancel()
            await asyncio.gather(self._pruner, return_exceptions=True)
        if self._openers is not None:
            # The worker thread cannot be cancelled: it stops after the phrase it is on.
            self._openers_stop.set()
            await asyncio.gather(self._openers, return_exceptions=True)
        # A call still running (a hung synthesis) finishes on its own; nothing waits for it.
        self.compute.shutdown(wait=False, cancel_futures=True)
        if self.history is not None:
            await self.history.close()
