"""A short audio jitter buffer for aiortc receivers, that does not stall on a lost packet.

aiortc holds 4 audio packets (80 ms of Opus) before it releases one. The server's receiver has
no playout clock to protect (its audio goes to the VAD, not a speaker), so that prefetch is
pure latency on the end of the user's speech: here a packet in sequence is released as it
arrives, and packets are still put back in sequence order.

A lost packet is where aiortc's buffer goes wrong for a live voice. It treats the packet before
a gap as incomplete, releases nothing until its 16 slots are full (320 ms), then skips the gap
but stays full, releasing one packet per arrival: every later packet of the session reaches the
VAD 280 ms late. An audio packet is a whole frame (one Opus packet per RTP
packet, RFC 7587), so :class:`AudioJitterBuffer` releases the packet before a gap at once, gives
a missing packet up once ``loss_wait`` packets wait behind it (40 ms). aiortc's receiver takes
one frame per arriving packet, so after the first reordered or lost packet the buffer stays one
packet (20 ms) behind for the rest of the session: never worse than a one-packet prefetch.
"""

from __future__ import annotations

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import MAX_MISORDER, JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

# The server's receivers: nothing to play out, so nothing held (see the module doc).
DEFAULT_AUDIO_PREFETCH_PACKETS = 0
# A listener's receiver (the loopback caller): one packet (20 ms), about what a browser's
# adaptive playout buffer settles to on a quiet LAN.
LISTENER_AUDIO_PREFETCH_PACKETS = 1
# Packets that must be waiting behind a missing one before it is given up for lost: a packet
# reordered by less than this still finds its place.
DEFAULT_LOSS_WAIT_PACKETS = 2
_AUDIO_CAPACITY = 16  # aiortc's own capacity for audio (must be a power of two)


class AudioJitterBuffer(JitterBuffer):
    """Releases audio packets in sequence order, ``prefetch`` packets behind the newest.

    aiortc's receiver calls :meth:`add` once per packet and decodes the frame it returns.
    """

    def __init__(self, capacity: int, prefetch: int, loss_wait: int) -> None:
        super().__init__(capacity=capacity, prefetch=prefetch)
        if not 1 <= loss_wait < capacity:
            raise ValueError(f"loss_wait must be between 1 and {capacity - 1}, got {loss_wait}")
        self._loss_wait = loss_wait

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """Store ``packet``; return the next frame due, if any (never asks for a PLI)."""
        sequence = packet.sequence_number
        if self._origin is None:
            self._origin = sequence
        if 0 < uint16_add(self._origin, -sequence) < MAX_MISORDER:
            return False, None  # later than its turn: the packets after it have been released
        if uint16_add(sequence, -self._origin) >= self._capacity:
            # A gap longer than the buffer, or a sender that restarted its sequence numbers.
            self.remove(self._capacity)
            self._origin = sequence
        self._packets[sequence % self._capacity] = packet
        return False, self._next_frame()

    def _next_frame(self) -> JitterFrame | None:
        origin = self._origin
        assert origin is not None
        waiting = [
            offset
            for offset in range(self._capacity)
            if self._packets[(origin + offset) % self._capacity] is not None
        ]
        if not waiting or len(waiting) - 1 < self._prefetch:
            return None
        first = waiting[0]
        if first > 0 and len(waiting) < self._loss_wait:
            return None  # the missing packets may still arrive
        self.remove(first)  # the missing packets before the first that arrived: lost
        packet = self._packets[(origin + first) % self._capacity]
        assert packet is not None
        self.remove(1)
        return JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


def shorten_audio_jitter_buffers(
    pc: RTCPeerConnection,
    prefetch: int = DEFAULT_AUDIO_PREFETCH_PACKETS,
    loss_wait: int = DEFAULT_LOSS_WAIT_PACKETS,
) -> int:
    """Give every audio receiver of ``pc`` an :class:`AudioJitterBuffer`.

    aiortc has no public knob for this, so the receiver's private buffer is replaced, as
    pipecat itself does for video. Call it before media flows. Returns how many were changed.
    """
    if not 0 <= prefetch < _AUDIO_CAPACITY:
        raise ValueError(f"prefetch must be between 0 and {_AUDIO_CAPACITY - 1}, got {prefetch}")
    changed = 0
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "audio":
            transceiver.receiver._RTCRtpReceiver__jitter_buffer = AudioJitterBuffer(  # type: ignore[attr-defined]
                capacity=_AUDIO_CAPACITY, prefetch=prefetch, loss_wait=loss_wait
            )
            changed += 1
    return changed
