"""Ends the session of a peer that vanished without hanging up (tab killed, Wi-Fi lost).

A peer that closes its connection properly ends its session at once. One that simply stops
(no DTLS close, no SCTP abort) is noticed by aiortc only when its ICE consent checks have failed
six times, 25-35 s later, and until then its pipeline, models' buffers and sockets stay
allocated. The signals a live browser peer gives are both public: pipecat's
``SmallWebRTCConnection.is_connected()`` (a data-channel ping within the last 3 s; browsers ping
every second) and the microphone's audio frames (50 a second, silence when muted). A peer that
gave neither for ``peer_timeout_secs`` is disconnected, which closes its peer connection and
ends its pipeline through the transport's usual "client disconnected" path. A peer that never
connected at all is given up after ``connect_timeout_secs``.
"""

from __future__ import annotations

import asyncio
import time

from loguru import logger
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection

CHECK_INTERVAL_SECS = 1.0
DISCONNECT_TIMEOUT_SECS = 5.0


class PeerWatchdog(FrameProcessor):
    """Watches a peer's pings and audio; disconnects it once both stopped for too long."""

    def __init__(
        self,
        connection: SmallWebRTCConnection,
        session_id: str,
        *,
        peer_timeout_secs: float,
        connect_timeout_secs: float,
        check_interval_secs: float = CHECK_INTERVAL_SECS,
    ) -> None:
        super().__init__()
        self._connection = connection
        self._session_id = session_id
        self._peer_timeout = peer_timeout_secs
        self._connect_timeout = connect_timeout_secs
        self._interval = check_interval_secs
        self._last_audio: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.gone_reason: str | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Note audio arrivals; start watching with the pipeline, stop with it."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self._last_audio = time.monotonic()
        elif isinstance(frame, StartFrame) and self._task is None:
            self._task = self.create_task(self._watch(), f"{self}::watch")
        elif isinstance(frame, (EndFrame, CancelFrame)):
            await self._stop()
        await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        """Stop watching."""
        await super().cleanup()
        await self._stop()

    async def _stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            await self.cancel_task(task)

    def _verdict(self, started: float, last_alive: float | None, now: float) -> str | None:
        """Why the peer counts as gone, or None while it is alive (or may still connect)."""
        if last_alive is None:
            if now - started >= self._connect_timeout:
                return f"never connected in {self._connect_timeout:.0f} s"
            return None
        if now - last_alive >= self._peer_timeout:
            return f"no ping and no audio for {now - last_alive:.0f} s"
        return None

    async def _watch(self) -> None:
        started = time.monotonic()
        last_alive: float | None = None
        while True:
            await asyncio.sleep(self._interval)
            now = time.monotonic()
            if self._connection.is_connected():
                last_alive = now
            if self._last_audio is not None:
                last_alive = max(last_alive or self._last_audio, self._last_audio)
            reason = self._verdict(started, last_alive, now)
            if reason is not None:
                break
        self.gone_reason = reason
        logger.warning(f"[{self._session_id}] the peer is gone ({reason}): ending the session")
        try:
            await asyncio.wait_for(self._connection.disconnect(), DISCONNECT_TIMEOUT_SECS)
        except TimeoutError:
            logger.error(f"[{self._session_id}] closing the vanished peer's connection timed out")
