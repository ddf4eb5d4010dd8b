"""Drive a real agent with ``plain_aiortc_client.py``, a stranger's client in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipeline.bench.client.audio_clip import load_wav
from pipeline.ops.agent_process import AgentProcess
from tests.support.conversation import padded_question_wav, transcribe

CLIENT = Path(__file__).with_name("plain_aiortc_client.py")
LEAD_SILENCE_S = 4.0  # the greeting plays meanwhile
TRAIL_SILENCE_S = 12.0  # the microphone still sends while the answer plays out
CALL_BOUND_S = 150.0  # bounds a hang, not speed
ANSWER_QUIET_S = 4.0


def call_with_plain_client(
    agent: AgentProcess, directory: Path, *extra: str
) -> tuple[dict[str, object], str]:
    """Run the plain client against ``agent`` (one spoken question, the weather fixture): its
    summary and the answer as Whisper hears it."""
    mic = directory / "question.wav"
    question_ends = padded_question_wav(
        mic, "weather_question.wav", lead_s=LEAD_SILENCE_S, trail_s=TRAIL_SILENCE_S
    )
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
        # A stranger's client knows no end-of-answer message: it waits out the pauses between
        # an answer's pieces, which passed 2 s on busy cores (only "In Paris." was heard).
        "--quiet",
        str(ANSWER_QUIET_S),
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
