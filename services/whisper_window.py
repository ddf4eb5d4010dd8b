"""Whisper on a window cut to the utterance instead of 30 seconds.

Whisper's encoder was trained on 30 s windows and faster-whisper always pads to one, so a
two-second question costs the encoder as much as thirty seconds of speech: about 190 ms of the
250 ms that tiny.en takes on two cores. CTranslate2 accepts shorter inputs (the encoder uses the
first N positions), and measured on the benchmark corpus a window of the utterance plus two
seconds of silence, at least five, transcribes the same words with the encoder at ~15 ms.

Cut short, Whisper no longer "sees" where its window ends and, in no-timestamp mode, repeats the
sentence until the token limit. So this decoder asks for timestamps: every segment the model
writes is closed by its end time, segments that start after the audio ends are dropped, and an
answer that runs into the token limit, or never closes its last segment, is reported as
unreliable (``None``) so that the caller decodes the full 30 s window instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ctranslate2
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.tokenizer import Tokenizer

SAMPLE_RATE = 16000
# Whisper's window, and its timestamp resolution.
FULL_WINDOW_SECS = 30
TIMESTAMP_SECS = 0.02
# Speech runs at about four tokens a second; a timestamp pair per segment on top. An answer at
# this length is a runaway repetition, not a transcript.
_BASE_TOKENS = 20
_TOKENS_PER_SEC = 8
# The first segment must start within the first second (as faster-whisper allows).
_MAX_INITIAL_TIMESTAMP_INDEX = 50


@dataclass(frozen=True)
class WindowedResult:
    """What one short-window decode heard."""

    text: str
    no_speech_prob: float


class ShortWindowDecoder:
    """Timestamped decoding of one utterance (greedy unless ``beam_size`` > 1) on a window just
    longer than it."""

    def __init__(
        self, model: WhisperModel, *, margin_secs: float, min_secs: float, beam_size: int = 1
    ) -> None:
        self._model = model
        self._beam_size = beam_size
        self._margin_secs = margin_secs
        self._min_secs = min_secs
        self._tokenizer = Tokenizer(
            model.hf_tokenizer,
            model.model.is_multilingual,
            task="transcribe",
            # The special tokens read here are the same for every language; the prompt picks it.
            language="en",
        )

    def window_secs(self, samples: int) -> int | None:
        """The window for ``samples`` of audio, or None when only the full window fits."""
        window = max(self._min_secs, math.ceil(samples / SAMPLE_RATE + self._margin_secs))
        return int(window) if window < FULL_WINDOW_SECS else None

    def decode(self, audio: np.ndarray, language: str | None) -> WindowedResult | None:
        """Transcribe 16 kHz float32 ``audio``; None when the result cannot be trusted."""
        window = self.window_secs(audio.size)
        if window is None:
            return None
        padded = np.zeros(window * SAMPLE_RATE, dtype=np.float32)
        padded[: audio.size] = audio
        # Zero samples, like Whisper's own padding: silence in the log-mel domain (faster-whisper
        # pads the features with zeros instead, which is not silence).
        features = self._model.feature_extractor(padded)[:, : window * SAMPLE_RATE // 160]
        encoded = self._model.model.encode(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
            to_cpu=False,
        )
        duration = audio.size / SAMPLE_RATE
        max_length = int(_BASE_TOKENS + _TOKENS_PER_SEC * duration)
        prompt = list(self.prompt(language))
        result = self._model.model.generate(
            encoded,
            [prompt],
            beam_size=self._beam_size,
            max_length=max_length,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
            max_initial_timestamp_index=_MAX_INITIAL_TIMESTAMP_INDEX,
        )[0]
        tokens = list(result.sequences_ids[0])
        text = self._segments_text(tokens, duration, limit=max_length - len(prompt))
        if text is None:
            return None
        return WindowedResult(text=text, no_speech_prob=float(result.no_speech_prob))

    def prompt(self, language: str | None) -> list[int]:
        """The tokens the decode starts from: start of transcript, and the language when the
        model is multilingual."""
        if not self._model.model.is_multilingual:
            return list(self._tokenizer.sot_sequence)
        tokenizer = Tokenizer(
            self._model.hf_tokenizer, True, task="transcribe", language=language or "en"
        )
        return list(tokenizer.sot_sequence)

    def _segments_text(self, tokens: list[int], duration: float, *, limit: int) -> str | None:
        """Join the closed segments that start inside the audio; None for a runaway answer."""
        begin = self._tokenizer.timestamp_begin
        if len(tokens) >= limit or not tokens or tokens[-1] < begin:
            return None
        parts: list[str] = []
        words: list[int] = []
        start: float | None = None
        for token in tokens:
            if token < begin:
                if token < self._tokenizer.eot:
                    words.append(token)
                continue
            stamp = (token - begin) * TIMESTAMP_SECS
            if start is None:
                start = stamp
                continue
            # A segment that starts where the audio has already ended is the model inventing.
            if start < duration and words:
                part = self._tokenizer.decode(words)
                if parts and _same_words(parts[-1], part):
                    # The same sentence twice in a row: the looping failure, closed each time.
                    return None
                parts.append(part)
            words, start = [], None
        if words:
            # Words after the last timestamp were never closed.
            return None
        return "".join(parts).strip()


def _same_words(first: str, second: str) -> bool:
    def normal(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum() or ch.isspace()).strip()

    return bool(normal(first)) and normal(first) == normal(second)
