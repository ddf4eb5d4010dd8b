"""Per-turn server-side latency: logged, and sent to the client on the data channel.

pipecat's ``UserBotLatencyObserver`` splits each user-to-bot interval into named contributions
(VAD wait, end-of-turn decision, STT, LLM, TTS, pipeline hops). The page shows them and the
benchmark records them next to its client-side voice-to-voice figure.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    LLMTextFrame,
    MetricsFrame,
    OutputTransportMessageUrgentFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import MetricsData, TurnMetricsData
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.observers.user_bot_latency_observer import (
    LatencyBreakdown,
    MeasuredFrom,
    UserBotLatencyObserver,
)
from pipecat.pipeline.worker import PipelineWorker
from pipecat.services.llm_service import LLMService
from pipecat.services.tts_service import TTSService

from pipeline.ops.metrics import Metrics

MESSAGE_LABEL = "jetvoice"


async def send_to_page(worker: PipelineWorker, message: dict[str, Any]) -> None:
    """Send ``message`` on the data channel of everyone in the session's conversation.

    It goes down the pipeline as an urgent (system) frame to the output transport, which sends
    it to the host and, with guests, to each of them (pipeline.webrtc.shared_transport); a
    message given to the host's connection directly would never reach a guest.
    """
    await worker.queue_frames([OutputTransportMessageUrgentFrame(message=message)])


# Silero reads 512-sample windows of the 16 kHz input.
SILERO_WINDOW_SECS = 512 / 16000


def vad_stop_window_secs(stop_secs: float, window_secs: float = SILERO_WINDOW_SECS) -> float:
    """The quiet audio the VAD's stop really waits for, counted in whole windows.

    pipecat's VAD reports the stop after ``round(stop_secs / window)`` quiet windows, and at
    least one: 0.2 s is six 32 ms windows, 192 ms. Subtracting 0.2 s instead would put the
    user's silence 8 ms early and count transport as VAD time.
    """
    return max(1, round(stop_secs / window_secs)) * window_secs


def breakdown_message(
    breakdown: LatencyBreakdown,
    turn: dict[str, Any] | None,
    index: int,
    timeline: TurnTimeline | None = None,
    *,
    stop_secs: float = 0.2,
    now: float | None = None,
) -> dict[str, Any]:
    """The JSON a client receives for one turn (``type: "latency"``).

    The turn is timed from the user's true silence: the last VAD stop minus the VAD's stop
    window. pipecat's observer loses that start when a pause inside the user's turn (a VAD stop,
    then more speech) resets it; the session's own timeline keeps it, so such turns are timed
    too. Absolute Unix times let a client on the same clock split the transport legs exactly.
    """
    now = time.time() if now is None else now
    vad_stopped = timeline.moments.get("vad_stopped") if timeline is not None else None
    if vad_stopped is not None:
        origin: float | None = vad_stopped - stop_secs
        measured_from: str | None = str(MeasuredFrom.USER_SILENCE)
        total_secs = now - vad_stopped + stop_secs
    else:
        origin = None
        measured_from = str(breakdown.measured_from) if breakdown.measured_from else None
        total_secs = breakdown.total_secs
    moments = timeline.relative_ms(origin) if timeline is not None and origin else {}
    if moments:
        moments["bot_started_speaking"] = round(total_secs * 1000, 1)
    return {
        "label": MESSAGE_LABEL,
        "type": "latency",
        "data": {
            "turn": index,
            "measured_from": measured_from,
            "total_ms": round(total_secs * 1000, 1),
            "user_silence_unix": round(origin, 4) if origin else None,
            "bot_started_unix": round(now, 4),
            "user_turn_ms": _ms(breakdown.user_turn_secs),
            "contributions": [
                {
                    "key": c.key,
                    "label": c.label,
                    "owner": c.owner,
                    "kind": str(c.owner_kind),
                    "ms": round(c.duration_secs * 1000, 1),
                }
                for c in breakdown.contributions
            ],
            "ttfb": [
                {"processor": t.processor, "ms": round(t.duration_secs * 1000, 1)}
                for t in breakdown.ttfb
            ],
            "end_of_turn": turn,
            # Smart Turn judged the turn incomplete and the silence fallback ended it.
            "fallback": turn is not None and not turn.get("is_complete", True),
            "timeline_ms": moments,
            "transcript": timeline.transcript if timeline is not None else None,
        },
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class _TurnMetricsObserver(BaseObserver):
    """Keeps the last Smart Turn verdict (probability, whether it judged the turn complete)."""

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[str, Any] | None = None

    async def on_push_frame(self, data: FramePushed) -> None:
        """Pick Smart Turn's metrics out of the metrics frames."""
        if not isinstance(data.frame, MetricsFrame):
            return
        for item in data.frame.data:
            if isinstance(item, TurnMetricsData):
                self.last = _turn_fields(item)


