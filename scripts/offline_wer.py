"""Word error rate of the cpu profile's Whisper on the recorded speech fixtures, offline.

Each clip in tests/fixtures/speech/ is decoded whole by faster-whisper with the model the cpu
profile uses (models/weights/whisper-tiny.en, loaded with local_files_only: nothing is fetched),
greedy and without context (beam 1, temperature 0, condition_on_previous_text off, English),
and compared with its reference in transcripts.json by pipeline/bench/wer.py, the same
normalisation and edit distance that the benchmark uses.

    uv run --no-sync python scripts/offline_wer.py
    uv run --no-sync python scripts/offline_wer.py --dir tests/fixtures/speech --threads 2

Prints one row per clip (seconds, reference words, errors, WER, what Whisper heard) and the
pooled WER over all clips (total errors / total reference words).
"""

from __future__ import annotations

import argparse
import json
import os
import time
import wave
from pathlib import Path

import numpy as np
import soxr

from models.paths import profile_paths
from models.store import ModelStore, default_models_dir
from pipeline.bench.wer import WordErrorRate, corpus_wer, wer

_ROOT = Path(__file__).resolve().parent.parent
_SAMPLE_RATE = 16_000


def read_wav(path: Path) -> np.ndarray:
    """A 16-bit PCM WAV file as 16 kHz mono float32 (channels averaged, resampled if needed)."""
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path.name}: {8 * wav.getsampwidth()}-bit, expected 16-bit PCM")
        channels, rate = wav.getnchannels(), wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    audio = pcm.reshape(-1, channels).mean(axis=1).astype(np.float32) / 32768.0
    if rate != _SAMPLE_RATE:
        audio = soxr.resample(audio, rate, _SAMPLE_RATE).astype(np.float32)
    return audio


def _percent(result: WordErrorRate) -> str:
    return "n/a" if result.rate is None else f"{100 * result.rate:.1f}%"


def main() -> None:
    """Decode every clip named in transcripts.json and print per-clip and pooled WER."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dir",
        type=Path,
        default=_ROOT / "tests" / "fixtures" / "speech",
        help="folder with the WAV clips and transcripts.json (default: tests/fixtures/speech)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="CTranslate2 CPU threads (default: half the cores, as the service uses)",
    )
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    store = ModelStore(default_models_dir())
    paths = profile_paths("cpu", store, check=False)
    compute_type = store.catalog.profile("cpu").stt_compute_type
    model = WhisperModel(
        str(paths.stt_dir),
        device="cpu",
        compute_type=compute_type,
        cpu_threads=args.threads,
        local_files_only=True,
    )
    transcripts: dict[str, str] = json.loads((args.dir / "transcripts.json").read_text())
    print(f"model {paths.stt_model} ({compute_type}, {args.threads} threads), clips in {args.dir}")
    print("| file | seconds | ref words | errors | WER | heard |")
    print("|---|---|---|---|---|---|")
    pairs: list[tuple[str, str]] = []
    audio_secs = decode_secs = 0.0
    for name, reference in transcripts.items():
        audio = read_wav(args.dir / name)
        started = time.perf_counter()
        segments, _info = model.transcribe(
            audio,
            language="en",
            beam_size=1,
            best_of=1,
            temperature=0.0,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,
        )
        heard = " ".join(segment.text.strip() for segment in segments)
        decode_secs += time.perf_counter() - started
        audio_secs += audio.size / _SAMPLE_RATE
        result = wer(reference, heard)
        pairs.append((reference, heard))
        print(
            f"| {name} | {audio.size / _SAMPLE_RATE:.1f} | {result.reference_words} "
            f"| {result.errors} | {_percent(result)} | {heard} |"
        )
    overall = corpus_wer(pairs)
    print(
        f"overall: {overall.errors} errors / {overall.reference_words} reference words = "
        f"WER {_percent(overall)} over {len(pairs)} clips, {audio_secs:.1f} s of audio "
        f"decoded in {decode_secs:.1f} s"
    )


if __name__ == "__main__":
    main()
