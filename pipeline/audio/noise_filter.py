"""RNNoise on the 16 kHz microphone stream, without a frame of audio waiting in a buffer.

RNNoise denoises 10 ms frames of 48 kHz audio (480 samples). pipecat's filter resamples each
20 ms microphone chunk up to 48 kHz and cuts it into frames; but the resampler holds back a
little of every chunk (its filter), so a chunk's 960 samples never end on a frame boundary and
the rest of the chunk waits for the next one: 10 ms of the user's voice always sits in the
buffer (measured on recorded speech: RNNoise's own 20 ms plus 10 ms held, against 20 ms plus
0-1 ms here). This filter pads the very start of the stream with the few samples of silence that
put the frame boundaries where the chunks end, so each chunk is denoised whole as it arrives.

RNNoise still hears the 16 kHz speech upsampled, band-limited as before (denoising the full
48 kHz band changed what Whisper heard, see pipeline.audio.ingress); the resamplers are the
short ones of pipeline.audio.stream_resampler.
"""

from __future__ import annotations

import ctypes

import numpy as np
from pipecat.audio.filters.base_audio_filter import BaseAudioFilter
from pipecat.frames.frames import FilterControlFrame, FilterEnableFrame
from pyrnnoise.rnnoise import FRAME_SIZE, SAMPLE_RATE, create, destroy, process_frame

from pipeline.audio.stream_resampler import StreamResampler


class AlignedRNNoiseFilter(BaseAudioFilter):
    """RNNoise over whole chunks: the stream's start is padded onto RNNoise's frame grid."""

    def __init__(self) -> None:
        self._sample_rate = 0
        self._state: ctypes.c_void_p | None = None
        self._up: StreamResampler | None = None
        self._down: StreamResampler | None = None
        self._pending = np.zeros(0, dtype=np.int16)
        self._aligned = False
        self._filtering = True

    async def start(self, sample_rate: int) -> None:
        """A fresh RNNoise state for a stream at ``sample_rate``."""
        await self.stop()
        self._sample_rate = sample_rate
        self._state = create()
        if sample_rate != SAMPLE_RATE:
            self._up = StreamResampler(sample_rate, SAMPLE_RATE)
            self._down = StreamResampler(SAMPLE_RATE, sample_rate)

    async def stop(self) -> None:
        """Free the RNNoise state. Idempotent."""
        state, self._state = self._state, None
        if state is not None:
            destroy(state)
        self._up = self._down = None
        self._pending = np.zeros(0, dtype=np.int16)
        self._aligned = False

    async def process_frame(self, frame: FilterControlFrame) -> None:
        """pipecat's switch: filtering on or off."""
        if isinstance(frame, FilterEnableFrame):
            self._filtering = frame.enable

    async def filter(self, audio: bytes) -> bytes:
        """The denoised audio due for ``audio``: the chunk itself, 20 ms of RNNoise later."""
        if self._state is None or not self._filtering:
            return audio
        up = self._up.resample(audio) if self._up is not None else audio
        samples = np.frombuffer(up, dtype=np.int16)
        if samples.size == 0:
            return b""
        if not self._aligned:
            # Once: silence in front, so that this chunk (and every whole-frame chunk after
            # it) ends exactly on a frame boundary. Costs at most one resampler's lag.
            pad = (-samples.size) % FRAME_SIZE
            samples = np.concatenate([np.zeros(pad, dtype=np.int16), samples])
            self._aligned = True
        pending = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = pending.size - pending.size % FRAME_SIZE
        self._pending = pending[whole:].copy()
        if whole == 0:
            return b""
        denoised = [
            process_frame(self._state, pending[i : i + FRAME_SIZE])[0]
            for i in range(0, whole, FRAME_SIZE)
        ]
        out = _to_int16(np.concatenate([np.ravel(d) for d in denoised]))
        return self._down.resample(out) if self._down is not None else out


def _to_int16(samples: np.ndarray) -> bytes:
    if np.issubdtype(samples.dtype, np.floating):
        # pyrnnoise hands back floats in [-1, 1] on some builds, int16 on others.
        samples = np.clip(samples * 32767.0, -32768, 32767)
    return samples.astype(np.int16).tobytes()
