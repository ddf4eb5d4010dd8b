"""aiortc's internals that jetvoice relies on: a receiver's jitter buffer, the bytes it buffers,
a transceiver's negotiated codecs and a sender's encoder.

aiortc (1.16) has no setting for any of these; each is needed for the latency of a call (see
``pipeline/webrtc/jitter.py`` and ``pipeline/webrtc/opus_sender.py``). The names are checked
against the pinned version by ``tests/unit/test_library_seams.py``. Nothing here uses a
``getattr`` default: a renamed attribute raises, rather than silently leaving aiortc's own
buffer or encoder in place.
"""

from __future__ import annotations

from typing import Protocol

from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.base import Encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket


class ReceiverJitterBuffer(Protocol):
    """What aiortc's receiver calls on its jitter buffer: ``add`` once per arriving packet, with
    the packet's depayloaded bytes already stored on it (see :func:`depayloaded`); it returns
    whether to ask the sender for a keyframe, and the next frame to decode, if any."""

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """Store ``packet``; return (send a PLI, the frame now due)."""
        ...


def replace_jitter_buffer(receiver: RTCRtpReceiver, buffer: ReceiverJitterBuffer) -> None:
    """Make ``buffer`` the jitter buffer ``receiver`` feeds its packets to.

    aiortc builds the buffer in the receiver's constructor (16 audio packets, 4 of them held
    back) with no parameter to change it, and keeps it in a name-mangled attribute. pipecat's
    ``SmallWebRTCTrack`` writes the same attribute for its screen-share video
    (``jitter_buffer_capacity``); it offers no slot for audio, nor for a buffer of another kind,
    so the write is done here, the same way. Call it before media flows.
    """
    # Name-mangled ``RTCRtpReceiver.__jitter_buffer``: read by _handle_rtp_packet for each packet.
    receiver._RTCRtpReceiver__jitter_buffer = buffer  # type: ignore[attr-defined]


def depayloaded(packet: RtpPacket) -> bytes:
    """The codec payload aiortc's receiver stored on ``packet`` before handing it to the jitter
    buffer (for Opus, the whole packet's frame): a jitter buffer's only input, as aiortc's own
    buffer reads it."""
    data: bytes = packet._data  # type: ignore[attr-defined]
    return data


def negotiated_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs ``transceiver`` negotiated, the one its sender sends with first.

    aiortc stores them on the transceiver when the remote description is set and exposes no
    accessor (the SDP holds them too, but re-parsing it could disagree with what the sender
    was given). Empty before negotiation.
    """
    return list(transceiver._codecs)


def sender_encoder(sender: RTCRtpSender) -> Encoder | None:
    """The encoder ``sender`` encodes with, or None while it has not built one.

    aiortc's sender builds its encoder for the negotiated codec on the first frame it sends,
    only when it has none, and keeps it in a name-mangled attribute with no accessor.
    """
    # Name-mangled ``RTCRtpSender.__encoder``.
    encoder: Encoder | None = sender._RTCRtpSender__encoder  # type: ignore[attr-defined]
    return encoder


def set_sender_encoder(sender: RTCRtpSender, encoder: Encoder) -> None:
    """Make ``sender`` encode with ``encoder``: set before media flows, it is the one the sender
    uses, since aiortc builds its own only when the attribute is None (it has no encoder
    parameter)."""
    sender._RTCRtpSender__encoder = encoder  # type: ignore[attr-defined]
