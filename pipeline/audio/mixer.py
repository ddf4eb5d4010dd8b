"""Several microphones, one conversation: mixes joined peers' audio into the session's input.

A session's pipeline hears one 16 kHz mono stream (Silero VAD, Smart Turn and Whisper each
follow one voice stream in time). When more people join a conversation from other devices,
their audio must become part of that one stream: summed sample by sample, per 20 ms time
slot. Interleaving their frames instead would hand VAD twice as many frames as wall-clock time,
alternating between two unrelated signals, and Whisper a segment in which two recordings are
spliced every 20 ms.

The host's microphone (the peer that started the session) keeps its own timing: each of its
frames gets the joined peers' audio for the same length added to it. Joined peers' audio is
decoded on its own schedule, so each goes through a small jitter buffer (:class:`MixerInput`)
first. When the host sends no audio (it left, and the conversation goes on with the others), a
clock takes over and emits the joined peers' mix every 20 ms, so VAD still sees a continuous
stream. With nobody joined, frames pass through untouched.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import numpy.typing as npt
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

FRAME_SECS = 0.02
# A joined peer's audio is held this long before it is mixed, to ride out arrival jitter.
PRIME_SECS = 0.04
# Past this much buffered audio a joined peer's buffer is cut back to PRIME_SECS: its clock runs
# a little fast, or the event loop stalled, and the backlog would otherwise be added latency.
MAX_BUFFER_SECS = 0.3
# The host counts as silent (its frames stopped) after this long without a frame.
HOST_SILENT_SECS = 0.1
# The clock emits at most this many frames at once to catch up after a stall; past that it
# skips ahead rather than send a burst.
MAX_CATCH_UP_FRAMES = 5

_INT16_MIN, _INT16_MAX = -32768, 32767


def mix_pcm16(base: bytes, others: list[bytes]) -> bytes:
    """``base`` with each of ``others`` added sample by sample, clipped to 16 bits.

    All are 16-bit mono at the same rate; an ``other`` shorter than ``base`` is added to its
    start, a longer one is cut to ``base``'s length.
    """
    mixed: npt.NDArray[np.int32] = np.frombuffer(base, dtype=np.int16).astype(np.int32)
    for other in others:
        samples = np.frombuffer(other[: len(base)], dtype=np.int16)
        mixed[: len(samples)] += samples
    return np.clip(mixed, _INT16_MIN, _INT16_MAX).astype(np.int16).tobytes()


class MixerInput:
    """One joined peer's audio on its way to the mix: a jitter buffer of 16-bit mono PCM."""

    def __init__(
        self,
        sample_rate: int,
        *,
        prime_secs: float = PRIME_SECS,
        max_secs: float = MAX_BUFFER_SECS,
    ) -> None:
        """Buffer ``prime_secs`` before the first read; never hold more than ``max_secs``."""
        self._prime = _even(sample_rate * 2 * prime_secs)
        self._max = _even(sample_rate * 2 * max_secs)
        self._buffer = bytearray()
        self._primed = False
        self.underruns = 0
        self.trimmed_bytes = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes waiting to be mixed."""
        return len(self._buffer)

    def write(self, audio: bytes) -> None:
        """Add decoded audio (whole 16-bit samples at the mixer's rate)."""
        self._buffer += audio[: len(audio) - len(audio) % 2]
        if len(self._buffer) > self._max:
            excess = len(self._buffer) - self._prime
            del self._buffer[:excess]
            self.trimmed_bytes += excess

    def read(self, size: int) -> bytes | None:
        """Up to ``size`` bytes for the next time slot; None while (re)filling the buffer.

        Running dry mid-slot gives what there is (the rest of the slot is silence from this
        peer) and refills to the priming level before it is heard again.
        """
        if not self._primed:
            if len(self._buffer) < self._prime:
                return None
            self._primed = True
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        if len(chunk) < size:
            self._primed = False
            self.underruns += 1
        return chunk


class AudioMixer(FrameProcessor):
    """Adds the joined peers' audio to the host's microphone frames (see the module doc)."""

    def __init__(
        self,
        sample_rate: int,
        *,
        frame_secs: float = FRAME_SECS,
        host_silent_secs: float = HOST_SILENT_SECS,
        **kwargs: object,
    ) -> None:
        """``sample_rate``: the pipeline's input rate, which every input must already have."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._sample_rate = sample_rate
        self._frame_secs = frame_secs
        self._frame_bytes = _even(sample_rate * 2 * frame_secs)
        self._host_silent_secs = host_silent_secs
        self._inputs: dict[str, MixerInput] = {}
        self._last_host_frame = float("-inf")
        self._started = False
        self._clock: asyncio.Task[None] | None = None
        self.clock_frames = 0

    @property
    def sample_rate(self) -> int:
        """The rate every input is mixed at."""
        return self._sample_rate

    @property
    def inputs(self) -> int:
        """Joined peers whose audio is being mixed in."""
        return len(self._inputs)

    def add_input(self, key: str) -> MixerInput:
        """A new joined peer's input, mixed in from now on."""
        if key in self._inputs:
            raise ValueError(f"mixer input {key!r} exists already")
        source = MixerInput(self._sample_rate)
        self._inputs[key] = source
        self._start_clock()
        return source

    def remove_input(self, key: str) -> None:
        """Stop mixing a peer's input (its clock stops by itself once no input is left)."""
        self._inputs.pop(key, None)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Mix joined peers into the host's audio frames; run the clock with the pipeline."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and direction == FrameDirection.DOWNSTREAM:
            self._mix_into(frame)
        elif isinstance(frame, StartFrame):
            # The host's audio is expected from the start; the clock steps in only once it is
            # missing for host_silent_secs.
            self._last_host_frame = time.monotonic()
            self._started = True
            self._start_clock()
        elif isinstance(frame, (EndFrame, CancelFrame)):
            self._started = False
            await self._stop_clock()
        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        """Stop the clock."""
        await super().cleanup()
        self._started = False
        await self._stop_clock()

    def _mix_into(self, frame: InputAudioRawFrame) -> None:
        # Whatever is not whole 16-bit mono samples at the pipeline rate goes on untouched to the
        # audio ingress, which repairs it; the host's timing is kept either way.
        self._last_host_frame = time.monotonic()
        if not self._inputs:
            return
        audio = bytes(frame.audio)
        if frame.sample_rate != self._sample_rate or frame.num_channels != 1 or len(audio) % 2:
            return
        others = [chunk for source in self._inputs.values() if (chunk := source.read(len(audio)))]
        if others:
            frame.audio = mix_pcm16(audio, others)

    def _start_clock(self) -> None:
        if self._started and self._inputs and self._clock is None:
            self._clock = self.create_task(self._run_clock(), f"{self}::clock")

    async def _stop_clock(self) -> None:
        clock, self._clock = self._clock, None
        if clock is not None and clock is not asyncio.current_task():
            await self.cancel_task(clock)

    async def _run_clock(self) -> None:
        """While anyone joined: emit their mix every frame while the host sends nothing."""
        frame_secs = self._frame_secs
        next_slot = time.monotonic() + frame_secs
        while self._inputs:
            await asyncio.sleep(max(0.0, next_slot - time.monotonic()))
            now = time.monotonic()
            slots = 1 + int((now - next_slot) / frame_secs)
            if slots > MAX_CATCH_UP_FRAMES:
                # Stalled for long: skip ahead rather than send a burst.
                slots, next_slot = 1, now
            next_slot += slots * frame_secs
            if now - self._last_host_frame < self._host_silent_secs:
                continue  # the host's frames set the pace and carry the mix
            for _ in range(slots):
                await self._emit_slot()
        self._clock = None

    async def _emit_slot(self) -> None:
        silence = bytes(self._frame_bytes)
        others = [c for source in self._inputs.values() if (c := source.read(self._frame_bytes))]
        self.clock_frames += 1
        await self.push_frame(
            InputAudioRawFrame(
                audio=mix_pcm16(silence, others) if others else silence,
                sample_rate=self._sample_rate,
                num_channels=1,
            )
        )


def _even(value: float) -> int:
    """A byte count rounded down to whole 16-bit samples."""
    count = int(value)
    return count - count % 2
