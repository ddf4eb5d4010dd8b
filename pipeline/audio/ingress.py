"""The gate for microphone audio: every frame is repaired or dropped before a model sees it.

pipecat hands its audio filter bare bytes inside the input transport's audio task, and one frame
whose length is not a whole number of samples raises there (numpy cannot view it as int16):
the task ends and no audio reaches VAD again for the rest of the session, with nothing but a log
line to show for it. A frame at another sample rate is silently misread (48 kHz speech read as
16 kHz is three times too slow, and VAD never hears it). So the noise filter runs here instead,
after the frame has been made what the models expect:

* another sample rate: resampled to the pipeline's (a resampler that holds back 1 ms, see
  pipeline.audio.stream_resampler);
* more than one channel: averaged to mono;
* a length that is not a whole number of samples: the stray byte waits for the next frame,
  so the stream stays aligned;
* empty, or a rate no microphone has (below 8 kHz, above 192 kHz): dropped.

int16 audio cannot carry NaN or infinity; a client that converted such floats naively sends
full-scale or zero samples, which are valid audio (clipped) and go through like any other.

RNNoise's output is what the VAD hears; the frame keeps the microphone's audio beside it for the
speech models (see pipeline.audio.microphone_audio). RNNoise runs at the pipeline's 16 kHz (the
filter resamples to its 48 kHz and back, see pipeline.audio.noise_filter), as pipecat's does.
Whisper tiny.en's reading of a fragile word moved with RNNoise's 10 ms frame phase when it heard
RNNoise's output: "turn on the living room lamp" came out "... room, Liam" at 5 of 12 start
offsets of the same recording through pipecat's own filter (4 of 12 through ours).
"""

from __future__ import annotations

import numpy as np
from loguru import logger
from pipecat.audio.filters.base_audio_filter import BaseAudioFilter
from pipecat.frames.frames import FilterControlFrame, Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor, FrameProcessorSetup

from pipeline.audio.microphone_audio import keep_microphone_audio
from pipeline.audio.stream_resampler import StreamResampler

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 192_000


class AudioIngress(FrameProcessor):
    """Repairs or drops malformed input audio frames, then applies the noise filter."""

    def __init__(
        self,
        sample_rate: int,
        noise_filter: BaseAudioFilter | None = None,
        **kwargs: object,
    ) -> None:
        """``sample_rate`` is the pipeline's input rate; ``noise_filter`` e.g. RNNoise."""
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._sample_rate = sample_rate
        self._noise_filter = noise_filter
        self._filter_failed = False
        self._carry = b""
        self._resamplers: dict[tuple[int, int], StreamResampler] = {}
        self.repaired: dict[str, int] = {}
        self.dropped: dict[str, int] = {}

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        """Start the noise filter at the pipeline's rate."""
        await super().setup(setup)
        if self._noise_filter is not None:
            await self._noise_filter.start(self._sample_rate)

    async def cleanup(self) -> None:
        """Stop the noise filter."""
        await super().cleanup()
        if self._noise_filter is not None:
            await self._noise_filter.stop()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Repair, filter and pass on audio; forward filter controls; pass the rest on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            if await self._admit(frame):
                await self.push_frame(frame, direction)
            return
        if isinstance(frame, FilterControlFrame) and self._noise_filter is not None:
            await self._noise_filter.process_frame(frame)
        await self.push_frame(frame, direction)

    async def _admit(self, frame: InputAudioRawFrame) -> bool:
        """Make ``frame`` 16-bit mono at the pipeline rate in place; False to drop it."""
        rate, channels = frame.sample_rate, frame.num_channels
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            return self._drop("implausible sample rate", f"{rate} Hz")
        audio = self._carry + bytes(frame.audio)
        whole = len(audio) - len(audio) % (2 * channels)
        if whole != len(audio):
            self._note(self.repaired, "partial sample carried over")
        audio, self._carry = audio[:whole], audio[whole:]
        if not audio:
            return self._drop("empty", f"{len(frame.audio)} bytes")
        if channels > 1:
            self._note(self.repaired, "downmixed to mono")
            samples = np.frombuffer(audio, dtype=np.int16).reshape(-1, channels)
            audio = samples.mean(axis=1).astype(np.int16).tobytes()
        if rate != self._sample_rate:
            self._note(self.repaired, f"resampled from {rate} Hz")
            audio = self._resample(audio, rate, self._sample_rate)
        microphone = audio
        audio = await self._filter(audio) if audio else audio
        if not audio:
            return False  # a resampler or RNNoise is still filling its window
        if audio is not microphone:
            keep_microphone_audio(frame, microphone)
        frame.audio = audio
        frame.sample_rate = self._sample_rate
        frame.num_channels = 1
        frame.num_frames = len(audio) // 2
        return True

    def _resample(self, audio: bytes, rate: int, to_rate: int) -> bytes:
        if rate == to_rate or not audio:
            return audio
        if (rate, to_rate) not in self._resamplers:
            self._resamplers[rate, to_rate] = StreamResampler(rate, to_rate)
        return self._resamplers[rate, to_rate].resample(audio)

    async def _filter(self, audio: bytes) -> bytes:
        if self._noise_filter is None or self._filter_failed:
            return audio
        try:
            return await self._noise_filter.filter(audio)
        # A broken noise filter must not silence the microphone: the audio goes on unfiltered.
        except Exception as error:  # noqa: BLE001
            self._filter_failed = True
            logger.error(f"{self}: noise filter failed, audio now passes unfiltered: {error!r}")
            return audio

    def _drop(self, reason: str, detail: str) -> bool:
        self._note(self.dropped, reason, detail)
        return False

    def _note(self, counts: dict[str, int], reason: str, detail: str = "") -> None:
        counts[reason] = counts.get(reason, 0) + 1
        if counts[reason] == 1:
            # Once per kind and session: a misbehaving client sends the same thing 50 times a
            # second.
            what = "dropped" if counts is self.dropped else "repaired"
            logger.warning(f"{self}: input audio {what}: {reason} {detail}".rstrip())
