"""Smart Turn's early prediction is the one it makes at the VAD's stop, and only when current.

Real Smart Turn v3 weights (bundled with pipecat), real recorded speech in 20 ms frames, the
VAD's 200 ms stop window of -65 dBFS room noise after it, as the turn strategy feeds them.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.metrics.metrics import TurnMetricsData

from pipeline.early_smart_turn import EarlySmartTurn
from tests.support.ingress import speech_pcm

RATE = 16000
FRAME = 320
STOP_SECS = 0.2
CLIPS = ("hello_world.wav", "weather_question.wav", "turn_on_the_living_room_lamp.wav")


def _noise(seconds: float, seed: int = 0) -> np.ndarray:
    level = 32767 * 10 ** (-65 / 20)
    return (np.random.default_rng(seed).standard_normal(int(seconds * RATE)) * level).astype(
        np.int16
    )


def _trimmed(name: str) -> np.ndarray:
    """The clip up to its last 10 ms block above -45 dBFS: the quiet after it is ours."""
    pcm = speech_pcm(name)
    blocks = pcm[: len(pcm) // 160 * 160].astype(np.float32).reshape(-1, 160) / 32768
    loud = np.flatnonzero(10 * np.log10(np.mean(blocks**2, axis=1) + 1e-12) > -45)
    return pcm[: (int(loud[-1]) + 1) * 160]


def _feed(analyzer: LocalSmartTurnAnalyzerV3, pcm: np.ndarray) -> None:
    for start in range(0, len(pcm), FRAME):
        analyzer.append_audio(pcm[start : start + FRAME].tobytes(), True)


def _early() -> EarlySmartTurn:
    analyzer = EarlySmartTurn(quiet_secs=0.04, drop_db=30, pad_to_secs=STOP_SECS)
    analyzer.set_sample_rate(RATE)
    return analyzer


def _probability(result: object) -> float:
    assert isinstance(result, TurnMetricsData)
    return result.probability


@pytest.mark.asyncio
@pytest.mark.parametrize("clip", CLIPS)
async def test_the_early_prediction_matches_the_one_at_the_stop(clip: str) -> None:
    turn = np.concatenate([_noise(0.3, 1), _trimmed(clip), _noise(STOP_SECS)])
    stock = LocalSmartTurnAnalyzerV3()
    stock.set_sample_rate(RATE)
    _feed(stock, turn)
    stock_state, stock_result = await stock.analyze_end_of_turn()

    early = _early()
    _feed(early, turn)
    state, result = await early.analyze_end_of_turn()

    assert early.guesses_used == 1
    assert state == stock_state
    # Smart Turn itself moves by up to 0.3 on a borderline turn ("hello world": 0.13-0.51)
    # with nothing but the noise of its last 200 ms changed.
    assert abs(_probability(result) - _probability(stock_result)) < 0.2
    if state == EndOfTurnState.COMPLETE:
        # A finished turn leaves nothing behind for the next one.
        await asyncio.sleep(0)
        assert not early._audio_buffer


@pytest.mark.asyncio
async def test_a_louder_frame_after_the_guess_throws_it_away() -> None:
    speech = _trimmed("weather_question.wav")
    early = _early()
    _feed(early, np.concatenate([_noise(0.3, 1), speech[: len(speech) // 2], _noise(0.1)]))
    # The speaker goes on after a 100 ms pause: the guess made in it is not this turn's.
    _feed(early, np.concatenate([speech[len(speech) // 2 :], _noise(STOP_SECS)]))
    await early.analyze_end_of_turn()
    assert early.guesses_used == 1  # the second pause's guess, not the first's

    fresh = _early()
    _feed(fresh, np.concatenate([_noise(0.3, 1), speech, _noise(0.02)]))
    await fresh.analyze_end_of_turn()  # stopped before the voice was quiet for 40 ms
    assert fresh.guesses_used == 0
