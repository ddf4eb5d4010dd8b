"""The track a peer hears the bot on, and what to do with audio queued on it for nobody."""

from __future__ import annotations

import asyncio

from loguru import logger
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection

from services.seams.pipecat_seams import take_pending_audio_writes


def audio_sender_track(connection: SmallWebRTCConnection) -> object | None:
    """The track the bot's audio is sent from (transceiver 0), if any."""
    transceivers = connection.pc.getTransceivers()
    return transceivers[0].sender.track if transceivers else None


def release_pending_audio(track: object) -> int:
    """Complete the writes still queued on an output track that no peer will read again.

    pipecat's output transport awaits every audio write until the peer connection's sender has
    consumed it. When a peer's connection closes with bot audio still queued (a reconnect with
    ``restart_pc`` during an answer, or a person leaving a conversation others go on with), that
    write never completes: the output waits ``audio_out_write_timeout_secs`` (10 s), then writes
    the transport off for good and nobody hears the bot again. pipecat has no public way to drop
    the writes (:func:`~services.seams.pipecat_seams.take_pending_audio_writes`).
    Returns the number of writes released.
    """
    released = 0
    for future in take_pending_audio_writes(track):
        if isinstance(future, asyncio.Future) and not future.done():
            future.set_result(True)
            released += 1
    if released:
        logger.debug(f"released {released} audio writes queued for a closed peer connection")
    return released
