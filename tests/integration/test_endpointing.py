"""The end of speech with the real Silero model: the energy gate hears it sooner, and only once;
the stop counted from the energy drop comes sooner still, never before its quiet has arrived."""

from __future__ import annotations

import numpy as np
import pytest
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

from pipeline.audio.endpointing_vad import EndpointingSileroVAD
from pipeline.bench.client.audio_clip import last_voiced_sample
from tests.support.ingress import silence, speech_pcm

RATE = 16000
FRAME = 320  # 20 ms, as the transport delivers it


def _stops(vad: VADAnalyzer, pcm: np.ndarray) -> list[float]:
    """Seconds into ``pcm`` at which the VAD reported each stop."""
    vad.set_sample_rate(RATE)
    data = pcm.astype(np.int16).tobytes()
    stops, previous = [], VADState.QUIET
    for start in range(0, len(data), FRAME * 2):
        state = vad._run_analyzer(data[start : start + FRAME * 2])
        if previous == VADState.STOPPING and state == VADState.QUIET:
            stops.append((start + FRAME * 2) / 2 / RATE)
        previous = state
    return stops


@pytest.mark.parametrize(
    "name", ["hello_world.wav", "weather_question.wav", "turn_on_the_living_room_lamp.wav"]
)
def test_the_gate_never_stops_later_and_stops_once(name: str) -> None:
    pcm = np.concatenate([silence(0.5), speech_pcm(name), silence(1.0)])
    params = VADParams(stop_secs=0.2)
    plain = _stops(SileroVADAnalyzer(params=params), pcm)
    gated = _stops(EndpointingSileroVAD(params=params, drop_db=30.0), pcm)
    assert len(plain) == 1 and len(gated) == 1
    assert gated[0] <= plain[0]


def test_a_clean_recording_stops_sooner() -> None:
    pcm = np.concatenate([silence(0.5), speech_pcm("hello_world.wav"), silence(1.0)])
    params = VADParams(stop_secs=0.2)
    plain = _stops(SileroVADAnalyzer(params=params), pcm)
    gated = _stops(EndpointingSileroVAD(params=params, drop_db=30.0), pcm)
    # Silero trails the voice by about 80 ms here; the gate by one window at most.
    assert plain[0] - gated[0] >= 0.04


FIXTURES = ["hello_world.wav", "weather_question.wav", "turn_on_the_living_room_lamp.wav"]


def _noisy(name: str, lead_ms: int) -> np.ndarray:
    """The fixture between digital silences, over a -65 dBFS noise floor (as a quiet room)."""
    pcm = np.concatenate([silence(0.5 + lead_ms / 1000), speech_pcm(name), silence(1.0)]).astype(
        np.float64
    )
    noise = np.random.default_rng(lead_ms).normal(0.0, 10 ** (-65 / 20) * 32767, pcm.size)
    return np.clip(np.rint(pcm + noise), -32768, 32767)


def test_the_stop_counted_from_the_energy_drop_is_sooner_and_never_early() -> None:
    params = VADParams(stop_secs=0.2)
    stop_window = round(0.2 / 0.032) * 0.032  # pipecat counts whole 32 ms windows
    saved = []
    for name in FIXTURES:
        # The window grid falls at another place in the speech for each lead-in.
        for lead_ms in (0, 8, 16, 24):
            pcm = _noisy(name, lead_ms)
            last = last_voiced_sample(pcm.astype(np.float32) / 32768.0, RATE)
            assert last is not None
            end = (last + 1) / RATE
            whole = _stops(
                EndpointingSileroVAD(params=params, drop_db=30.0, sub_window_stop=False), pcm
            )
            sub = _stops(EndpointingSileroVAD(params=params, drop_db=30.0), pcm)
            assert len(whole) == len(sub) == 1, (name, lead_ms, whole, sub)
            assert sub[0] <= whole[0]
            # Never before the stop window of quiet has arrived after the voice's last
            # 10 ms block above -40 dBFS (one block of slack for that block's resolution).
            assert sub[0] >= end + stop_window - 0.01, (name, lead_ms, sub[0] - end)
            saved.append(whole[0] - sub[0])
    assert max(saved) >= 0.02  # one 20 ms frame sooner at least somewhere


def test_a_voice_that_comes_back_within_the_stop_is_not_stopped() -> None:
    """A 120 ms pause between two voiced stretches, then more words: one stop, at the end."""
    clip = speech_pcm("hello_world.wav")
    level = clip.astype(np.float32) / 32768.0
    last = last_voiced_sample(level, RATE)
    first = len(clip) - 1 - (last_voiced_sample(level[::-1].copy(), RATE) or 0)
    assert last is not None and first < last
    words = clip[first : last + 1]
    pcm = np.concatenate([silence(0.5), words, silence(0.12), words, silence(1.0)])
    stops = _stops(EndpointingSileroVAD(params=VADParams(stop_secs=0.2), drop_db=30.0), pcm)
    assert len(stops) == 1
    assert stops[0] > 0.5 + 2 * len(words) / RATE + 0.12
