"""The bot's voice leaves in 10 ms Opus packets encoded with 2.5 ms of look-ahead.

aiortc encodes every outgoing Opus stream in 20 ms packets with the ``voip`` application, whose
encoder looks 6.5 ms ahead. A listener can play a packet's first sample only once the whole
packet is in, and its jitter buffer holds at least one packet, so both the packet's length and
the look-ahead are delay on the first word of every answer. The ``lowdelay`` application (CELT
only, 2.5 ms look-ahead) at aiortc's 96 kbit/s carries Kokoro's 24 kHz speech without audible
loss, and every Opus decoder takes 10 ms frames (browsers offer ``minptime=10``). Measured with
PyAV's libopus: the decoded onset comes 6.56 ms after the input's with ``voip``, 2.56 ms with
``lowdelay``, for 20 and 10 ms frames alike.

What the browser sends is the browser's business, but the answer asks it for 10 ms packets too
(pipeline.packet_time); the loopback caller then sends 10 ms ``voip`` packets, as Chrome does.
"""

from __future__ import annotations

from collections.abc import Callable

from aiortc import RTCPeerConnection
from aiortc.codecs.opus import SAMPLE_RATE, OpusEncoder
from av import AudioResampler

PACKET_MS = 10
APPLICATION = "lowdelay"


class LowDelayOpusEncoder(OpusEncoder):
    """aiortc's Opus encoder with short packets (10 ms) and, by default, the low-delay
    application (``voip`` is what browsers use for a microphone)."""

    def __init__(self, packet_ms: int = PACKET_MS, application: str = APPLICATION) -> None:
        super().__init__()
        # The codec opens on the first frame, so its options can still change here.
        self.codec.options = {"application": application, "frame_duration": str(packet_ms)}
        self.resampler = AudioResampler(
            format="s16",
            layout="stereo",
            rate=SAMPLE_RATE,
            frame_size=SAMPLE_RATE * packet_ms // 1000,
        )


def send_low_delay_opus(
    pc: RTCPeerConnection, encoder: Callable[[], OpusEncoder] = LowDelayOpusEncoder
) -> int:
    """Give the audio senders of ``pc`` that negotiated Opus an ``encoder()`` (by default a
    :class:`LowDelayOpusEncoder`).

    aiortc has no public knob for this; its sender builds its encoder on the first frame when
    it has none, so one set before media flows (right after the answer) is the one it uses.
    A sender that already encodes, or that negotiated another codec, is left alone. Returns how
    many were changed.
    """
    changed = 0
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "audio":
            continue
        codecs = getattr(transceiver, "_codecs", None) or []
        if not codecs or codecs[0].mimeType.lower() != "audio/opus":
            continue
        sender = transceiver.sender
        if getattr(sender, "_RTCRtpSender__encoder", None) is not None:
            continue
        sender._RTCRtpSender__encoder = encoder()  # type: ignore[attr-defined]
        changed += 1
    return changed
