"""A shorter audio jitter buffer for aiortc receivers.

aiortc holds 4 audio packets (80 ms of Opus) before it releases the first one. On a home LAN
the jitter is a few milliseconds, so that prefetch is pure latency: it delays the end of the
user's speech on its way to the VAD. Two packets (40 ms) still absorb Wi-Fi hiccups; later
packets that arrive out of order are reordered by the buffer as before.
"""

from __future__ import annotations

from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer

DEFAULT_AUDIO_PREFETCH_PACKETS = 2
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
