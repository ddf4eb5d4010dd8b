"""Clients the project did not write: a plain aiortc peer in its own process, no jetvoice code.

The loopback tests drive the agent with the project's own caller, whose process runs the same
ICE policy as the server; that proves nothing about what a person's client gets. Here the
client is ``tests/support/plain_aiortc_client.py``: ``RTCPeerConnection()`` with its default
configuration (it gathers on this machine's LAN addresses, never on 127.0.0.1), aiortc's own
``MediaPlayer`` as the microphone, run by the interpreter as a separate process with nothing of
this repository imported. One spoken turn per mode:

- the loopback default (what `just serve` runs), with ``POST /api/offer``;
- HTTPS with a required pairing token, with pipecat's own client contract (``POST /start``,
  then ``/sessions/{id}/api/offer``).

Both agents run under the network audit (tests/conftest.py): answering these clients over this
machine's LAN address must not make them talk to any other machine.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from pipeline.agent_process import AgentProcess
from pipeline.audio_clip import load_wav
from tests.support.conversation import fixture_clip, transcribe

CLIENT = Path(__file__).resolve().parents[1] / "support" / "plain_aiortc_client.py"
MIC_RATE = 48000
LEAD_SILENCE_S = 4.0  # the greeting plays meanwhile
TRAIL_SILENCE_S = 6.0  # lets the turn end while the microphone still sends
CALL_BOUND_S = 150.0  # bounds a hang, not speed


def _microphone_file(directory: Path) -> tuple[Path, float]:
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


def _call(agent: AgentProcess, directory: Path, *extra: str) -> tuple[dict[str, object], str]:
    """Run the plain client against ``agent``; its summary and the answer as Whisper hears it."""
    mic, question_ends = _microphone_file(directory)
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


def _check(summary: dict[str, object], spoken: str) -> None:
    assert "connected" in list(summary["states"]), summary  # type: ignore[call-overload]
    assert summary["project_modules"] == [], summary
    assert summary["answered"], f"no voice after the question: {summary}"
    words = re.findall(r"[A-Za-z']+", spoken)
    assert len(words) >= 3, f"the answer transcribes to {spoken!r} ({summary})"


@pytest.mark.timeout(240)
def test_a_plain_aiortc_client_gets_a_spoken_answer_from_the_default_bind(
    agent: AgentProcess, tmp_path: Path
) -> None:
    summary, spoken = _call(agent, tmp_path)
    print(f"plain aiortc client: {summary}; answer: {spoken!r}")
    _check(summary, spoken)


@pytest.mark.timeout(240)
def test_pipecat_start_contract_over_https_with_a_token(
    secure_agent: AgentProcess, tmp_path: Path
) -> None:
    summary, spoken = _call(
        secure_agent,
        tmp_path,
        "--pipecat-start",
        "--token",
        secure_agent.token,
        "--cafile",
        str(secure_agent.ca_file),
    )
    print(f"pipecat contract, https + token: {summary}; answer: {spoken!r}")
    _check(summary, spoken)