def _turn_fields(item: MetricsData) -> dict[str, Any]:
    fields = item.model_dump(exclude={"processor", "model"})
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in fields.items()}


class TurnTimeline(BaseObserver):
    """Wall-clock moments of the current turn, on the same clock as pipecat's latency observer.

    pipecat's breakdown names the parts of the interval; the benchmark also needs the moments
    between them: when the LLM's first token and first speakable clause appeared and when the
    first synthesized audio left the TTS.
    """

    _NAMES = (
        "vad_stopped",
        "turn_end",
        "transcript",
        "llm_first_token",
        "llm_first_clause",
        "tts_first_audio",
    )

    def __init__(self) -> None:
        super().__init__(observe_every_push=False)
        self.moments: dict[str, float] = {}
        self.transcript: str | None = None

    def relative_ms(self, origin: float) -> dict[str, float | None]:
        """Each moment in milliseconds after ``origin`` (a ``time.time()`` value)."""
        return {
            name: round((self.moments[name] - origin) * 1000, 1) if name in self.moments else None
            for name in self._NAMES
        }

    def _first(self, name: str) -> None:
        self.moments.setdefault(name, time.time())

    async def on_push_frame(self, data: FramePushed) -> None:
        """Record the first occurrence of each moment in a turn."""
        frame: Frame = data.frame
        if isinstance(frame, VADUserStartedSpeakingFrame):
            # Speech resumed: the moments recorded so far belonged to an unfinished turn (the
            # transcript of its earlier part still counts).
            self.moments.clear()
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self.moments["vad_stopped"] = time.time()
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._first("turn_end")
        elif isinstance(frame, TranscriptionFrame):
            self.moments["transcript"] = time.time()
            self.transcript = f"{self.transcript} {frame.text}" if self.transcript else frame.text
        elif isinstance(frame, LLMTextFrame) and isinstance(data.source, LLMService):
            self._first("llm_first_token")
        elif isinstance(frame, TTSStartedFrame) and isinstance(data.source, TTSService):
            # The TTS starts an utterance once its aggregator released the first speakable
            # piece: a clause here, a whole sentence in pipecat's stock TTS.
            self._first("llm_first_clause")
        elif isinstance(frame, TTSAudioRawFrame) and isinstance(data.source, TTSService):
            self._first("tts_first_audio")

    def take(self) -> TurnTimeline:
        """Hand over this turn's moments and start the next turn empty."""
        snapshot = TurnTimeline()
        snapshot.moments, snapshot.transcript = dict(self.moments), self.transcript
        self.moments.clear()
        self.transcript = None
        return snapshot


class LatencyReport:
    """Wires the observers for one session; ``observers`` go to the ``PipelineWorker``."""

    def __init__(
        self,
        send_message: Callable[[dict[str, Any]], Awaitable[None]],
        session_id: str,
        metrics: Metrics | None = None,
        *,
        stop_secs: float = 0.2,
        on_report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        """``send_message`` delivers each turn's message to the page (through the pipeline's
        output, to everyone in the conversation); ``on_report`` also receives its data (the
        conversation history)."""
        self._send_message = send_message
        self._on_report = on_report
        self._stop_secs = vad_stop_window_secs(stop_secs)
        self._metrics = metrics
        self._session_id = session_id
        self._turns = 0
        self._latency = UserBotLatencyObserver()
        self._turn_metrics = _TurnMetricsObserver()
        self._timeline = TurnTimeline()
        self._latency.add_event_handler("on_latency_breakdown", self._on_breakdown)

    @property
    def observers(self) -> list[BaseObserver]:
        """The observers to attach to the session's worker."""
        return [self._timeline, self._turn_metrics, self._latency]

    async def _on_breakdown(self, _observer: UserBotLatencyObserver, breakdown: Any) -> None:
        self._turns += 1
        turn = self._turn_metrics.last
        self._turn_metrics.last = None
        lines = "\n".join(breakdown.turn_contribution_lines())
        logger.info(f"[{self._session_id}] turn {self._turns} latency:\n{lines}")
        timeline = self._timeline.take()
        message = breakdown_message(
            breakdown, turn, self._turns, timeline, stop_secs=self._stop_secs
        )
        data = message["data"]
        if self._metrics is not None and data["measured_from"] == str(MeasuredFrom.USER_SILENCE):
            stages = {c.key: c.duration_secs for c in breakdown.contributions}
            stages["total"] = data["total_ms"] / 1000
            self._metrics.turn(stages, fallback=data["fallback"])
        if self._on_report is not None:
            self._on_report(data)
        await self._send_message(message)
