"""Whisper on a window cut to the utterance: same words as the 30 s window, runaways refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.config import STTConfig
from services.stt import WhisperEngine
from services.whisper_window import ShortWindowDecoder
from tests.support.ingress import silence, speech_pcm

CLIPS = ("hello_world.wav", "weather_question.wav", "turn_on_the_living_room_lamp.wav")


@pytest.fixture(scope="module")
def stt_config() -> STTConfig:
    try:
        paths = profile_paths("cpu", ModelStore(default_models_dir()))
    except ModelUnavailableError as error:
        pytest.fail(f"cpu models missing (run `just setup`): {error}")
    return STTConfig(model_dir=paths.stt_dir)


@pytest.fixture(scope="module")
def engines(stt_config: STTConfig) -> Iterator[tuple[WhisperEngine, WhisperEngine]]:
    """The short-window engine and one that always decodes Whisper's full 30 s window."""
    yield WhisperEngine(stt_config), WhisperEngine(replace(stt_config, short_window=False))


def _words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9 ]", " ", text.lower()).split()


def _turn(name: str, lead_s: float, trail_s: float) -> np.ndarray:
    """A user's turn as the STT gets it: some lead-in and the VAD's stop window after it."""
    pcm = np.concatenate([silence(lead_s), speech_pcm(name), silence(trail_s)])
    return pcm.astype(np.float32) / 32768.0


@pytest.mark.parametrize("name", CLIPS)
@pytest.mark.parametrize(("lead_s", "trail_s"), [(0.1, 0.2), (0.5, 0.4)])
def test_short_window_hears_the_same_words_as_the_full_window(
    engines: tuple[WhisperEngine, WhisperEngine], name: str, lead_s: float, trail_s: float
) -> None:
    short, full = engines
    audio = _turn(name, lead_s, trail_s)
    heard = short.transcribe(audio)
    assert heard, "the short window heard nothing"
    assert _words(heard) == _words(full.transcribe(audio))


def test_silence_and_noise_give_no_words(engines: tuple[WhisperEngine, WhisperEngine]) -> None:
    short, _full = engines
    rng = np.random.default_rng(3)
    assert short.transcribe(np.zeros(32000, dtype=np.float32)) == ""
    assert short.transcribe((rng.standard_normal(48000) * 0.02).astype(np.float32)) == ""


def test_a_long_turn_takes_the_full_window(stt_config: STTConfig) -> None:
    engine = WhisperEngine(stt_config)
    decoder = ShortWindowDecoder(engine._model, margin_secs=2.0, min_secs=8.0)
    assert decoder.window_secs(16000 * 2) == 8
    assert decoder.window_secs(16000 * 12) == 14
    assert decoder.window_secs(16000 * 28) is None


def test_runaway_and_unclosed_answers_are_not_trusted(stt_config: STTConfig) -> None:
    engine = WhisperEngine(stt_config)
    decoder = ShortWindowDecoder(engine._model, margin_secs=2.0, min_secs=8.0)
    tokenizer = decoder._tokenizer
    stamp = tokenizer.timestamp_begin
    words = tokenizer.encode(" What is my name?")
    closed = [stamp, *words, stamp + 60]
    assert decoder._segments_text(closed, 2.0, limit=100) == "What is my name?"
    # The looping failure: the same sentence again, however neatly closed.
    looped = [*closed, stamp + 60, *words, stamp + 100]
    assert decoder._segments_text(looped, 2.5, limit=100) is None
    # Words never closed by a timestamp, or an answer as long as the limit.
    assert decoder._segments_text([stamp, *words], 2.0, limit=100) is None
    assert decoder._segments_text(closed, 2.0, limit=len(closed)) is None
    # A segment that starts after the audio has ended is dropped, not spoken.
    invented = [*closed, stamp + 150, *tokenizer.encode(" Thank you."), stamp + 180]
    assert decoder._segments_text(invented, 2.0, limit=100) == "What is my name?"


def test_a_multilingual_model_gets_a_window_decoder(
    engines: tuple[WhisperEngine, WhisperEngine],
) -> None:
    """The GPU profiles' Whisper (large-v3-turbo) is multilingual: building its decoder once
    raised ValueError in faster-whisper's tokenizer (no language given)."""
    from types import SimpleNamespace

    short, _full = engines
    model = SimpleNamespace(
        hf_tokenizer=short.model.hf_tokenizer, model=SimpleNamespace(is_multilingual=True)
    )
    decoder = ShortWindowDecoder(model, margin_secs=2.0, min_secs=8.0)
    english = short.model.hf_tokenizer.token_to_id("<|en|>")
    assert english in decoder.prompt("en")
