"""The benchmark's corpus: what is said, with its expected transcript, and in which calls.

Turns come from ``corpus.json``: recorded fixtures (any rate or channel count; the caller
resamples to 48 kHz) and sentences synthesized with Kokoro. Synthesized audio is cached under
``artifacts/bench/corpus/`` keyed by (text, voice, speed, Kokoro model and voices sha256,
kokoro-onnx version): Kokoro is deterministic on one machine (the same bytes twice, in one
process or two), so a cache hit is exactly what a fresh synthesis would give; on another CPU or
onnxruntime build the samples may differ in the last bits, which the key does not hide but the
benchmark does not care about (it measures time, and WER on the words).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.bench.client.audio_clip import FloatArray, last_voiced_sample, load_wav
from pipeline.bench.paths import DEFAULT_CORPUS

# Silence before the speech, as a person draws breath; the microphone is silent afterwards
# until the next turn, which the driver starts only after the bot's answer.
LEAD_SILENCE_S = 0.3
KOKORO_SPEED = 1.0
KOKORO_RATE = 24_000


@dataclass(frozen=True)
class TurnSpec:
    """One turn as declared: an id, its expected transcript, and a fixture or a voice."""

    id: str
    text: str
    fixture: str | None = None
    voice: str | None = None

    @property
    def source(self) -> str:
        """``fixture:<file>`` or ``kokoro:<voice>``."""
        return f"fixture:{self.fixture}" if self.fixture else f"kokoro:{self.voice}"


@dataclass(frozen=True)
class CorpusSpec:
    """The declared corpus: single turns (order kept) and multi-turn conversations."""

    single_turns: tuple[TurnSpec, ...]
    conversations: tuple[tuple[str, tuple[TurnSpec, ...]], ...]

    @property
    def turn_count(self) -> int:
        """All turns, single and conversational."""
        return len(self.single_turns) + sum(len(t) for _, t in self.conversations)

    @property
    def voices(self) -> tuple[str, ...]:
        """The distinct Kokoro voices used, sorted."""
        turns = [*self.single_turns, *(t for _, ts in self.conversations for t in ts)]
        return tuple(sorted({t.voice for t in turns if t.voice}))


def _turn(raw: Any, where: str) -> TurnSpec:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a turn must be an object")
    turn_id, text = raw.get("id"), raw.get("text")
    fixture, voice = raw.get("fixture"), raw.get("voice")
    if not isinstance(turn_id, str) or not turn_id:
        raise ValueError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{where} ({turn_id}): 'text' must be a non-empty string")
    if (fixture is None) == (voice is None):
        raise ValueError(f"{where} ({turn_id}): give exactly one of 'fixture' and 'voice'")
    for key, value in (("fixture", fixture), ("voice", voice)):
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"{where} ({turn_id}): '{key}' must be a non-empty string")
    return TurnSpec(id=turn_id, text=text.strip(), fixture=fixture, voice=voice)


def parse_corpus(data: Any) -> CorpusSpec:
    """Validate a parsed ``corpus.json``.

    Raises:
        ValueError: naming the first malformed entry, or a duplicate turn id.
    """
    if not isinstance(data, dict):
        raise ValueError("corpus: the top level must be an object")
    singles_raw = data.get("single_turns", [])
    convs_raw = data.get("conversations", [])
    if not isinstance(singles_raw, list) or not isinstance(convs_raw, list):
        raise ValueError("corpus: 'single_turns' and 'conversations' must be lists")
    singles = tuple(_turn(t, f"single_turns[{i}]") for i, t in enumerate(singles_raw))
    conversations: list[tuple[str, tuple[TurnSpec, ...]]] = []
    for i, conv in enumerate(convs_raw):
        if not isinstance(conv, dict) or not isinstance(conv.get("id"), str):
            raise ValueError(f"conversations[{i}]: needs an 'id' and 'turns'")
        turns = conv.get("turns")
        if not isinstance(turns, list) or not turns:
            raise ValueError(f"conversations[{i}] ({conv['id']}): 'turns' must be a non-empty list")
        where = f"conversations[{i}].turns"
        conversations.append(
            (conv["id"], tuple(_turn(t, f"{where}[{j}]") for j, t in enumerate(turns)))
        )
    spec = CorpusSpec(singles, tuple(conversations))
    ids = [t.id for t in singles] + [t.id for _, ts in conversations for t in ts]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"corpus: duplicate turn ids {', '.join(duplicates)}")
    if not ids:
        raise ValueError("corpus: no turns")
    return spec


def load_corpus(path: Path = DEFAULT_CORPUS) -> CorpusSpec:
    """Read and validate a corpus file."""
    return parse_corpus(json.loads(path.read_text()))


@dataclass(frozen=True, eq=False)
class Utterance:
    """A turn ready to speak: the audio (lead silence included) and where its speech ends."""

    spec: TurnSpec
    samples: FloatArray
    sample_rate: int
    unvoiced_tail_s: float
    """From the end of the clip's last voiced 10 ms block to the end of the clip."""
    voiced_s: float
    """From the start of the clip to the end of its speech (lead silence included)."""
    audio_sha256: str
    """sha256 of the samples as spoken, so two runs can be checked to have said the same."""


