"""A user turn's later segments are heard with the turn's earlier audio in front of them.

The VAD cuts a segment at every pause of 200 ms, and the user aggregator joins the segments'
transcripts until Smart Turn says the turn is over. Decoded alone, a segment that starts
mid-sentence loses its context: "... blue during the day | but red at sunset" came out "but read
it sunset" (the benchmark's corpus), a short "ask not" came out "S." (JFK's recording). So
each segment after the first in a turn is decoded with the audio of the turn's earlier
segments in front of it, and only the words past what was already handed on go out:
:func:`new_words` finds where the earlier transcripts end in the whole decode (a word
alignment, so a word heard differently the second time does not come out twice).

The earlier transcripts cannot be taken back (they are in the aggregator); what improves is
each new piece. The whole decode costs little more than the segment alone: the window is cut
to the audio with an eight-second minimum, so a short turn's encoder pass costs the same, and
the decoder writes the earlier words again (a few ms each on a CPU).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

# Past this much earlier audio a segment is decoded alone (the short window stops at 28 s).
MAX_CONTEXT_SECS = 16.0
_BYTES_PER_SEC = 16000 * 2
_NON_WORD = re.compile(r"[^a-z0-9]+")


@dataclass
class TurnSoFar:
    """One user turn, as the STT saw it: its segments' audio and the transcripts handed on."""

    segments: list[bytes] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)

    def context(self) -> bytes:
        """The audio to put in front of the next segment; none past :data:`MAX_CONTEXT_SECS`."""
        audio = b"".join(self.segments)
        return audio if 0 < len(audio) <= MAX_CONTEXT_SECS * _BYTES_PER_SEC else b""


def _unit(word: str) -> str:
    return _NON_WORD.sub("", word.lower())


def new_words(heard: Sequence[str], whole: str) -> str:
    """The part of ``whole`` (a transcript of the turn's audio so far) past ``heard`` (the
    transcripts already handed on), found by aligning the words; ties go to the longer match,
    so that a word heard differently is not written twice."""
    said = [u for piece in heard for u in (_unit(w) for w in piece.split()) if u]
    words = whole.split()
    units = [_unit(w) for w in words]
    if not said:
        return whole.strip()
    # distance[j]: edit distance between all of ``said`` and the first j words of ``whole``;
    # empty units (a lone punctuation mark) cost nothing to skip.
    previous = [0] * (len(units) + 1)
    for j in range(1, len(units) + 1):
        previous[j] = previous[j - 1] + (1 if units[j - 1] else 0)
    for i in range(1, len(said) + 1):
        current = [i] + [0] * len(units)
        for j in range(1, len(units) + 1):
            unit = units[j - 1]
            if not unit:
                current[j] = min(current[j - 1], previous[j] + 1)
                continue
            current[j] = min(
                previous[j] + 1,
                current[j - 1] + 1,
                previous[j - 1] + (0 if said[i - 1] == unit else 1),
            )
        previous = current
    best = min(previous)
    cut = max(j for j, cost in enumerate(previous) if cost == best)
    return " ".join(words[cut:]).strip()
