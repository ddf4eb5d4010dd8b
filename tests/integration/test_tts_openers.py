"""Answer openers rendered ahead: cached once, found by their text, rendering stops on request."""

from __future__ import annotations

import threading

import pytest

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.config import DEFAULT_OPENERS, TTSConfig
from services.tts import KokoroEngine


@pytest.fixture(scope="module")
def kokoro() -> KokoroEngine:
    try:
        paths = profile_paths("cpu", ModelStore(default_models_dir()))
    except ModelUnavailableError as error:
        pytest.fail(f"cpu models missing (run `just setup`): {error}")
    return KokoroEngine(TTSConfig(model_path=paths.tts_path, voices_path=paths.voices_path))


def test_openers_are_whole_sentences() -> None:
    # The clause chunker always closes the first piece at a sentence end, so only a whole
    # sentence can ever match a first piece exactly.
    assert all(opener.endswith((".", "!", "?")) for opener in DEFAULT_OPENERS)


def test_prerendered_openers_are_found_and_voiced(kokoro: KokoroEngine) -> None:
    assert kokoro.prerendered("Sure!") is None
    assert kokoro.prerender(("Sure!", "Of course!")) == 2
    audio = kokoro.prerendered(" Sure! ")
    assert audio is not None and audio.size > 2400
    assert abs(float(audio[:240].max(initial=0.0))) > 1e-3  # leading quiet trimmed
    assert kokoro.prerender(("Sure!",)) == 0  # already there


def test_rendering_stops_when_asked(kokoro: KokoroEngine) -> None:
    stop = threading.Event()
    stop.set()
    assert kokoro.prerender(("Good evening!",), stop) == 0
    assert kokoro.prerendered("Good evening!") is None
