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

:class:`PeerLiveness` is that rule; the host's pipeline applies it here (:class:`PeerWatchdog`),
a joined peer's receive loop in :mod:`pipeline.sessions.party`.
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


class PeerLiveness:
    """Whether a peer is still there: a ping or audio from it within ``peer_timeout_secs``;
    one that gave neither yet has ``connect_timeout_secs`` from ``started`` to begin."""

    def __init__(
        self, *, peer_timeout_secs: float, connect_timeout_secs: float, started: float
    ) -> None:
        self.peer_timeout_secs = peer_timeout_secs
        self.connect_timeout_secs = connect_timeout_secs
        self._started = started
        self._last_alive: float | None = None

    def heard(self, at: float) -> None:
        """The peer showed it is there at ``at`` (monotonic seconds): audio, or its connection."""
        self._last_alive = at if self._last_alive is None else max(self._last_alive, at)

    @property
    def never_connected(self) -> str:
        """Why a peer that never connected is given up."""
        return f"never connected in {self.connect_timeout_secs:.0f} s"

    def verdict(self, connection: SmallWebRTCConnection, now: float) -> str | None:
        """Why the peer counts as gone at ``now``, or None while it is alive (or may still
        connect). Its data-channel pings are read from ``connection`` here."""
        if connection.is_connected():
            self.heard(now)
        if self._last_alive is None:
            return (
                self.never_connected if now - self._started >= self.connect_timeout_secs else None
            )
        if now - self._last_alive >= self.peer_timeout_secs:
            return f"no ping and no audio for {now - self._last_alive:.0f} s"
        return None


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
        self._liveness: PeerLiveness | None = None
        self._task: asyncio.Task[None] | None = None
        self.gone_reason: str | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Note audio arrivals; start watching with the pipeline, stop with it."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            if self._liveness is not None:
                self._liveness.heard(time.monotonic())
        elif isinstance(frame, StartFrame) and self._task is None:
            liveness = PeerLiveness(
                peer_timeout_secs=self._peer_timeout,
                connect_timeout_secs=self._connect_timeout,
                started=time.monotonic(),
            )
            self._liveness = liveness
            self._task = self.create_task(self._watch(liveness), f"{self}::watch")
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

    async def _watch(self, liveness: PeerLiveness) -> None:
        while True:
            await asyncio.sleep(self._interval)
            reason = liveness.verdict(self._connection, time.monotonic())
            if reason is not None:
                break
        self.gone_reason = reason
        logger.warning(f"[{self._session_id}] the peer is gone ({reason}): ending the session")
        try:
            await asyncio.wait_for(self._connection.disconnect(), DISCONNECT_TIMEOUT_SECS)
        except TimeoutError:
            logger.error(f"[{self._session_id}] closing the vanished peer's connection timed out")
