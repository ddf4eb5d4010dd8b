"""The frames jetvoice adds to pipecat's, for the turn's early work while the VAD makes sure.

pipecat's eager-turn frames (``EagerTranscriptionFrame`` / ``EagerEndOfTurnCancelFrame``) are the
model: a provisional signal that work may start on, and its withdrawal. Here the signal comes
from the voice's level (the endpointing VAD, ``pipeline.audio.voice_activity``), once per audio
window, and every consumer reads the same frames instead of keeping a level gate of its own:

- :class:`VoiceQuietFrame`: the voice fell far below the speaker's speech level and stayed there
  ``quiet_secs``. The STT starts its early transcript, Smart Turn its early prediction.
- :class:`VoiceResumedFrame`: louder audio came after a :class:`VoiceQuietFrame`; whatever was
  started on it is stale.
- :class:`EarlyTranscriptFrame`: the early transcript of a turn not ended yet, still current when
  it was done; the LLM reads the coming turn's prompt ahead from it (``services.llm``).

All three are system frames: they travel in order with the input audio (also system frames) and
overtake the data frames of an answer being spoken.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.frames.frames import SystemFrame
from pipecat.processors.aggregators.llm_context import LLMContext


@dataclass
class VoiceQuietFrame(SystemFrame):
    """The user's voice went quiet ``quiet_secs`` ago, as of the audio just before this frame.

    Parameters:
        quiet_secs: how much quiet audio has arrived since the voice fell.
    """

    quiet_secs: float = 0.0


@dataclass
class VoiceResumedFrame(SystemFrame):
    """Louder audio followed a :class:`VoiceQuietFrame`: the user went on."""


@dataclass
class EarlyTranscriptFrame(SystemFrame):
    """The transcript of the turn so far, made when the voice went quiet.

    Parameters:
        text: the words, as the turn's own transcript will carry them if nothing follows.
    """

    text: str = ""


@dataclass
class LLMPrefillFrame(SystemFrame):
    """Asks the LLM service to read the prompt of ``context`` plus ``text`` ahead.

    Parameters:
        context: the conversation the coming turn will be appended to.
        text: the user's message the turn will send (the words aggregated so far and the early
            transcript).
    """

    context: LLMContext | None = None
    text: str = ""
