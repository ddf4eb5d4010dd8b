"""What the user hears and sees when a model service fails during a turn.

A failed LLM or speech-recognition call must not leave the person talking to silence: the bot
says a short apology, the page is told what failed, and the session carries on so the next
turn can work. A failed TTS cannot speak its own apology, so then only the page is told.
"""

from __future__ import annotations

import time

from loguru import logger
from pipecat.frames.frames import ErrorFrame, TTSSpeakFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService

from pipeline.ops.latency_report import MESSAGE_LABEL, send_to_page
from pipeline.ops.metrics import Metrics

APOLOGIES = {
    "llm": "Sorry, I couldn't come up with an answer just now. Please try again.",
    "stt": "Sorry, I didn't catch that. Could you say it again?",
}
# Several errors from one failure (a timeout, then the aborted stream) get one apology.
_MIN_APOLOGY_INTERVAL_SECS = 3.0


def stage_of(error: ErrorFrame) -> str:
    """Which stage of the loop an error came from: llm, stt, tts or other."""
    processor = error.processor
    if isinstance(processor, LLMService):
        return "llm"
    if isinstance(processor, STTService):
        return "stt"
    if isinstance(processor, TTSService):
        return "tts"
    return "other"


class FailureResponder:
    """Turns pipeline errors into a spoken apology and an ``error`` message to the page.

    The message goes to everyone in the conversation (``send_to_page``), the host and the guests
    who joined.
    """

    def __init__(
        self,
        worker: PipelineWorker,
        session_id: str,
        metrics: Metrics | None = None,
    ) -> None:
        self._worker = worker
        self._metrics = metrics
        self._session_id = session_id
        self._last_apology = 0.0
        self.failures: dict[str, int] = {}
        worker.add_event_handler("on_pipeline_error", self._on_error)

    async def _on_error(self, _worker: PipelineWorker, error: ErrorFrame) -> None:
        stage = stage_of(error)
        self.failures[stage] = self.failures.get(stage, 0) + 1
        if self._metrics is not None:
            self._metrics.error(stage)
        logger.warning(f"[{self._session_id}] {stage} failed: {error.error}")
        message = {
            "label": MESSAGE_LABEL,
            "type": "error",
            "data": {"stage": stage, "message": _short(error.error)},
        }
        await send_to_page(self._worker, message)
        apology = APOLOGIES.get(stage)
        now = time.monotonic()
        if apology and now - self._last_apology >= _MIN_APOLOGY_INTERVAL_SECS:
            self._last_apology = now
            await self._worker.queue_frames([TTSSpeakFrame(apology, append_to_context=False)])


def _short(message: str, limit: int = 200) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"
