"""The WebRTC edge, with aiortc and aioice adjusted: jitter buffer, Opus sender, packet time, SDP
validation, ICE policy and own addresses, the output track, the shared transport, signalling."""