@dataclass(frozen=True)
class CallPlan:
    """The turns one WebRTC call speaks, in order."""

    conversation: str
    repeat: int
    turns: tuple[Utterance, ...]


def _utterance(spec: TurnSpec, samples: FloatArray, rate: int) -> Utterance:
    lead = np.zeros(round(LEAD_SILENCE_S * rate), dtype=np.float32)
    audio = np.concatenate([lead, samples.astype(np.float32)])
    last = last_voiced_sample(audio, rate)
    if last is None:
        raise ValueError(f"turn {spec.id}: the clip has no voiced sample")
    return Utterance(
        spec=spec,
        samples=audio,
        sample_rate=rate,
        unvoiced_tail_s=(len(audio) - 1 - last) / rate,
        voiced_s=(last + 1) / rate,
        audio_sha256=hashlib.sha256(audio.tobytes()).hexdigest(),
    )


def synthesis_key(text: str, voice: str, model_sha256: str, voices_sha256: str) -> str:
    """Cache key of one synthesized turn (hex)."""
    identity = {
        "text": text,
        "voice": voice,
        "speed": KOKORO_SPEED,
        "model": model_sha256,
        "voices": voices_sha256,
        "kokoro_onnx": _kokoro_onnx_version(),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _kokoro_onnx_version() -> str:
    try:
        return importlib.metadata.version("kokoro-onnx")
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def write_wav_int16(path: Path, samples: FloatArray, rate: int) -> None:
    """Write mono 16-bit PCM atomically (a half-written cache file must never be read)."""
    pcm = np.clip(np.rint(samples * 32767.0), -32768, 32767).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".wav")
    os.close(fd)
    try:
        with wave.open(tmp, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


Synthesizer = Callable[[str, str], FloatArray]
"""(text, voice) -> float32 samples at 24 kHz."""


@dataclass(frozen=True)
class CorpusSources:
    """Where a corpus's audio comes from."""

    fixtures_dir: Path
    cache_dir: Path
    tts_model_sha256: str
    voices_sha256: str


def prepare(
    turns: Sequence[TurnSpec],
    sources: CorpusSources,
    synthesizer_factory: Callable[[], Synthesizer],
) -> dict[str, Utterance]:
    """Load or synthesize every turn's audio, keyed by turn id.

    The synthesizer (a loaded Kokoro) is only created when some turn is not cached yet.

    Raises:
        FileNotFoundError: a fixture is missing (naming it and the directory searched).
    """
    prepared: dict[str, Utterance] = {}
    synthesize: Synthesizer | None = None
    for spec in turns:
        if spec.id in prepared:
            continue
        if spec.fixture is not None:
            path = sources.fixtures_dir / spec.fixture
            if not path.is_file():
                raise FileNotFoundError(
                    f"fixture {spec.fixture} not found in {sources.fixtures_dir} (use --fixtures)"
                )
            samples, rate = load_wav(path)
        else:
            assert spec.voice is not None  # parse_corpus guarantees fixture xor voice
            key = synthesis_key(
                spec.text, spec.voice, sources.tts_model_sha256, sources.voices_sha256
            )
            path = sources.cache_dir / f"{spec.voice}-{key[:16]}.wav"
            if not path.is_file():
                if synthesize is None:
                    synthesize = synthesizer_factory()
                write_wav_int16(path, synthesize(spec.text, spec.voice), KOKORO_RATE)
            samples, rate = load_wav(path)
        prepared[spec.id] = _utterance(spec, samples, rate)
    return prepared


def selected_turns(spec: CorpusSpec, max_turns: int | None) -> list[tuple[str, TurnSpec]]:
    """(conversation, turn) in run order, cut to the first `max_turns` (None: all).

    Single turns come first (conversation ``single``), then each conversation in order.
    """
    ordered = [("single", t) for t in spec.single_turns]
    ordered += [(name, t) for name, turns in spec.conversations for t in turns]
    return ordered if max_turns is None else ordered[:max_turns]


def plan_calls(
    selection: Sequence[tuple[str, TurnSpec]],
    utterances: dict[str, Utterance],
    *,
    repeat: int = 1,
    turns_per_call: int = 4,
) -> list[CallPlan]:
    """Group the selected turns into calls, the whole selection `repeat` times.

    Single turns share a call, `turns_per_call` at a time: a fresh call per turn would add a
    connection and a greeting to every turn, while one call for all of them would grow the
    LLM's context (and its prefill) through the run. Each conversation is one call of its own.
    """
    if repeat < 1 or turns_per_call < 1:
        raise ValueError("repeat and turns_per_call must be at least 1")
    calls: list[CallPlan] = []
    for round_index in range(repeat):
        current: list[Utterance] = []
        current_name: str | None = None
        for name, turn in selection:
            full = name == "single" and len(current) >= turns_per_call
            if current and (name != current_name or full):
                calls.append(CallPlan(current_name or name, round_index, tuple(current)))
                current = []
            current_name = name
            current.append(utterances[turn.id])
        if current:
            calls.append(CallPlan(current_name or "single", round_index, tuple(current)))
    return calls
