"""A Kokoro engine without the model, for unit tests of the TTS service around it.

It has what ``services.tts.LocalKokoroTTSService`` calls: ``config``, ``prerendered`` (no fixed
phrases), ``in_line`` (no line) and ``synthesize_async``, which gives a short tone; a test
subclasses it to say what its synthesis does (hang, fail, take long, record the pieces).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace

import numpy as np


def kokoro_config(timeout_secs: float = 5.0, **more: float) -> SimpleNamespace:
    """The fields of TTSConfig the TTS service reads."""
    return SimpleNamespace(
        sample_rate=24000, voice="af_heart", speed=1.0, timeout_secs=timeout_secs, **more
    )


class KokoroStandIn:
    """Synthesizes 0.1 s of a flat tone for any text."""

    config = kokoro_config()

    def prerendered(self, text: str) -> None:
        return None

    @contextlib.asynccontextmanager
    async def in_line(self) -> AsyncIterator[None]:
        yield

    async def synthesize_async(self, text: str) -> np.ndarray:
        return np.full(2400, 0.1, dtype=np.float32)
