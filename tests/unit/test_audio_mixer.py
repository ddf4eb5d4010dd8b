"""The mixer puts joined peers' audio into the host's time slots, never between its frames."""

from __future__ import annotations

import numpy as np
import pytest
from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.tests.utils import SleepFrame, run_test

from pipeline.audio.mixer import AudioMixer, MixerInput, mix_pcm16

RATE = 16000
SLOT = 640  # bytes in 20 ms of 16-bit mono at 16 kHz


def _pcm(value: int, samples: int = SLOT // 2) -> bytes:
    return np.full(samples, value, dtype=np.int16).tobytes()


def _values(audio: bytes) -> list[int]:
    return [int(v) for v in np.frombuffer(audio, dtype=np.int16)]


def _frame(audio: bytes, rate: int = RATE) -> InputAudioRawFrame:
    return InputAudioRawFrame(audio=audio, sample_rate=rate, num_channels=1)


async def _through(mixer: AudioMixer, frames: list[Frame]) -> list[InputAudioRawFrame]:
    down, _up = await run_test(mixer, frames_to_send=frames)
    return [f for f in down if isinstance(f, InputAudioRawFrame)]


def test_mixing_sums_sample_by_sample_and_clips_to_16_bits() -> None:
    base = np.array([1000, 30000, -30000, 7], dtype=np.int16).tobytes()
    other = np.array([500, 5000, -5000, 1], dtype=np.int16).tobytes()
    assert _values(mix_pcm16(base, [other])) == [1500, 32767, -32768, 8]
    # A shorter input adds to the start of the slot; a longer one is cut to it.
    assert _values(mix_pcm16(base, [other[:2]])) == [1500, 30000, -30000, 7]
    assert _values(mix_pcm16(base[:4], [other])) == [1500, 32767]
    assert mix_pcm16(base, []) == base


def test_an_input_primes_then_runs_dry_and_refills() -> None:
    source = MixerInput(RATE, prime_secs=0.04)
    source.write(_pcm(1))
    assert source.read(SLOT) is None  # 20 ms buffered, 40 ms needed
    source.write(_pcm(2))
    assert source.read(SLOT) == _pcm(1)
    assert source.read(SLOT) == _pcm(2)
    assert source.read(SLOT) == b"" and source.underruns == 1
    source.write(_pcm(3))
    assert source.read(SLOT) is None  # refilling to the priming level again
    source.write(_pcm(4)[:-1])  # a stray half sample is not audio
    assert source.buffered_bytes == 2 * SLOT - 2


def test_a_backlog_is_cut_back_to_the_newest_audio() -> None:
    source = MixerInput(RATE, prime_secs=0.04, max_secs=0.1)
    for value in range(1, 7):  # 120 ms, past the 100 ms bound
        source.write(_pcm(value))
    assert source.buffered_bytes == 2 * SLOT and source.trimmed_bytes == 4 * SLOT
    assert source.read(SLOT) == _pcm(5)
    assert source.read(SLOT) == _pcm(6)


@pytest.mark.asyncio
async def test_with_nobody_joined_the_hosts_frames_pass_untouched() -> None:
    frames = [_frame(_pcm(v)) for v in (100, -200, 300)]
    out = await _through(AudioMixer(RATE), [*frames, SleepFrame(0.05)])
    assert [f.audio for f in out] == [_pcm(100), _pcm(-200), _pcm(300)]


@pytest.mark.asyncio
async def test_a_joined_peer_is_added_to_the_hosts_slots_not_between_them() -> None:
    # The host keeps sending: the clock never steps in.
    mixer = AudioMixer(RATE, host_silent_secs=60.0)
    joined = mixer.add_input("guest")
    joined.write(_pcm(50, 3 * SLOT // 2))  # 60 ms from the joined peer
    out = await _through(mixer, [*(_frame(_pcm(100)) for _ in range(4)), SleepFrame(0.05)])
    # One frame out per host frame (interleaving would add frames), the joined peer's audio in
    # the first three slots, then silence from it while it refills.
    assert [set(_values(f.audio)) for f in out] == [{150}, {150}, {150}, {100}]
    assert mixer.clock_frames == 0


@pytest.mark.asyncio
async def test_frames_the_ingress_must_repair_pass_through_unmixed() -> None:
    mixer = AudioMixer(RATE, host_silent_secs=60.0)
    mixer.add_input("guest").write(_pcm(50, SLOT))
    odd = _frame(_pcm(100)[:-1])
    other_rate = _frame(_pcm(100, 960), rate=48000)
    out = await _through(mixer, [odd, other_rate, SleepFrame(0.05)])
    assert [f.audio for f in out] == [_pcm(100)[:-1], _pcm(100, 960)]


@pytest.mark.asyncio
async def test_the_clock_carries_the_joined_peers_once_the_host_is_silent() -> None:
    mixer = AudioMixer(RATE, host_silent_secs=0.05)
    joined = mixer.add_input("guest")
    spoken = np.arange(1, 3201, dtype=np.int16)  # 200 ms, every sample distinct
    joined.write(spoken.tobytes())
    out = await _through(mixer, [SleepFrame(0.7)])
    assert out and all(
        (f.sample_rate, f.num_channels, len(f.audio)) == (RATE, 1, SLOT) for f in out
    )
    assert mixer.clock_frames == len(out)
    heard = np.concatenate([np.frombuffer(f.audio, dtype=np.int16) for f in out])
    # Every sample exactly once and in order, with silence around it.
    assert heard[heard != 0].tolist() == spoken.tolist()


@pytest.mark.asyncio
async def test_removing_the_last_input_stops_the_clock() -> None:
    mixer = AudioMixer(RATE, host_silent_secs=0.05)
    mixer.add_input("guest")
    mixer.remove_input("guest")
    out = await _through(mixer, [SleepFrame(0.2)])
    assert out == [] and mixer.inputs == 0
    mixer.add_input("after the end")  # starts nothing once the pipeline ended
    with pytest.raises(ValueError, match="exists already"):
        mixer.add_input("after the end")
