"""Several people in one conversation: the peers who joined a session besides its host.

A person starts a conversation; their peer (the host) is the one whose offer built the
session's pipeline. Others join it from their own devices with the session's id
(``POST /api/offer {"join": id, ...}``, see :mod:`pipeline.sessions.manager`). Each joined peer (a
guest) gets its own WebRTC connection but no pipeline: its microphone is decoded and mixed into
the session's input (:mod:`pipeline.audio.mixer`), and the bot's audio and the messages the
host's page gets are sent to it as well (:mod:`pipeline.webrtc.shared_transport`). Everyone hears
the bot, and the bot hears everyone, as one conversation with one context.

Lifecycle: a guest who hangs up, or vanishes (no ping and no audio for ``peer_timeout_secs``, by
the host's rule, :class:`pipeline.sessions.liveness.PeerLiveness`), just leaves; the
conversation goes on. When the host leaves, the conversation also goes on with the guests, as
people sharing a conversation expect: it ends only when the last person in it has left
(``on_empty``), or when the session ends for any other reason (server shutdown, a failed
pipeline), which disconnects the guests too (:meth:`Party.close`).

Limits: guests do not count against ``max_sessions``, since they add no pipeline and no model
state, only an Opus decoder and encoder each; one conversation takes up to ``max_guests``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, AudioResampler
from loguru import logger
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import RawAudioTrack

from pipeline.audio.mixer import AudioMixer, MixerInput
from pipeline.sessions.liveness import CHECK_INTERVAL_SECS, DISCONNECT_TIMEOUT_SECS, PeerLiveness
from pipeline.webrtc.audio_out_track import audio_sender_track, release_pending_audio
from pipeline.webrtc.jitter import shorten_audio_jitter_buffers
from pipeline.webrtc.opus_sender import send_low_delay_opus

# With no host to pace the bot's audio, a write waits for the first guest to take it, at most
# this long (a stuck guest is dropped by its own liveness check, not by stalling the others).
GUEST_PACE_TIMEOUT_SECS = 1.0


class PartyError(RuntimeError):
    """A join the conversation cannot take, with the HTTP status and reason to answer."""

    def __init__(self, status: int, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class Guest:
    """One joined peer: its connection, its input to the mixer, the track it hears the bot on."""

    def __init__(
        self,
        connection: SmallWebRTCConnection,
        mixer_input: MixerInput,
        *,
        mixer_rate: int,
        out_sample_rate: int,
        session_id: str,
        peer_timeout_secs: float,
        connect_timeout_secs: float,
        on_closed: Callable[[Guest], Awaitable[None]],
    ) -> None:
        """Watch ``connection``; ``on_closed`` runs once its peer connection has closed."""
        self.connection = connection
        self.pc_id = connection.pc_id
        self._input = mixer_input
        self._mixer_rate = mixer_rate
        self._out_rate = out_sample_rate
        self._session_id = session_id
        self._peer_timeout = peer_timeout_secs
        self._connect_timeout = connect_timeout_secs
        self._on_closed = on_closed
        self._connected = asyncio.Event()
        self._in_track: Any = None
        self._out_track: RawAudioTrack | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.gone_reason: str | None = None
        # aiortc's 80 ms receive prefetch would only delay this peer's voice in the mix.
        shorten_audio_jitter_buffers(connection.pc)
        # They hear the bot's answers as soon as the host does.
        send_low_delay_opus(connection.pc)

        @connection.event_handler("connected")
        async def on_connected(_connection: SmallWebRTCConnection) -> None:
            self._attach_tracks()

        @connection.event_handler("closed")
        async def on_closed_event(_connection: SmallWebRTCConnection) -> None:
            await self._on_closed(self)

    async def start(self) -> None:
        """Begin watching and receiving; the connection reports "connected" once ICE is up."""
        self._task = asyncio.create_task(self._run(), name=f"guest-{self.pc_id[-8:]}")
        # pipecat's connection reports "connected", and counts pings, only once this was called.
        await self.connection.connect()

    def write_audio(self, audio: bytes) -> asyncio.Future[bool] | None:
        """Queue the bot's audio (output rate, whole 10 ms) for this peer; None if it can't take it.

        The future completes when the peer's sender has taken the audio.
        """
        track = self._out_track
        if track is None or self._closed or not self.connection.is_connected():
            return None
        try:
            future: asyncio.Future[bool] = track.add_audio_bytes(audio)
        except ValueError:
            return None  # not whole 10 ms chunks: pipecat's output never writes such audio
        return future

    def send_message(self, message: Any) -> None:
        """Send a data-channel message (RTVI) to this peer."""
        if not self._closed:
            self.connection.send_app_message(message)

    async def close(self) -> None:
        """Stop receiving, release queued bot audio, disconnect. Idempotent."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            # A guest found gone is being disconnected by its own task: let that finish.
            if self.gone_reason is None:
                task.cancel()
            await asyncio.wait([task], timeout=DISCONNECT_TIMEOUT_SECS)
        if self._out_track is not None:
            release_pending_audio(self._out_track)
        if self.connection.pc.connectionState != "closed":
            try:
                await asyncio.wait_for(self.connection.disconnect(), DISCONNECT_TIMEOUT_SECS)
            except TimeoutError:
                logger.error(f"[{self._session_id}] closing a joined peer's connection timed out")

    def _attach_tracks(self) -> None:
        if self._connected.is_set() or self._closed:
            return
        self._in_track = self.connection.audio_input_track()
        self._out_track = RawAudioTrack(sample_rate=self._out_rate)
        self.connection.replace_audio_track(self._out_track)
        self._connected.set()

    async def _run(self) -> None:
        liveness = PeerLiveness(
            peer_timeout_secs=self._peer_timeout,
            connect_timeout_secs=self._connect_timeout,
            started=time.monotonic(),
        )
        try:
            await asyncio.wait_for(self._connected.wait(), self._connect_timeout)
        except TimeoutError:
            reason: str | None = liveness.never_connected
        else:
            liveness.heard(time.monotonic())
            reason = await self._receive(liveness)
        if reason is None:
            return  # the connection closed: on_closed takes it from here
        self.gone_reason = reason
        logger.warning(f"[{self._session_id}] a joined peer is gone ({reason})")
        try:
            await asyncio.wait_for(self.connection.disconnect(), DISCONNECT_TIMEOUT_SECS)
        except TimeoutError:
            logger.error(f"[{self._session_id}] closing a vanished joined peer timed out")

    async def _receive(self, liveness: PeerLiveness) -> str | None:
        """Feed the peer's microphone to the mixer until it closes (None) or vanishes (why)."""
        resampler = AudioResampler("s16", "mono", self._mixer_rate)
        while True:
            frame = None
            if self._in_track is None:
                await asyncio.sleep(CHECK_INTERVAL_SECS)  # a peer offering no microphone
            else:
                try:
                    frame = await asyncio.wait_for(self._in_track.recv(), CHECK_INTERVAL_SECS)
                except TimeoutError:
                    pass
                except MediaStreamError:
                    return None
            now = time.monotonic()
            if isinstance(frame, AudioFrame):
                liveness.heard(now)
                for out in resampler.resample(frame):
                    self._input.write(out.to_ndarray().astype(np.int16).tobytes())
            reason = liveness.verdict(self.connection, now)
            if reason is not None:
                return reason


