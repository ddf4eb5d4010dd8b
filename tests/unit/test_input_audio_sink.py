"""Microphone audio stops at the sink; every other frame, and anything going upstream, passes."""

from __future__ import annotations

import pytest
from pipecat.frames.frames import (
    InputAudioRawFrame,
    LLMTextFrame,
    TextFrame,
    TranscriptionFrame,
)
from pipecat.tests.utils import run_test

from pipeline.audio.input_sink import InputAudioSink


def _audio() -> InputAudioRawFrame:
    return InputAudioRawFrame(audio=b"\x00\x00" * 320, sample_rate=16000, num_channels=1)


@pytest.mark.asyncio
async def test_microphone_audio_stops_and_the_rest_passes() -> None:
    sink = InputAudioSink()
    frames = [
        _audio(),
        TranscriptionFrame("turn on the lamp", "user", "2026-12-05T00:00:00Z"),
        _audio(),
        TextFrame("ok"),
        _audio(),
        LLMTextFrame("Sure."),
    ]
    received, _ = await run_test(
        sink,
        frames_to_send=frames,
        expected_down_frames=[TranscriptionFrame, TextFrame, LLMTextFrame],
    )
    assert [type(f) for f in received] == [
        TranscriptionFrame,
        TextFrame,
        LLMTextFrame,
    ]
    assert sink.dropped == 3
