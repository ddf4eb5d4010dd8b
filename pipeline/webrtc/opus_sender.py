"""The bot's voice leaves in 10 ms Opus packets encoded with 2.5 ms of look-ahead.

aiortc encodes every outgoing Opus stream in 20 ms packets with the ``voip`` application, whose
encoder looks 6.5 ms ahead. A listener can play a packet's first sample only once the whole
packet is in, and its jitter buffer holds at least one packet, so both the packet's length and
the look-ahead are delay on the first word of every answer. The ``lowdelay`` application (CELT
only, 2.5 ms look-ahead) at aiortc's 96 kbit/s carries Kokoro's 24 kHz speech without audible
loss, and every Opus decoder takes 10 ms frames (browsers offer ``minptime=10``). Measured with
PyAV's libopus: the decoded onset comes 6.56 ms after the input's with ``voip``, 2.56 ms with
``lowdelay``, for 20 and 10 ms frames alike.

Its resampler would also hold the bot's audio back by a whole packet. The bot speaks at 24 kHz;
libswresample keeps the last few input samples (its filter's reach, 16 at 24 kHz) until the next
frame comes, so each 10 ms frame yields 10 ms minus 32 samples at 48 kHz, and the packetizer
after it, waiting for a full 480, sends every frame one tick late. The encoder below starts the
stream with exactly that many samples of silence (measured once from the resampler itself): the
packets then line up with the frames, and the audio is late by those 0.7 ms, not 10.

What the browser sends is the browser's business, but the answer asks it for 10 ms packets too
(pipeline.webrtc.packet_time); the loopback caller then sends 10 ms ``voip`` packets, as Chrome
does.
"""

from __future__ import annotations

import fractions
import math
from collections.abc import Callable

import numpy as np
from aiortc import RTCPeerConnection
from aiortc.codecs.opus import SAMPLE_RATE, OpusEncoder
from av import AudioFrame, AudioResampler
from av.frame import Frame

from services.seams.aiortc_seams import negotiated_codecs, sender_encoder, set_sender_encoder

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
        self._primed = False

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """aiortc's encode, after lining the first frame up with the packets (module doc)."""
        if not self._primed and isinstance(frame, AudioFrame):
            self._primed = True
            lead = resampler_held_samples(frame)
            if lead:
                silence = AudioFrame.from_ndarray(
                    np.zeros((1, lead * len(frame.layout.channels)), dtype=np.int16),
                    format="s16",
                    layout=frame.layout.name,
                )
                silence.sample_rate = frame.sample_rate
                silence.time_base = fractions.Fraction(1, frame.sample_rate)
                silence.pts = None if frame.pts is None else frame.pts - lead
                self.resampler.resample(silence)  # fills the packetizer, emits nothing
        return super().encode(frame, force_keyframe)


def resampler_held_samples(frame: AudioFrame) -> int:
    """Input samples of silence that make up for what resampling ``frame``'s stream to 48 kHz
    stereo holds back (0 when nothing is resampled): measured on a scratch resampler."""
    probe = AudioResampler(format="s16", layout="stereo", rate=SAMPLE_RATE)
    rate, channels = frame.sample_rate, len(frame.layout.channels)
    size = rate // 100  # 10 ms
    zeros = AudioFrame.from_ndarray(
        np.zeros((1, size * channels), dtype=np.int16), format="s16", layout=frame.layout.name
    )
    zeros.sample_rate = rate
    out = sum(f.samples for f in probe.resample(zeros))
    missing = size * SAMPLE_RATE // rate - out
    return max(0, math.ceil(missing * rate / SAMPLE_RATE))


def send_low_delay_opus(
    pc: RTCPeerConnection, encoder: Callable[[], OpusEncoder] = LowDelayOpusEncoder
) -> int:
    """Give the audio senders of ``pc`` that negotiated Opus an ``encoder()`` (by default a
    :class:`LowDelayOpusEncoder`).

    aiortc has no public knob for this; its sender builds its encoder on the first frame when
    it has none, so one set before media flows (right after the answer) is the one it uses
    (:func:`~services.seams.aiortc_seams.set_sender_encoder`). A sender that already encodes,
    or that negotiated another codec, is left alone. Returns how many were changed.
    """
    changed = 0
    for transceiver in pc.getTransceivers():
        if transceiver.kind != "audio":
            continue
        codecs = negotiated_codecs(transceiver)
        if not codecs or codecs[0].mimeType.lower() != "audio/opus":
            continue
        sender = transceiver.sender
        if sender_encoder(sender) is not None:
            continue
        set_sender_encoder(sender, encoder())
        changed += 1
    return changed
