"""Unit tests for the loopback caller's audio pieces: clips, recorder, microphone (no sockets)."""

import asyncio
import time
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.bench.client.audio_clip import (
    first_voiced_sample,
    last_voiced_sample,
    load_wav,
    to_mono_float32,
)
from pipeline.bench.client.audio_recorder import AudioRecorder, frame_to_mono_int16
from pipeline.bench.client.microphone_track import FRAME_SAMPLES, MIC_SAMPLE_RATE, MicrophoneTrack

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"


def _tone(seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def _stereo_s16_frame(mono: np.ndarray, rate: int = 48_000) -> av.AudioFrame:
    ints = np.rint(mono * 32767).astype(np.int16)
    interleaved = np.repeat(ints, 2)[None, :]  # packed: one row, L R L R ...
    frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo")
    frame.sample_rate = rate
    return frame


@pytest.mark.parametrize(
    ("name", "rate", "seconds"),
    [
        ("hello_world.wav", 24_000, 1.03),
        ("turn_on_the_living_room_lamp.wav", 44_100, 2.99),
        ("demo_instruct.wav", 8_000, 73.35),
    ],
)
def test_load_wav_returns_mono_float32_at_the_file_rate(
    name: str, rate: int, seconds: float
) -> None:
    samples, sample_rate = load_wav(FIXTURES / name)
    assert sample_rate == rate
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert len(samples) / sample_rate == pytest.approx(seconds, abs=0.01)
    assert 0.05 < np.abs(samples).max() <= 1.0


def test_voiced_region_of_a_padded_tone() -> None:
    rate = 16_000
    clip = np.concatenate([np.zeros(rate // 2), _tone(1.0, rate), np.zeros(rate)]).astype(
        np.float32
    )
    assert first_voiced_sample(clip, rate) == rate // 2
    last = last_voiced_sample(clip, rate)
    assert last is not None and abs(last - (rate // 2 + rate - 1)) <= rate // 100
    assert last_voiced_sample(np.zeros(rate, dtype=np.float32), rate) is None


def test_to_mono_float32_rejects_nan_and_downmixes() -> None:
    with pytest.raises(ValueError, match="NaN"):
        to_mono_float32(np.array([0.0, np.nan], dtype=np.float32))
    stereo = np.array([[32767, -32767], [16384, 16384]], dtype=np.int16)
    assert to_mono_float32(stereo) == pytest.approx([0.0, 0.5], abs=1e-4)


def test_frame_to_mono_int16_handles_packed_stereo_and_planar_float() -> None:
    mono = _tone(0.02, 48_000)
    assert np.abs(frame_to_mono_int16(_stereo_s16_frame(mono)) - mono * 32767).max() <= 1
    planar = av.AudioFrame.from_ndarray(np.stack([mono, mono]), format="fltp", layout="stereo")
    assert np.abs(frame_to_mono_int16(planar) - mono * 32768).max() <= 1


def test_recorder_times_voice_by_arrival() -> None:
    recorder = AudioRecorder()
    silence = np.zeros(FRAME_SAMPLES, dtype=np.float32)
    tone = _tone(0.02, 48_000)
    for k in range(50):
        frame = silence if k < 10 or k >= 30 else tone
        recorder.add_frame(_stereo_s16_frame(frame), arrival=100.0 + k * 0.02)
    assert recorder.first_voiced_after(100.0) == pytest.approx(100.2)
    assert recorder.first_voiced_after(100.5) == pytest.approx(100.5)
    assert recorder.first_voiced_after(100.61) is None
    assert recorder.last_voiced_end() == pytest.approx(100.6)
    audio, rate = recorder.received_audio(since=100.2)
    assert rate == 48_000 and len(audio) == 40 * FRAME_SAMPLES
    assert np.abs(audio[:FRAME_SAMPLES] - tone).max() < 1e-3


def test_recorder_block_times_never_go_backwards_in_a_burst() -> None:
    recorder = AudioRecorder()
    for _ in range(3):  # three 20 ms frames arriving at the same instant
        recorder.add_frame(_stereo_s16_frame(_tone(0.02, 48_000)), arrival=5.0)
    # Stacked on the burst's last block rather than queued behind each other (no lasting lag).
    assert recorder.last_voiced_end() == pytest.approx(5.02)
    recorder.add_frame(_stereo_s16_frame(_tone(0.02, 48_000)), arrival=5.02)
    assert recorder.last_voiced_end() == pytest.approx(5.04)


def test_recorder_resamples_narrowband_frames() -> None:
    recorder = AudioRecorder()
    for k in range(10):
        ints = np.rint(_tone(0.02, 8_000) * 32767).astype(np.int16)[None, :]
        frame = av.AudioFrame.from_ndarray(ints, format="s16", layout="mono")
        frame.sample_rate = 8_000
        recorder.add_frame(frame, arrival=k * 0.02)
    assert recorder.duration_s == pytest.approx(0.2, abs=0.02)


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_microphone_paces_frames_and_reports_the_clip_end() -> None:
    async def scenario() -> None:
        mic = MicrophoneTrack()
        clip = np.full(FRAME_SAMPLES + FRAME_SAMPLES // 2, 1000, dtype=np.int16)  # 30 ms
        done = mic.enqueue(clip)
        started = time.monotonic()
        frames = [await mic.recv() for _ in range(4)]
        elapsed = time.monotonic() - started
        assert elapsed >= 0.075  # four 20 ms frames, each released when its window ends
        assert [f.pts for f in frames] == [0, 960, 1920, 2880]
        assert all(f.sample_rate == MIC_SAMPLE_RATE and f.samples == FRAME_SAMPLES for f in frames)
        second = frames[1].to_ndarray()[0]
        assert (second[: FRAME_SAMPLES // 2] == 1000).all() and not second[
            FRAME_SAMPLES // 2 :
        ].any()
        assert not frames[2].to_ndarray().any()  # silence after the clip
        clip_end = await asyncio.wait_for(done, 1)
        assert started + 0.03 <= clip_end + 0.005 <= started + 0.045 + 0.01
        mic.stop()

    await asyncio.wait_for(scenario(), 5)


@pytest.mark.asyncio
@pytest.mark.timeout(10)
async def test_a_microphone_set_to_10_ms_sends_10_ms_frames_and_then_cannot_change() -> None:
    async def scenario() -> None:
        mic = MicrophoneTrack()
        mic.set_frame_ms(10)
        assert mic.frame_ms == 10
        done = mic.enqueue(np.full(720, 1000, dtype=np.int16))  # 15 ms
        started = time.monotonic()
        frames = [await mic.recv() for _ in range(4)]
        assert time.monotonic() - started >= 0.035  # four 10 ms frames, paced
        assert [f.pts for f in frames] == [0, 480, 960, 1440]
        assert all(f.samples == 480 for f in frames)
        second = frames[1].to_ndarray()[0]
        assert (second[:240] == 1000).all() and not second[240:].any()
        clip_end = await asyncio.wait_for(done, 1)
        # The clip's last sample is 5 ms before the end of the second 10 ms frame.
        assert started + 0.015 <= clip_end + 0.005 <= started + 0.03
        with pytest.raises(RuntimeError):
            mic.set_frame_ms(20)
        with pytest.raises(ValueError):
            MicrophoneTrack().set_frame_ms(0)
        mic.stop()

    await asyncio.wait_for(scenario(), 5)
