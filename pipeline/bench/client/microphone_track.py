"""A fake microphone: an aiortc audio track that plays queued clips in real time, else silence.

Like a browser's microphone it never stops: between clips it sends digital silence, and it
paces 20 ms frames on the wall clock (10 ms once the answer asks for them, as a browser does,
see pipeline.webrtc.packet_time), releasing each frame when its capture window would have ended on a
real device.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections import deque
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
import soxr
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from pipeline.bench.client.audio_clip import FloatArray

logger = logging.getLogger(__name__)

MIC_SAMPLE_RATE = 48_000
FRAME_MS = 20
FRAME_SAMPLES = MIC_SAMPLE_RATE * FRAME_MS // 1000
# A stalled event loop (GC, a slow test step) makes the track late. A real microphone would
# deliver its backlog at once, so small lags are caught up in a burst; beyond this the clock
# is reset instead, so a long stall cannot turn into seconds of burst-sent audio.
MAX_CATCH_UP_S = 0.2


def to_mic_samples(mono: FloatArray, sample_rate: int) -> npt.NDArray[np.int16]:
    """Resample mono float32 audio to the microphone's 48 kHz int16 (CPU-bound: use a thread)."""
    if sample_rate != MIC_SAMPLE_RATE:
        mono = soxr.resample(mono, sample_rate, MIC_SAMPLE_RATE)
    return np.clip(np.rint(mono * 32767.0), -32768, 32767).astype(np.int16)


@dataclass
class _Clip:
    """Queued int16 samples; `done` resolves with the time of the clip's last sample."""

    samples: npt.NDArray[np.int16]
    done: asyncio.Future[float]
    offset: int = 0


class MicrophoneTrack(MediaStreamTrack):
    """Audio track producing 20 ms (or 10 ms), 48 kHz mono s16 frames from queued clips, else
    silence."""

    kind = "audio"

    def __init__(self) -> None:
        """Create an idle microphone; it starts its clock on the first `recv()`."""
        super().__init__()
        self._clips: deque[_Clip] = deque()
        self._start: float | None = None
        self._frames_sent = 0
        self._seconds_sent = 0.0
        self._frame_samples = FRAME_SAMPLES

    @property
    def seconds_sent(self) -> float:
        """The microphone audio handed to the sender so far (frames of their length at the
        time). Behind wall time when this process falls behind: the clock skips ahead."""
        return self._seconds_sent

    @property
    def frame_ms(self) -> int:
        """The length of each frame (and so of each packet the sender makes of it)."""
        return self._frame_samples * 1000 // MIC_SAMPLE_RATE

    def set_frame_ms(self, ms: int) -> None:
        """Frame length from now on (10, 20, ...); only before the first frame is sent."""
        if ms <= 0 or MIC_SAMPLE_RATE * ms % 1000:
            raise ValueError(f"no whole number of samples in {ms} ms")
        if self._start is not None:
            raise RuntimeError("the frame length cannot change once frames flow")
        self._frame_samples = MIC_SAMPLE_RATE * ms // 1000

    @property
    def queued_seconds(self) -> float:
        """Audio still waiting to be sent, in seconds."""
        samples = sum(len(c.samples) - c.offset for c in self._clips)
        return samples / MIC_SAMPLE_RATE

    def enqueue(self, samples: npt.NDArray[np.int16]) -> asyncio.Future[float]:
        """Queue 48 kHz mono int16 samples.

        Returns:
            A future resolving to the `time.monotonic()` at which the clip's last sample was
            captured on this microphone's real-time timeline; its frame left at most one frame
            (20 or 10 ms) later. It fails with `MediaStreamError` if the track stops first.
        """
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise ValueError("enqueue() takes 1-D int16 samples at 48 kHz")
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if len(samples) == 0:
            done.set_result(time.monotonic())
        else:
            self._clips.append(_Clip(samples=samples, done=done))
        return done

    def clear(self) -> None:
        """Drop all queued audio (as if the user stopped talking); pending futures fail."""
        while self._clips:
            clip = self._clips.popleft()
            if not clip.done.done():
                clip.done.set_exception(MediaStreamError("clip dropped before it was sent"))

    def stop(self) -> None:
        """Stop the track and fail any clip still waiting to be sent."""
        self.clear()
        super().stop()

    async def recv(self) -> av.AudioFrame:
        """Return the next frame once its capture window has ended on the wall clock."""
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        frame_secs = self._frame_samples / MIC_SAMPLE_RATE
        due = self._start + (self._frames_sent + 1) * frame_secs
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > MAX_CATCH_UP_S:
            logger.debug("microphone %.0f ms late; resetting its clock", (now - due) * 1000)
            self._start = now - (self._frames_sent + 1) * frame_secs
        if self.readyState != "live":
            raise MediaStreamError

        samples, finished = self._take_frame()
        frame = av.AudioFrame.from_ndarray(samples[None, :], format="s16", layout="mono")
        frame.sample_rate = MIC_SAMPLE_RATE
        frame.pts = self._frames_sent * self._frame_samples
        frame.time_base = fractions.Fraction(1, MIC_SAMPLE_RATE)
        self._frames_sent += 1
        self._seconds_sent += frame_secs

        sent_at = time.monotonic()
        for done, last_index in finished:
            if not done.done():
                # The sample at `last_index` ended (frame samples - 1 - last_index) samples
                # before the end of the frame's capture window, which is now.
                left = self._frame_samples - 1 - last_index
                done.set_result(sent_at - left / MIC_SAMPLE_RATE)
        return frame

    def _take_frame(
        self,
    ) -> tuple[npt.NDArray[np.int16], list[tuple[asyncio.Future[float], int]]]:
        """Fill one frame from the queue (zero-padded); report clips whose end it carries."""
        size = self._frame_samples
        frame = np.zeros(size, dtype=np.int16)
        finished: list[tuple[asyncio.Future[float], int]] = []
        filled = 0
        while filled < size and self._clips:
            clip = self._clips[0]
            count = min(size - filled, len(clip.samples) - clip.offset)
            frame[filled : filled + count] = clip.samples[clip.offset : clip.offset + count]
            clip.offset += count
            filled += count
            if clip.offset == len(clip.samples):
                self._clips.popleft()
                finished.append((clip.done, filled - 1))
        return frame, finished
