"""Drive a real agent with ``plain_aiortc_client.py``, a stranger's client in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import soxr

from pipeline.agent_process import AgentProcess
from pipeline.audio_clip import load_wav
from tests.support.conversation import fixture_clip, transcribe

CLIENT = Path(__file__).with_name("plain_aiortc_client.py")
MIC_RATE = 48000
LEAD_SILENCE_S = 4.0  # the greeting plays meanwhile
TRAIL_SILENCE_S = 6.0  # lets the turn end while the microphone still sends
CALL_BOUND_S = 150.0  # bounds a hang, not speed


def microphone_file(directory: Path) -> tuple[Path, float]:
    """The weather question padded with silence, and where in the file the question ends."""
    clip, rate = fixture_clip("weather_question.wav")
    clip = soxr.resample(clip, rate, MIC_RATE).astype(np.float32)
    lead = np.zeros(int(LEAD_SILENCE_S * MIC_RATE), dtype=np.float32)
    trail = np.zeros(int(TRAIL_SILENCE_S * MIC_RATE), dtype=np.float32)
    pcm = (np.clip(np.concatenate([lead, clip, trail]), -1, 1) * 32767).astype("<i2")
    path = directory / "question.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(MIC_RATE)
        out.writeframes(pcm.tobytes())
    return path, LEAD_SILENCE_S + len(clip) / MIC_RATE


def call_with_plain_client(
    agent: AgentProcess, directory: Path, *extra: str
) -> tuple[dict[str, object], str]:
    """Run the plain client against ``agent`` (one spoken question, the weather fixture): its
    summary and the answer as Whisper hears it."""
    mic, question_ends = microphone_file(directory)
    answer = directory / "answer.wav"
    # Not the repository's directory, and no PYTHONPATH: nothing of ours is importable by
    # accident (the script's own directory, tests/support, has no package of ours at its top).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [
        sys.executable,
        str(CLIENT),
        agent.base_url,
        str(mic),
        str(answer),
        "--question-ends",
        f"{question_ends:.2f}",
        "--timeout",
        str(CALL_BOUND_S - 20),
        *extra,
    ]
    done = subprocess.run(
        command,
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=CALL_BOUND_S,
        check=False,
    )
    assert done.returncode == 0, (
        f"plain client exited {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}\n"
        f"--- agent ---\n{agent.log_tail()}"
    )
    summary: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    audio, rate = load_wav(answer)
    return summary, transcribe(audio, rate) if len(audio) else ""
