"""Speak a sentence with the cpu profile's Kokoro into a WAV file: a test or demo utterance.

uv run python scripts/say.py "What time is it?" out.wav --voice am_michael --pad 0.5
"""

from __future__ import annotations

import argparse
import wave
from pathlib import Path

import numpy as np

from models.paths import profile_paths
from models.store import ModelStore, default_models_dir
from pipeline.config import TTSConfig
from services.tts import KOKORO_SAMPLE_RATE, KokoroEngine


def main() -> None:
    """Synthesize the text and write 16-bit mono 24 kHz PCM, padded with silence."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", help="what to say")
    parser.add_argument("output", type=Path, help="WAV file to write")
    parser.add_argument("--voice", default="af_heart", help="Kokoro voice (default: af_heart)")
    parser.add_argument(
        "--pad", type=float, default=0.5, help="seconds of silence before and after (default: 0.5)"
    )
    args = parser.parse_args()
    paths = profile_paths("cpu", ModelStore(default_models_dir()))
    engine = KokoroEngine(
        TTSConfig(model_path=paths.tts_path, voices_path=paths.voices_path, voice=args.voice)
    )
    silence = np.zeros(int(args.pad * KOKORO_SAMPLE_RATE), dtype=np.float32)
    audio = np.concatenate([silence, engine.synthesize(args.text), silence])
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
    with wave.open(str(args.output), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(KOKORO_SAMPLE_RATE)
        out.writeframes(pcm.tobytes())
    print(f"{args.output}: {len(audio) / KOKORO_SAMPLE_RATE:.2f} s")


if __name__ == "__main__":
    main()
