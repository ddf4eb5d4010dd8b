"""One measured turn, and its split into stages on the critical path.

The client measures voice-to-voice: from the true end of the user's speech (the last voiced
sample of the clip, on the microphone's real-time clock) to the arrival of the first non-silent
bot sample. The server's ``latency`` message (``pipeline/ops/latency_report.py``) carries, in
``timeline_ms``, the moments of the turn in milliseconds from the user's silence as the server
saw it. The stages below are the gaps between those moments, in the order they happen:

    0 ─ VAD stop ─ vad_stopped ─ STT ─ transcript ─ turn wait ─ turn_end ─ LLM ─ first clause
      ─ TTS ─ first audio ─ server output ─ bot_started_speaking ─ transport ─ client hears it

so the stacked stages add up to voice-to-voice. ``transport`` is client voice-to-voice minus
the server total; it also holds the gap between the true end of speech and the server's idea
of it (20 ms microphone frames, RNNoise's 10 ms frames, jitter buffer).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OVERHEAD_DEFINITION = (
    "overhead = client voice-to-voice - (VAD stop window + STT + end-of-turn wait beyond STT "
    "+ LLM time to the first speakable piece + TTS time to first audio), i.e. what the loop "
    "adds on top of the model compute on the critical path: the server's hand-off from first "
    "synthesized audio to the bot speaking, and transport to the client. The first speakable "
    "piece is a clause in the tuned pipeline and a whole sentence in the stock one (the moment "
    "its TTS starts an utterance); a server that does not report it falls back to the first "
    "token, the TTS stage then including the sentence aggregation."
)

# (key, label) of the table rows, in order; every key is a field of `Stages`.
STAGE_ROWS: tuple[tuple[str, str], ...] = (
    ("voice_to_voice", "voice-to-voice (client)"),
    ("server_total", "server total (silence → bot speaks)"),
    ("vad_stop", "VAD stop (from silence)"),
    ("end_of_turn", "end-of-turn decision (from silence)"),
    ("stt", "STT (VAD stop → transcript)"),
    ("turn_wait", "end-of-turn wait beyond STT"),
    ("llm_ttft", "LLM time to first token"),
    ("llm_first_clause", "LLM time to first clause"),
    ("tts_first_audio", "TTS time to first audio"),
    ("server_output", "server output (audio → speaking)"),
    ("transport", "transport (client − server total)"),
    ("transport_in", "  of which in: true end → server silence"),
    ("transport_out", "  of which out: bot speaks → client hears"),
    ("overhead", "overhead (v2v − model compute)"),
)

# (key, label) of the stacked segments in the plot; they add up to voice-to-voice.
SEGMENTS: tuple[tuple[str, str], ...] = (
    ("vad_stop", "VAD stop"),
    ("stt", "STT"),
    ("turn_wait", "turn wait"),
    ("llm_segment", "LLM to first clause"),
    ("tts_first_audio", "TTS first audio"),
    ("server_output", "server output"),
    ("transport", "transport"),
)


@dataclass(frozen=True)
class Stages:
    """Milliseconds per stage of one turn; None where the server did not report it."""

    voice_to_voice: float | None = None
    server_total: float | None = None
    vad_stop: float | None = None
    end_of_turn: float | None = None
    stt: float | None = None
    turn_wait: float | None = None
    llm_ttft: float | None = None
    llm_first_clause: float | None = None
    llm_segment: float | None = None
    """The LLM's part of the critical path: to the first clause, else to the first token."""
    tts_first_audio: float | None = None
    server_output: float | None = None
    transport: float | None = None
    transport_in: float | None = None
    """Transport minus `transport_out`: the true end of speech to the server's idea of the
    user's silence (microphone frames, jitter buffer, RNNoise, VAD's reading of the tail)."""
    transport_out: float | None = None
    """Arrival of the server's latency message (sent as the bot starts speaking) to the first
    voiced sample: the audio's way out, taking the data channel's delivery as instant."""
    overhead: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        """JSON form, rounded to 0.1 ms."""
        return {k: (None if v is None else round(v, 1)) for k, v in asdict(self).items()}


