"""The bot's sender, over a real aiortc connection: 10 ms low-delay Opus packets that decode."""

from __future__ import annotations

import asyncio
import fractions

import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from av import AudioFrame

from pipeline.webrtc.ice_policy import loopback_only_ice
from pipeline.webrtc.opus_sender import LowDelayOpusEncoder, send_low_delay_opus

RATE = 24_000  # Kokoro's rate, as the bot's output track sends it
TONE_HZ = 440.0


class _Tone(AudioStreamTrack):
    """10 ms frames of a tone at Kokoro's rate, paced like pipecat's output track."""

    def __init__(self) -> None:
        super().__init__()
        self._sent = 0

    async def recv(self) -> AudioFrame:
        await asyncio.sleep(0.01)
        n = RATE // 100
        t = (self._sent + np.arange(n)) / RATE
        samples = (0.3 * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples[None, :], layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._sent
        frame.time_base = fractions.Fraction(1, RATE)
        self._sent += n
        return frame


async def _received_frames(
    codecs: tuple[str, ...] | None, low_delay: bool, count: int
) -> tuple[list[AudioFrame], int]:
    """Frames a listener decodes from a bot sender; and how many senders were changed."""
    bot, listener = RTCPeerConnection(), RTCPeerConnection()
    frames: list[AudioFrame] = []
    readers: list[asyncio.Task[None]] = []
    done = asyncio.get_running_loop().create_future()

    @listener.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        async def read() -> None:
            while len(frames) < count:
                frames.append(await track.recv())  # type: ignore[arg-type]
            done.set_result(None)

        readers.append(asyncio.ensure_future(read()))

    try:
        transceiver = listener.addTransceiver("audio", direction="recvonly")
        if codecs is not None:
            from aiortc.rtcrtpsender import RTCRtpSender

            preferred = [
                c
                for c in RTCRtpSender.getCapabilities("audio").codecs
                if c.mimeType.lower() in codecs
            ]
            transceiver.setCodecPreferences(preferred)
        await listener.setLocalDescription(await listener.createOffer())
        bot.addTrack(_Tone())
        await bot.setRemoteDescription(
            RTCSessionDescription(sdp=listener.localDescription.sdp, type="offer")
        )
        await bot.setLocalDescription(await bot.createAnswer())
        changed = send_low_delay_opus(bot) if low_delay else 0
        await listener.setRemoteDescription(bot.localDescription)
        await asyncio.wait_for(done, 20)
    finally:
        for reader in readers:
            reader.cancel()
        await bot.close()
        await listener.close()
    return frames, changed


def _tone_level(frames: list[AudioFrame]) -> float:
    audio = np.concatenate([f.to_ndarray().reshape(-1) for f in frames[10:]]).astype(np.float64)
    return float(np.sqrt(np.mean(audio**2)))


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_the_bot_sends_10_ms_opus_packets_that_decode_to_its_voice() -> None:
    with loopback_only_ice():
        stock, _ = await _received_frames(None, low_delay=False, count=30)
        tuned, changed = await _received_frames(None, low_delay=True, count=30)
    assert changed == 1
    # One decoded frame per packet: aiortc's own 20 ms, and 10 ms with the low-delay encoder.
    assert {f.samples for f in stock} == {960}
    assert {f.samples for f in tuned} == {480}
    # Same tone, same loudness (within 1.5 dB): the codec change loses nothing audible.
    assert abs(20 * np.log10(_tone_level(tuned) / _tone_level(stock))) < 1.5


@pytest.mark.asyncio
@pytest.mark.timeout(60)
async def test_a_sender_that_negotiated_another_codec_is_left_alone() -> None:
    with loopback_only_ice():
        frames, changed = await _received_frames(("audio/pcmu",), low_delay=True, count=10)
    assert changed == 0
    assert frames, "PCMU audio stopped flowing"


def test_the_encoder_packs_10_ms() -> None:
    encoder = LowDelayOpusEncoder()
    frame = AudioFrame.from_ndarray(np.zeros((1, 480), dtype=np.int16), layout="mono")
    frame.sample_rate = 48_000
    frame.pts = 0
    frame.time_base = fractions.Fraction(1, 48_000)
    packets, _timestamp = encoder.encode(frame)
    assert len(packets) == 1
