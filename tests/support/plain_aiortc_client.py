"""A stranger's WebRTC client: plain aiortc, default configuration, no jetvoice code loaded.

Run as its own process (``python tests/support/plain_aiortc_client.py URL WAV OUT``): it plays
WAV as its microphone with aiortc's own ``MediaPlayer``, sends the offer the way any client of
pipecat's SmallWebRTC contract would (``POST /api/offer``, or with ``--pipecat-start`` first
``POST /start`` and then ``/sessions/{id}/api/offer``), records what the server sends back, and
hangs up once the microphone file has ended and the server has been quiet for ``--quiet`` seconds
after its answer (or at ``--timeout``). It writes the audio received after the question to OUT
(mono 16-bit WAV) and prints one JSON line: the connection states it went through, the lengths,
and which of this repository's modules it had loaded (none).

It imports nothing from this repository on purpose: the ICE policy and every helper of the
project stay out of this process, so what connects here is what a person's own client gets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import ssl
import sys
import time
import urllib.request
import wave
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError

VOICE_DBFS = -40.0  # a 20 ms frame above this counts as voice


def _post(url: str, body: dict[str, Any], token: str | None, cafile: str | None) -> Any:
    data = json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    # No proxy: the server is on this machine.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    with opener.open(request, timeout=30) as response:
        return json.loads(response.read())


def _dbfs(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples.astype(np.float64) / 32768.0)))) + 1e-12
    return 20.0 * float(np.log10(rms))


async def call(args: argparse.Namespace) -> dict[str, Any]:
    """One call: offer, play the file, record the answer, hang up."""
    pc = RTCPeerConnection()
    states: list[str] = []
    pc.on("connectionstatechange", lambda: states.append(pc.connectionState))
    player = MediaPlayer(args.wav)
    assert player.audio is not None
    pc.addTrack(player.audio)
    received: list[np.ndarray] = []
    rate = 48000
    remote_track: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @pc.on("track")
    def on_track(track: Any) -> None:
        if track.kind == "audio" and not remote_track.done():
            remote_track.set_result(track)

    await pc.setLocalDescription(await pc.createOffer())
    offer = {"sdp": pc.localDescription.sdp, "type": pc.localDescription.type}
    base = args.url.rstrip("/")
    offer_url = f"{base}/api/offer"
    loop = asyncio.get_running_loop()
    if args.pipecat_start:
        started = await loop.run_in_executor(
            None, _post, f"{base}/start", {}, args.token, args.cafile
        )
        offer_url = f"{base}/sessions/{started['sessionId']}/api/offer"
    answer = await loop.run_in_executor(None, _post, offer_url, offer, args.token, args.cafile)
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))

    deadline = time.monotonic() + args.timeout
    track = await asyncio.wait_for(remote_track, timeout=args.timeout)
    answer_frames: list[np.ndarray] = []
    mic_started: float | None = None
    last_voice: float | None = None
    while time.monotonic() < deadline:
        try:
            frame = await asyncio.wait_for(track.recv(), timeout=5)
        except (MediaStreamError, TimeoutError):
            break
        now = time.monotonic()
        # Media flows both ways from the moment ICE connects: the microphone file starts then.
        mic_started = now if mic_started is None else mic_started
        rate = frame.sample_rate
        samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
        samples = samples.astype(np.int16)
        received.append(samples)
        if now - mic_started < args.question_ends:
            continue  # the greeting, or anything before the question was over
        answer_frames.append(samples)
        if _dbfs(samples) > VOICE_DBFS:
            last_voice = now
        # Done: an answer came after the question and has gone quiet.
        if last_voice is not None and now - last_voice > args.quiet:
            break
    player.audio.stop()
    await pc.close()
    audio = np.concatenate(answer_frames) if answer_frames else np.zeros(0, dtype=np.int16)
    with wave.open(args.out, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(audio.tobytes())
    ours = sorted(
        name for name in sys.modules if name.split(".")[0] in {"pipeline", "services", "tests"}
    )
    return {
        "states": states,
        "received_s": round(sum(len(r) for r in received) / rate, 2),
        "answer_s": round(len(audio) / rate, 2),
        "answered": last_voice is not None,
        "project_modules": ours,
    }


def main() -> int:
    """Parse the arguments, make the call, print its summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="the agent's base URL, e.g. http://127.0.0.1:8430")
    parser.add_argument("wav", help="what the microphone says (any WAV)")
    parser.add_argument("out", help="where to write the audio the server sent")
    parser.add_argument(
        "--question-ends", type=float, required=True, help="seconds into the WAV the question ends"
    )
    parser.add_argument("--pipecat-start", action="store_true", help="POST /start first")
    parser.add_argument("--token", help="pairing token (Authorization: Bearer)")
    parser.add_argument("--cafile", help="CA to trust for https")
    parser.add_argument("--quiet", type=float, default=2.0, help="silence that ends the answer")
    parser.add_argument("--timeout", type=float, default=120.0, help="whole call bound")
    args = parser.parse_args()
    summary = asyncio.run(call(args))
    print(json.dumps(summary), flush=True)
    return 0 if "connected" in summary["states"] else 1


if __name__ == "__main__":
    sys.exit(main())