class Party:
    """The guests of one session, its mixer, and who is still in the conversation."""

    def __init__(
        self,
        session_id: str,
        *,
        max_guests: int,
        peer_timeout_secs: float,
        connect_timeout_secs: float,
        sample_rate: int = 16000,
    ) -> None:
        """``sample_rate``: the session's input rate, at which guests' audio is mixed."""
        self.session_id = session_id
        self.mixer = AudioMixer(sample_rate)
        self._max_guests = max_guests
        self._peer_timeout = peer_timeout_secs
        self._connect_timeout = connect_timeout_secs
        self._guests: dict[str, Guest] = {}
        self._reserved = 0
        self._host_track: object | None = None
        self._out_sample_rate: int | None = None
        self._on_empty: Callable[[], Awaitable[None]] | None = None
        self.host_present = True
        self._closed = False

    def open(self, *, out_sample_rate: int, on_empty: Callable[[], Awaitable[None]]) -> None:
        """Take guests: the session's pipeline runs :attr:`mixer` and fans its output out here.

        A session that never calls this (a pipeline without the mixer) refuses every join.
        ``on_empty`` ends the session; it runs when the last person in it has left.
        """
        self._out_sample_rate = out_sample_rate
        self._on_empty = on_empty

    @property
    def guests(self) -> int:
        """Peers joined now."""
        return len(self._guests)

    @property
    def closed(self) -> bool:
        """The conversation has ended."""
        return self._closed

    def has_peer(self, pc_id: str) -> bool:
        """Whether ``pc_id`` is one of this conversation's guests."""
        return pc_id in self._guests

    def reserve(self) -> None:
        """Hold a place for a peer whose join is being answered (raises PartyError if none).

        Every reserve() is followed by one :meth:`unreserve`, whether the peer joined or not.
        """
        if self._closed:
            raise PartyError(404, "that conversation has ended", reason="unknown_session")
        if self._out_sample_rate is None:
            raise PartyError(409, "this session cannot be joined", reason="join_unsupported")
        if self._max_guests == 0:
            raise PartyError(
                409, "joining a conversation is turned off on this server", reason="join_off"
            )
        if len(self._guests) + self._reserved >= self._max_guests:
            raise PartyError(
                503,
                f"this conversation is full ({self._max_guests} people joined already)",
                reason="conversation_full",
            )
        self._reserved += 1

    def unreserve(self) -> None:
        """Give back a place taken by :meth:`reserve`."""
        self._reserved = max(0, self._reserved - 1)

    async def add_guest(self, connection: SmallWebRTCConnection) -> Guest:
        """Let a newly answered peer into the conversation (after :meth:`reserve`)."""
        if self._closed or self._out_sample_rate is None:
            raise PartyError(410, "the conversation ended while joining", reason="gone")
        guest = Guest(
            connection,
            self.mixer.add_input(connection.pc_id),
            mixer_rate=self.mixer.sample_rate,
            out_sample_rate=self._out_sample_rate,
            session_id=self.session_id,
            peer_timeout_secs=self._peer_timeout,
            connect_timeout_secs=self._connect_timeout,
            on_closed=self._guest_closed,
        )
        self._guests[guest.pc_id] = guest
        await guest.start()
        logger.info(f"[{self.session_id}] someone joined the conversation ({self.guests} joined)")
        return guest

    def send_audio(self, audio: bytes) -> list[asyncio.Future[bool]]:
        """Queue the bot's audio for every guest that can take it; their write futures."""
        futures = [guest.write_audio(audio) for guest in self._guests.values()]
        return [future for future in futures if future is not None]

    def send_message(self, message: Any) -> None:
        """Send a data-channel message to every guest."""
        for guest in self._guests.values():
            guest.send_message(message)

    def host_connected(self, connection: SmallWebRTCConnection) -> None:
        """The host's peer is (re)connected: note the track it hears the bot on.

        Its sender lets go of the track as the connection closes, so it is noted now.
        """
        self._host_track = audio_sender_track(connection)

    async def host_left(self) -> bool:
        """The host's peer has gone; True if the conversation goes on with its guests."""
        self.host_present = False
        if self._host_track is not None:
            # A write queued for the host would never complete and hold up the output for
            # everyone until pipecat gives the whole output up.
            release_pending_audio(self._host_track)
            self._host_track = None
        if self._guests and not self._closed:
            logger.info(
                f"[{self.session_id}] the host left; the conversation goes on with "
                f"{self.guests} joined"
            )
            return True
        return False

    async def close(self) -> None:
        """The session is over: disconnect every guest and take no more. Idempotent."""
        if self._closed:
            return
        self._closed = True
        guests = list(self._guests.values())
        self._guests.clear()
        for guest in guests:
            self.mixer.remove_input(guest.pc_id)
        await asyncio.gather(*(guest.close() for guest in guests))

    async def _guest_closed(self, guest: Guest) -> None:
        if self._guests.pop(guest.pc_id, None) is None:
            return  # closed by close(), which does the rest
        self.mixer.remove_input(guest.pc_id)
        await guest.close()
        logger.info(f"[{self.session_id}] a joined peer left ({self.guests} still joined)")
        if not self.host_present and not self._guests and self._on_empty is not None:
            logger.info(f"[{self.session_id}] everyone left the conversation")
            await self._on_empty()
