"""RELIABILITY row 7: with packet loss and jitter, audio keeps flowing and turns are detected.

A seeded lossy link drops 10% of the 20 ms microphone frames (in bursts of up to three, as Wi-Fi
loses them) and delays the rest by 0-30 ms, in order, as a jitter buffer releases them; behind
it is the session's own input chain with the real models (audio ingress with RNNoise -> Whisper
-> Silero VAD + Smart Turn v3), fed a recorded question in real time.
"""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest
from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipeline.config import AgentConfig
from services.stt import WhisperEngine
from tests.support.ingress import AudioProbe, frames_of, run_turns, silence, speech_pcm, turn_chain

SEED = 7
DROP_RATE = 0.10
MAX_BURST = 3
MAX_JITTER_S = 0.030


class LossyLink(FrameProcessor):
    """Drops audio frames in short bursts and delays the rest by a random jitter, in order."""

    def __init__(self, seed: int, drop_rate: float, max_burst: int, max_jitter_s: float) -> None:
        super().__init__()
        self._rng = random.Random(seed)
        # A burst of n frames starts with probability p, so that n * p on average is drop_rate.
        self._burst_start = drop_rate / ((1 + max_burst) / 2)
        self._max_burst = max_burst
        self._max_jitter = max_jitter_s
        self._burst_left = 0
        self._release_at = 0.0
        self.sent = 0
        self.dropped = 0

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Drop or delay audio; pass everything else on at once."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, InputAudioRawFrame):
            await self.push_frame(frame, direction)
            return
        self.sent += 1
        if self._burst_left == 0 and self._rng.random() < self._burst_start:
            self._burst_left = self._rng.randint(1, self._max_burst)
        if self._burst_left > 0:
            self._burst_left -= 1
            self.dropped += 1
            return
        loop = asyncio.get_running_loop()
        # Never before the previous frame: a jitter buffer delivers in sequence order.
        self._release_at = max(
            self._release_at, loop.time() + self._rng.uniform(0.0, self._max_jitter)
        )
        await asyncio.sleep(max(0.0, self._release_at - loop.time()))
        await self.push_frame(frame, direction)


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_lossy_jittery_audio_still_flows_and_the_turn_is_detected(
    cpu_config: AgentConfig, whisper: WhisperEngine
) -> None:
    link = LossyLink(SEED, DROP_RATE, MAX_BURST, MAX_JITTER_S)
    probe = AudioProbe()
    pcm = np.concatenate([silence(0.5), speech_pcm("weather_question.wav"), silence(1.5)])
    frames = frames_of(pcm)
    turns = await asyncio.wait_for(
        run_turns(turn_chain(cpu_config, whisper, before=[link], probe=probe), frames), 45
    )

    sent = sum(isinstance(f, InputAudioRawFrame) for f in frames)
    assert link.sent == sent
    assert 0.05 * sent < link.dropped < 0.15 * sent, link.dropped
    # Everything the link let through reached the models (RNNoise and the resamplers may hold
    # back a frame at the start).
    assert probe.frames >= sent - link.dropped - 2, (probe.frames, sent, link.dropped)
    assert turns.errors == []
    assert turns.vad_starts >= 1 and turns.vad_stops >= 1, turns
    assert turns.turn_ends == 1, turns
    assert "weather" in turns.transcripts[-1].lower(), turns
