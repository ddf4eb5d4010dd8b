"""A resampler for live 16-bit mono audio that holds back about a millisecond, not 40.

pipecat's stream resampler (soxr at its "VHQ" quality) keeps a long filter's worth of input
before it returns any: fed 20 ms microphone frames from 48 kHz to 16 kHz, its output trails the
input by 44 ms at the median and 76 ms at worst (`tests/unit/test_stream_resampler.py` measures
it). On the microphone's way to the VAD that is latency on every end of turn. FFmpeg's
resampler (libswresample, through PyAV, which aiortc already decodes with) uses a short
windowed-sinc filter: 1 ms behind, and plenty for speech models that read 16 kHz.
"""

from __future__ import annotations

import fractions

import av
import numpy as np


class StreamResampler:
    """Resamples a continuous stream of 16-bit mono PCM from ``in_rate`` to ``out_rate``."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        """One stream: its filter state carries over from one call to the next."""
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=out_rate)
        self._time_base = fractions.Fraction(1, in_rate)
        self._pts = 0

    def resample(self, audio: bytes) -> bytes:
        """The output due for ``audio`` (whole 16-bit samples); may be short by the filter."""
        samples = np.frombuffer(audio, dtype=np.int16)
        if samples.size == 0:
            return b""
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = self.in_rate
        frame.time_base = self._time_base
        frame.pts = self._pts
        self._pts += samples.size
        return b"".join(out.to_ndarray().tobytes() for out in self._resampler.resample(frame))
