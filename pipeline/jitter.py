"""A shorter audio jitter buffer for aiortc receivers.

aiortc holds 4 audio packets (80 ms of Opus) before it releases one. The server's receiver has
no playout clock to protect (its audio goes to the VAD, not a speaker), so that prefetch is
pure latency on the end of the user's speech. With a prefetch of one, a packet is released when
the next one arrives (20 ms): aiortc's buffer still walks packets in sequence order, so
reordered packets are put back in order and a lost one is handled exactly as before.
"""

from __future__ import annotations

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer

DEFAULT_AUDIO_PREFETCH_PACKETS = 1
_AUDIO_CAPACITY = 16  # aiortc's own capacity for audio (must be a power of two)


def shorten_audio_jitter_buffers(
    pc: RTCPeerConnection, prefetch: int = DEFAULT_AUDIO_PREFETCH_PACKETS
) -> int:
    """Give every audio receiver of ``pc`` a buffer that prefetches ``prefetch`` packets.

    aiortc has no public knob for this, so the receiver's private buffer is replaced, as
    pipecat itself does for video. Call it before media flows. Returns how many were changed.
    """
    if not 0 <= prefetch < _AUDIO_CAPACITY:
        raise ValueError(f"prefetch must be between 0 and {_AUDIO_CAPACITY - 1}, got {prefetch}")
    changed = 0
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "audio":
            transceiver.receiver._RTCRtpReceiver__jitter_buffer = JitterBuffer(  # type: ignore[attr-defined]
                capacity=_AUDIO_CAPACITY, prefetch=prefetch
            )
            changed += 1
    return changed
