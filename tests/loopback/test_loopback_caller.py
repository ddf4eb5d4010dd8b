"""LoopbackCaller against a real pipecat SmallWebRTC echo bot on 127.0.0.1."""

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest

from pipeline.bench.client.audio_clip import FloatArray, first_voiced_sample, load_wav
from pipeline.bench.client.loopback_caller import CallerConfig, LoopbackCaller
from pipeline.bench.client.microphone_track import MAX_CATCH_UP_S
from tests.loopback.echo_bot import EchoServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
ENVELOPE_BLOCK_S = 0.01
MAX_ECHO_DELAY_S = 1.5


def _envelope(samples: FloatArray, sample_rate: int) -> FloatArray:
    block = round(sample_rate * ENVELOPE_BLOCK_S)
    count = len(samples) // block
    blocks = samples[: count * block].reshape(count, block)
    return np.sqrt(np.square(blocks).mean(axis=1)).astype(np.float32)


def _best_aligned_correlation(reference: FloatArray, received: FloatArray) -> tuple[float, int]:
    """Highest Pearson correlation of `reference` against `received` shifted by 0..N blocks."""
    best, best_lag = -1.0, 0
    max_lag = min(len(received) - len(reference), round(MAX_ECHO_DELAY_S / ENVELOPE_BLOCK_S))
    for lag in range(max_lag + 1):
        window = received[lag : lag + len(reference)]
        if window.std() == 0:
            continue
        corr = float(np.corrcoef(reference, window)[0, 1])
        if corr > best:
            best, best_lag = corr, lag
    return best, best_lag


def _candidate_lines(sdp: str) -> list[str]:
    return [line for line in sdp.splitlines() if line.startswith("a=candidate:")]


@pytest.mark.asyncio
@pytest.mark.timeout(90)
@pytest.mark.parametrize("trickle_ice", [False, True], ids=["full-offer", "trickle"])
async def test_echo_bot_returns_the_spoken_clip(
    echo_server: EchoServer, network_audit: list[str], trickle_ice: bool
) -> None:
    clip, clip_rate = load_wav(FIXTURES / "hello_world.wav")
    clip_voice_offset = first_voiced_sample(clip, clip_rate)
    assert clip_voice_offset is not None

    async def scenario() -> None:
        caller = LoopbackCaller(echo_server.base_url, config=CallerConfig(trickle_ice=trickle_ice))
        async with caller:
            assert caller.connect_duration_s is not None and caller.connect_duration_s < 10
            assert caller.answer_sdp is not None
            candidates = _candidate_lines(caller.answer_sdp)
            assert candidates, "the answer carries no ICE candidates"
            assert all(" typ host" in line for line in candidates), candidates
            assert all(" 127.0.0.1 " in line for line in candidates), candidates

            bot_ready = await caller.wait_for_message("bot-ready", timeout=5)
            assert bot_ready.data["label"] == "rtvi-ai"

            started = time.monotonic()
            spoken_end = await caller.say(clip, clip_rate)
            # Real-time pacing: the clip cannot finish faster than its duration, less what the
            # microphone may send in one burst after its process fell behind (a real device
            # delivers its backlog too) and one frame.
            assert spoken_end - started >= len(clip) / clip_rate - MAX_CATCH_UP_S - 0.03

            heard = await caller.wait_for_voice(after=started, timeout=5)
            voice_spoken = started + clip_voice_offset / clip_rate
            assert heard > voice_spoken, "echo arrived before the voice was spoken"
            assert heard - voice_spoken < MAX_ECHO_DELAY_S

            voice_end = await caller.wait_for_silence(0.5, timeout=10, after=heard)
            assert voice_end > spoken_end - 0.2

            received, rate = caller.received_audio(since=started)
            assert rate == 48_000
            resampled_clip = _envelope(clip, clip_rate)
            corr, lag = _best_aligned_correlation(resampled_clip, _envelope(received, rate))
            assert corr > 0.5, f"echo does not match the clip (r={corr:.2f})"
            assert lag * ENVELOPE_BLOCK_S < MAX_ECHO_DELAY_S
        assert caller.connection_state == "closed"
        await caller.close()  # idempotent

        # Hanging up must end the bot's session on the server.
        done, _ = await asyncio.wait(echo_server.bots, timeout=10)
        assert len(done) == len(echo_server.bots) == 1

    await asyncio.wait_for(scenario(), 60)
    assert not network_audit, network_audit


@pytest.mark.asyncio
@pytest.mark.timeout(30)
async def test_refused_offer_raises_and_leaves_nothing(echo_server: EchoServer) -> None:
    caller = LoopbackCaller(echo_server.base_url, config=CallerConfig(offer_path="/missing"))
    with pytest.raises(ConnectionError, match="HTTP 404"):
        await asyncio.wait_for(caller.connect(timeout=10), 15)
    assert caller.connection_state == "closed"
    assert not echo_server.bots
    with pytest.raises(RuntimeError):
        await caller.say(np.zeros(480, dtype=np.int16), 48_000)
