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
from aiortc.jitterbuffer import MAX_MISORDER, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

from services.seams.aiortc_seams import depayloaded, replace_jitter_buffer

# The server's receivers: nothing to play out, so nothing held (see the module doc).
DEFAULT_AUDIO_PREFETCH_PACKETS = 0
# A listener's receiver (the loopback caller): one packet (20 ms), about what a browser's
# adaptive playout buffer settles to on a quiet LAN.
LISTENER_AUDIO_PREFETCH_PACKETS = 1
# Packets that must be waiting behind a missing one before it is given up for lost: a packet
# reordered by less than this still finds its place.
DEFAULT_LOSS_WAIT_PACKETS = 2
_AUDIO_CAPACITY = 16  # aiortc's own capacity for audio (must be a power of two)


class AudioJitterBuffer:
    """Releases audio packets in sequence order, ``prefetch`` packets behind the newest.

    aiortc's receiver calls :meth:`add` once per packet and decodes the frame it returns. The
    packets wait in a ring of ``capacity`` slots, a packet in the slot of its sequence number
    modulo the capacity, the ring starting at the oldest sequence number not yet released: the
    bookkeeping of aiortc's ``JitterBuffer``, kept here rather than inherited so that it does
    not depend on how aiortc names its buffer's state.
    """

    def __init__(self, capacity: int, prefetch: int, loss_wait: int) -> None:
        if capacity <= 0 or capacity & (capacity - 1):
            raise ValueError(f"capacity must be a power of two, got {capacity}")
        if not 1 <= loss_wait < capacity:
            raise ValueError(f"loss_wait must be between 1 and {capacity - 1}, got {loss_wait}")
        self._size = capacity
        self._hold = prefetch
        self._loss_wait = loss_wait
        self._first: int | None = None  # the sequence number of the ring's first slot
        self._slots: list[RtpPacket | None] = [None] * capacity

    @property
    def capacity(self) -> int:
        """Packets the ring holds."""
        return self._size

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """Store ``packet``; return the next frame due, if any (never asks for a PLI)."""
        sequence = packet.sequence_number
        if self._first is None:
            self._first = sequence
        if 0 < uint16_add(self._first, -sequence) < MAX_MISORDER:
            return False, None  # later than its turn: the packets after it have been released
        if uint16_add(sequence, -self._first) >= self._size:
            # A gap longer than the buffer, or a sender that restarted its sequence numbers.
            self._drop(self._size)
            self._first = sequence
        self._slots[sequence % self._size] = packet
        return False, self._next_frame()

    def _drop(self, count: int) -> None:
        """Empty the first ``count`` slots and start the ring after them."""
        first = self._first
        assert first is not None
        for _ in range(count):
            self._slots[first % self._size] = None
            first = uint16_add(first, 1)
        self._first = first

    def _next_frame(self) -> JitterFrame | None:
        origin = self._first
        assert origin is not None
        waiting = [
            offset
            for offset in range(self._size)
            if self._slots[(origin + offset) % self._size] is not None
        ]
        if not waiting or len(waiting) - 1 < self._hold:
            return None
        first = waiting[0]
        if first > 0 and len(waiting) < self._loss_wait:
            return None  # the missing packets may still arrive
        self._drop(first)  # the missing packets before the first that arrived: lost
        packet = self._slots[(origin + first) % self._size]
        assert packet is not None
        self._drop(1)
        return JitterFrame(data=depayloaded(packet), timestamp=packet.timestamp)


def shorten_audio_jitter_buffers(
    pc: RTCPeerConnection,
    prefetch: int = DEFAULT_AUDIO_PREFETCH_PACKETS,
    loss_wait: int = DEFAULT_LOSS_WAIT_PACKETS,
) -> int:
    """Give every audio receiver of ``pc`` an :class:`AudioJitterBuffer`.

    aiortc has no public knob for this and pipecat's ``SmallWebRTCTrack`` has one for its
    screen-share video only, so the receiver's buffer is replaced the way pipecat replaces that
    one (:func:`~services.seams.aiortc_seams.replace_jitter_buffer`). Call it before media
    flows. Returns how many were changed.
    """
    if not 0 <= prefetch < _AUDIO_CAPACITY:
        raise ValueError(f"prefetch must be between 0 and {_AUDIO_CAPACITY - 1}, got {prefetch}")
    changed = 0
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "audio":
            buffer = AudioJitterBuffer(
                capacity=_AUDIO_CAPACITY, prefetch=prefetch, loss_wait=loss_wait
            )
            replace_jitter_buffer(transceiver.receiver, buffer)
            changed += 1
    return changed
