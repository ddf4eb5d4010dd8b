"""Per-turn server-side latency: logged, and sent to the client on the data channel.

pipecat's ``UserBotLatencyObserver`` splits each user-to-bot interval into named contributions
(VAD wait, end-of-turn decision, STT, LLM, TTS, pipeline hops). The page shows them and the
benchmark records them next to its client-side voice-to-voice figure.
"""

from __future__ import annotations

from typing import Any

from loguru import logger
from pipecat.frames.frames import MetricsFrame
from pipecat.metrics.metrics import MetricsData, TurnMetricsData
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.observers.user_bot_latency_observer import LatencyBreakdown, UserBotLatencyObserver
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection

MESSAGE_LABEL = "jetvoice"


def breakdown_message(
    breakdown: LatencyBreakdown, turn: dict[str, Any] | None, index: int
) -> dict[str, Any]:
    """The JSON a client receives for one turn (``type: "latency"``)."""
    return {
        "label": MESSAGE_LABEL,
        "type": "latency",
        "data": {
            "turn": index,
            "measured_from": str(breakdown.measured_from) if breakdown.measured_from else None,
            "total_ms": round(breakdown.total_secs * 1000, 1),
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


class LatencyReport:
    """Wires the observers for one session; ``observers`` go to the ``PipelineWorker``."""

    def __init__(self, connection: SmallWebRTCConnection, session_id: str) -> None:
        self._connection = connection
        self._session_id = session_id
        self._turns = 0
        self._latency = UserBotLatencyObserver()
        self._turn_metrics = _TurnMetricsObserver()
        self._latency.add_event_handler("on_latency_breakdown", self._on_breakdown)

    @property
    def observers(self) -> list[BaseObserver]:
        """The observers to attach to the session's worker."""
        return [self._latency, self._turn_metrics]

    async def _on_breakdown(self, _observer: UserBotLatencyObserver, breakdown: Any) -> None:
        self._turns += 1
        turn = self._turn_metrics.last
        self._turn_metrics.last = None
        lines = "\n".join(breakdown.turn_contribution_lines())
        logger.info(f"[{self._session_id}] turn {self._turns} latency:\n{lines}")
        self._connection.send_app_message(breakdown_message(breakdown, turn, self._turns))
