"""Records received audio with arrival times, and answers "when did voice start/stop" queries.

Audio is kept as mono int16 at 48 kHz (about 5.8 MB a minute), and each 10 ms block also gets
its level in dBFS and a wall-clock time, so level queries over a long benchmark stay cheap.
"""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt
import soxr

from pipeline.bench.client.audio_clip import FloatArray

RECORD_SAMPLE_RATE = 48_000
BLOCK_SAMPLES = RECORD_SAMPLE_RATE // 100  # 10 ms
DEFAULT_VOICE_THRESHOLD_DBFS = -45.0
_POWER_FLOOR = 1e-12
_INT_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


def frame_to_mono_int16(frame: av.AudioFrame) -> npt.NDArray[np.int16]:
    """Downmix a decoded frame (packed or planar; s16, s32 or float) to mono int16 samples."""
    array = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        planes = array.reshape(channels, -1)
    else:
        # Packed formats come back as one row of interleaved samples.
        planes = array.reshape(-1, channels).T
    scale = _INT_SCALE.get(array.dtype)
    mono = planes.astype(np.float32).mean(axis=0)
    if scale is None:  # float formats are already in [-1, 1]
        mono = mono * 32768.0
    elif scale != 32768.0:
        mono = mono * (32768.0 / scale)
    return np.clip(np.rint(mono), -32768, 32767).astype(np.int16)


class AudioRecorder:
    """Append-only store of received audio; every 10 ms block maps to an arrival time.

    Block k of a frame arriving at t is timed t + k * 10 ms, as if played out on arrival.
    Times never go backwards, but a burst of late frames is not spread out into a playout
    queue: that would add the burst's delay to every later measurement, where a browser's
    jitter buffer would soon shrink it again.
    """

    def __init__(self) -> None:
        """Create an empty recorder (48 kHz mono, 10 ms blocks)."""
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._pending = np.zeros(0, dtype=np.int16)  # tail shorter than one block
        self._samples = 0
        capacity = 1024
        self._block_times = np.zeros(capacity, dtype=np.float64)
        self._block_levels = np.zeros(capacity, dtype=np.float32)
        self._blocks = 0
        self.frames_received = 0
        self.last_arrival: float | None = None

    @property
    def sample_rate(self) -> int:
        """Rate of everything this recorder returns."""
        return RECORD_SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        """Seconds of audio recorded so far."""
        return self._samples / RECORD_SAMPLE_RATE

    def add_frame(self, frame: av.AudioFrame, arrival: float) -> None:
        """Record one decoded frame that arrived at `arrival` (time.monotonic())."""
        mono = frame_to_mono_int16(frame)
        if frame.sample_rate != RECORD_SAMPLE_RATE:
            mono = self._resample(mono, frame.sample_rate)
        self.add_samples(mono, arrival)
        self.frames_received += 1

    def add_samples(self, samples: npt.NDArray[np.int16], arrival: float) -> None:
        """Record 48 kHz mono int16 samples that arrived at `arrival`."""
        if len(samples) == 0:
            return
        self.last_arrival = arrival
        self._chunks.append(samples)
        self._samples += len(samples)
        data = np.concatenate((self._pending, samples)) if len(self._pending) else samples
        whole = len(data) // BLOCK_SAMPLES
        self._pending = data[whole * BLOCK_SAMPLES :].copy()
        if whole == 0:
            return
        blocks = data[: whole * BLOCK_SAMPLES].astype(np.float32).reshape(whole, BLOCK_SAMPLES)
        power = np.square(blocks / 32768.0).mean(axis=1)
        levels = 10.0 * np.log10(power + _POWER_FLOOR)
        # Blocks carried over from the previous frame already ended; time them at arrival.
        carried = len(data) - len(samples)
        offsets = np.maximum(np.arange(whole) * BLOCK_SAMPLES - carried, 0) / RECORD_SAMPLE_RATE
        times = arrival + offsets
        if self._blocks:
            times = np.maximum(times, self._block_times[self._blocks - 1])
        self._append_blocks(times, levels.astype(np.float32))

    def first_voiced_after(
        self, t: float, threshold_dbfs: float = DEFAULT_VOICE_THRESHOLD_DBFS
    ) -> float | None:
        """Arrival time of the first 10 ms block at or above `threshold_dbfs` at or after `t`."""
        start = self._block_index(t)
        voiced = np.flatnonzero(self._block_levels[start : self._blocks] >= threshold_dbfs)
        return float(self._block_times[start + voiced[0]]) if len(voiced) else None

    def last_voiced_end(
        self, after: float | None = None, threshold_dbfs: float = DEFAULT_VOICE_THRESHOLD_DBFS
    ) -> float | None:
        """End time (arrival + 10 ms) of the last voiced block at or after `after`, or None."""
        start = 0 if after is None else self._block_index(after)
        voiced = np.flatnonzero(self._block_levels[start : self._blocks] >= threshold_dbfs)
        if not len(voiced):
            return None
        return float(self._block_times[start + voiced[-1]]) + BLOCK_SAMPLES / RECORD_SAMPLE_RATE

    def longest_quiet(
        self, start: float, end: float, threshold_dbfs: float = DEFAULT_VOICE_THRESHOLD_DBFS
    ) -> float:
        """Longest run (seconds) of blocks below `threshold_dbfs` arriving in [start, end)."""
        first, last = self._block_index(start), self._block_index(end)
        quiet = self._block_levels[first:last] < threshold_dbfs
        longest = run = 0
        for is_quiet in quiet:
            run = run + 1 if is_quiet else 0
            longest = max(longest, run)
        return longest * BLOCK_SAMPLES / RECORD_SAMPLE_RATE

    def received_audio(self, since: float | None = None) -> tuple[FloatArray, int]:
        """Mono float32 audio received at or after `since` (everything if None), and its rate."""
        if len(self._chunks) > 1:
            # Consolidate so repeated queries over a long recording stay O(n) once.
            self._chunks = [np.concatenate(self._chunks)]
        audio = self._chunks[0] if self._chunks else np.zeros(0, dtype=np.int16)
        first = 0 if since is None else self._block_index(since) * BLOCK_SAMPLES
        return (audio[first:].astype(np.float32) / 32768.0).astype(np.float32), RECORD_SAMPLE_RATE

    def _block_index(self, t: float) -> int:
        return int(np.searchsorted(self._block_times[: self._blocks], t, side="left"))

    def _append_blocks(self, times: npt.NDArray[np.float64], levels: FloatArray) -> None:
        needed = self._blocks + len(times)
        if needed > len(self._block_times):
            capacity = max(needed, 2 * len(self._block_times))
            self._block_times = np.resize(self._block_times, capacity)
            self._block_levels = np.resize(self._block_levels, capacity)
        self._block_times[self._blocks : needed] = times
        self._block_levels[self._blocks : needed] = levels
        self._blocks = needed

    def _resample(self, samples: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.int16]:
        # Only a non-Opus codec (PCMU/PCMA at 8 kHz) gets here. Each frame is resampled on its
        # own: a streaming resampler would hold back its filter delay and skew arrival times.
        out: npt.NDArray[np.int16] = soxr.resample(samples, rate, RECORD_SAMPLE_RATE, quality="QQ")
        return out
