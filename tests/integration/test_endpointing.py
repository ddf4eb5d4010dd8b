"""The end of speech with the real Silero model: the energy gate hears it sooner, and only once."""

from __future__ import annotations

import numpy as np
import pytest
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams, VADState

from pipeline.endpointing_vad import EndpointingSileroVAD
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
