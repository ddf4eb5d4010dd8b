"""An agent runtime with no models and no LLM, for tests of the HTTP and session layers."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection

from pipeline.config import (
    AgentConfig,
    LLMConfig,
    PipelineVariant,
    ServerConfig,
    STTConfig,
    TTSConfig,
)
from pipeline.runtime import AgentRuntime
from pipeline.sessions.party import Party


def unloaded_runtime(
    server: ServerConfig | None = None, variant: PipelineVariant = "tuned"
) -> AgentRuntime:
    """A runtime that says it is ready but never loads a model (``start`` is never called)."""
    nowhere = Path("/nonexistent")
    config = AgentConfig(
        profile="test",
        stt=STTConfig(model_dir=nowhere),
        tts=TTSConfig(model_path=nowhere, voices_path=nowhere),
        llm=LLMConfig(server="external", base_url="http://127.0.0.1:9/v1"),
        server=server or ServerConfig(),
        warmup=False,
        variant=variant,
    )
    runtime = AgentRuntime(config)
    runtime.ready = True
    return runtime


def idle_session(
    connection: SmallWebRTCConnection, _runtime: AgentRuntime, _session_id: str, _party: Party
) -> Coroutine[Any, Any, None]:
    """A session starter with no pipeline: it lasts until the peer connection closes."""
    closed = asyncio.Event()

    @connection.event_handler("closed")
    async def on_closed(_connection: SmallWebRTCConnection) -> None:
        closed.set()

    async def run() -> None:
        await closed.wait()

    return run()
