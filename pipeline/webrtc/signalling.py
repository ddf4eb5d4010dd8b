"""What pipecat's small-webrtc browser client sends, besides media.

The offer goes out as one POST; with trickle ICE the candidates follow in PATCH bodies. Once the
data channel opens the client announces its tracks, sends RTVI client-ready, and then pings
about once a second (pipecat treats a peer silent for 3 s as gone and stops sending to it).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

# RTVI protocol version announced in client-ready; pipecat 1.14 speaks 2.x.
RTVI_CLIENT_VERSION = "2.2.0"


@dataclass(frozen=True)
class ServerMessage:
    """A JSON message the server sent on the data channel, with its arrival time."""

    received_at: float
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str | None:
        """The message's `type` field (RTVI: "bot-ready", "user-transcription", ...)."""
        value = self.data.get("type")
        return value if isinstance(value, str) else None

    @property
    def label(self) -> str | None:
        """The message's `label` field: "rtvi-ai" for pipecat's RTVI, "jetvoice" for ours."""
        value = self.data.get("label")
        return value if isinstance(value, str) else None


def parse_answer(status_code: int, body: str) -> dict[str, str]:
    """Validate the server's reply to an offer; returns its `sdp`, `type` and `pc_id`, and the
    `session_id` of the conversation when the server names it (jetvoice does).

    Raises:
        ConnectionError: the offer was refused or the reply is not a usable answer.
    """
    if status_code != 200:
        raise ConnectionError(f"offer refused: HTTP {status_code} {body[:200]!r}")
    try:
        answer = json.loads(body)
    except ValueError:
        raise ConnectionError("offer answer is not JSON") from None
    if not isinstance(answer, dict) or answer.get("type") != "answer":
        raise ConnectionError("offer answer lacks type 'answer'")
    for key in ("sdp", "pc_id"):
        if not isinstance(answer.get(key), str) or not answer[key]:
            raise ConnectionError(f"offer answer lacks {key!r}")
    parsed = {"sdp": answer["sdp"], "type": "answer", "pc_id": answer["pc_id"]}
    if isinstance(answer.get("session_id"), str):
        parsed["session_id"] = answer["session_id"]
    return parsed


def ping_message() -> str:
    """Keep-alive text; pipecat only checks that it starts with "ping"."""
    return f"ping: {int(time.time() * 1000)}"


def split_candidates(sdp: str) -> tuple[str, list[dict[str, Any]]]:
    """Strip ICE candidates from an SDP, returning them in the PATCH body's shape.

    With BUNDLE every m-section repeats the same candidates; like a browser, each is sent once,
    for the first m-section that lists it.
    """
    kept: list[str] = []
    candidates: list[dict[str, Any]] = []
    seen: set[str] = set()
    mline_index = -1
    mid: str | None = None
    pending: list[str] = []

    def flush() -> None:
        for candidate in pending:
            if candidate not in seen:
                seen.add(candidate)
                candidates.append(
                    {"candidate": candidate, "sdp_mid": mid, "sdp_mline_index": mline_index}
                )
        pending.clear()

    for line in sdp.splitlines():
        if line.startswith("m="):
            flush()
            mline_index += 1
            mid = None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        if line.startswith("a=candidate:"):
            pending.append(line[len("a=") :])
            continue
        if line == "a=end-of-candidates":
            continue
        kept.append(line)
    flush()
    return "\r\n".join(kept) + "\r\n", candidates


def track_status_message(receiver_index: int, *, enabled: bool) -> dict[str, Any]:
    """Signalling message telling pipecat whether the track at `receiver_index` is on."""
    return {
        "type": "signalling",
        "message": {"type": "trackStatus", "receiver_index": receiver_index, "enabled": enabled},
    }


def client_ready_message() -> dict[str, Any]:
    """RTVI client-ready; pipecat answers bot-ready once its pipeline runs."""
    return {
        "id": uuid.uuid4().hex,
        "label": "rtvi-ai",
        "type": "client-ready",
        "data": {"version": RTVI_CLIENT_VERSION, "about": {"library": "jetvoice-loopback-caller"}},
    }