def _sub(later: float | None, earlier: float | None) -> float | None:
    return None if later is None or earlier is None else later - earlier


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def derive_stages(
    voice_to_voice_ms: float | None,
    latency: dict[str, Any] | None,
    message_to_voice_ms: float | None = None,
) -> Stages:
    """Split a turn into stages from the client's voice-to-voice and the server's message data.

    `message_to_voice_ms` (latency message arrival to first voice) splits transport into its
    two directions. Missing moments (an older server, the stock pipeline's lack of a clause
    chunker) leave their stages None; nothing is guessed.
    """
    if latency is None or latency.get("measured_from") != "user_silence":
        # No message, or one whose clock did not start at the user's silence (pipecat's
        # observer loses it when a turn is split and an interruption lands after the last
        # VAD stop): its figures are not this turn's.
        return Stages(voice_to_voice=voice_to_voice_ms)
    raw = latency.get("timeline_ms")
    timeline: dict[str, Any] = raw if isinstance(raw, dict) else {}
    moment = {k: _number(v) for k, v in timeline.items()}
    total = _number(latency.get("total_ms"))
    vad, transcript = moment.get("vad_stopped"), moment.get("transcript")
    turn_end = moment.get("turn_end")
    first_token, first_clause = moment.get("llm_first_token"), moment.get("llm_first_clause")
    first_audio = moment.get("tts_first_audio")
    speaking = moment.get("bot_started_speaking", total)
    # The LLM can start only once the turn has ended and its transcript is in.
    llm_start = None if turn_end is None or transcript is None else max(turn_end, transcript)
    turn_wait = _sub(turn_end, transcript)
    anchor = first_clause if first_clause is not None else first_token
    transport = _sub(voice_to_voice_ms, total)
    stages = Stages(
        voice_to_voice=voice_to_voice_ms,
        server_total=total,
        vad_stop=vad,
        end_of_turn=turn_end,
        stt=_sub(transcript, vad),
        turn_wait=None if turn_wait is None else max(0.0, turn_wait),
        llm_ttft=_sub(first_token, llm_start),
        llm_first_clause=_sub(first_clause, llm_start),
        llm_segment=_sub(anchor, llm_start),
        tts_first_audio=_sub(first_audio, anchor),
        server_output=_sub(speaking, first_audio),
        transport=transport,
        transport_in=_sub(transport, message_to_voice_ms),
        transport_out=None if transport is None else message_to_voice_ms,
    )
    compute = (
        stages.vad_stop,
        stages.stt,
        stages.turn_wait,
        stages.llm_segment,
        stages.tts_first_audio,
    )
    if voice_to_voice_ms is not None and all(c is not None for c in compute):
        overhead = voice_to_voice_ms - sum(c for c in compute if c is not None)
        stages = Stages(**{**asdict(stages), "overhead": overhead})
    return stages


@dataclass(frozen=True)
class TurnResult:
    """Everything measured for one spoken turn (failed turns included, with their error)."""

    variant: str
    index: int
    """Order of the turn in this variant's run, from 0."""
    call: int
    conversation: str
    repeat: int
    turn_id: str
    source: str
    expected: str
    audio_sha256: str
    speech_s: float
    """Seconds of the clip up to the end of its speech (lead silence included)."""
    warmup: bool
    ok: bool
    error: str | None = None
    transcript: str | None = None
    answer: str | None = None
    server_turns: int = 0
    """Server latency messages received during the turn (more than one: the turn was split)."""
    server_errors: tuple[str, ...] = ()
    """``stage: message`` of the server's error messages during the turn."""
    smart_turn_probability: float | None = None
    smart_turn_complete: bool | None = None
    fallback: bool | None = None
    answer_duration_s: float | None = None
    longest_pause_s: float | None = None
    """Longest silence between the answer's first and last sound: a piece of speech that was
    not synthesized before the one before it finished playing shows up here."""
    stages: Stages = field(default_factory=Stages)
    latency: dict[str, Any] | None = None
    """The server's latency message data, as received."""

    @property
    def voice_to_voice_ms(self) -> float | None:
        """Client-side voice-to-voice in milliseconds (None for a failed turn)."""
        return self.stages.voice_to_voice

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        data = asdict(self)
        data["stages"] = self.stages.as_dict()
        data["voice_to_voice_ms"] = (
            None if self.voice_to_voice_ms is None else round(self.voice_to_voice_ms, 1)
        )
        return data


def smart_turn_fields(
    latency: dict[str, Any] | None,
) -> tuple[float | None, bool | None, bool | None]:
    """(probability, is_complete, fallback fired) from a latency message's data."""
    if latency is None:
        return None, None, None
    verdict = latency.get("end_of_turn")
    probability = complete = None
    if isinstance(verdict, dict):
        probability = _number(verdict.get("probability"))
        raw_complete = verdict.get("is_complete")
        complete = raw_complete if isinstance(raw_complete, bool) else None
    fallback = latency.get("fallback")
    if not isinstance(fallback, bool):
        fallback = None if complete is None else not complete
    return probability, complete, fallback
