"""Strip Qwen3-style ``<think>...</think>`` reasoning from streamed LLM text.

Thinking is disabled at the request (``enable_thinking: False``), but a server or model that
ignores the flag must still never make the bot read its reasoning aloud, so the text stream
is filtered before it reaches TTS. Tags may be split across streamed chunks.
"""

from __future__ import annotations

from pipecat.frames.frames import (
    Frame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

_OPEN = "<think>"
_CLOSE = "</think>"


class ThinkStripper:
    """Incremental filter: feed chunks, get back only the text outside think blocks."""

    def __init__(self) -> None:
        self._inside = False
        self._pending = ""

    def reset(self) -> None:
        """Forget any partial state (a new response begins)."""
        self._inside = False
        self._pending = ""

    def feed(self, chunk: str) -> str:
        """Return the speakable part of ``chunk``, holding back a possible partial tag."""
        text = self._pending + chunk
        self._pending = ""
        out: list[str] = []
        while text:
            tag = _CLOSE if self._inside else _OPEN
            index = text.find(tag)
            if index >= 0:
                if not self._inside:
                    out.append(text[:index])
                text = text[index + len(tag) :]
                self._inside = not self._inside
                continue
            # Hold back a suffix that could be the start of the tag split across chunks.
            keep = _partial_suffix(text, tag)
            if not self._inside:
                out.append(text[: len(text) - keep])
            self._pending = text[len(text) - keep :] if keep else ""
            break
        return "".join(out)

    def flush(self) -> str:
        """End of response: release held-back text unless it belongs to a think block."""
        pending, self._pending = self._pending, ""
        return "" if self._inside else pending


def _partial_suffix(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0


class ThinkFilter(FrameProcessor):
    """Pipeline processor applying :class:`ThinkStripper` to ``LLMTextFrame`` text."""

    def __init__(self) -> None:
        super().__init__()
        self._stripper = ThinkStripper()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Filter LLM text; pass every other frame through unchanged."""
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMFullResponseStartFrame):
            self._stripper.reset()
        elif isinstance(frame, LLMFullResponseEndFrame):
            rest = self._stripper.flush()
            if rest:
                await self.push_frame(LLMTextFrame(rest), direction)
        if isinstance(frame, LLMTextFrame):
            text = self._stripper.feed(frame.text)
            if text:
                frame.text = text
                await self.push_frame(frame, direction)
            return
        await self.push_frame(frame, direction)
