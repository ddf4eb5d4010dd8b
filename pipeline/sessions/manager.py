"""Peers and their pipelines: who gets a session, reconnects, ``max_sessions``, teardown.

An offer is validated (:mod:`pipeline.webrtc.sdp_check`) before pipecat's request handler sees it,
so a malformed one is refused with 400 and no peer connection is ever made for it. A new peer
gets a fresh pipeline; an offer naming a live peer's ``pc_id`` renegotiates that peer (with
``restart_pc`` pipecat replaces its ``RTCPeerConnection`` and gives it a new id) and keeps its
one pipeline.

An offer with ``"join": <session id>`` joins that session's conversation instead of starting
one (see :mod:`pipeline.sessions.party`): the new peer is answered like any other, but gets no
pipeline; its audio is mixed into the session's and it hears the bot. Every answer carries its
``session_id``, which is what another device joins with.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from aiortc.exceptions import InvalidAccessError, InvalidStateError
from fastapi import HTTPException
from loguru import logger
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    IceCandidate,
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
)

from pipeline.ops.memory import collect_session_garbage, release_free_memory
from pipeline.runtime import AgentRuntime
from pipeline.session import build_worker, run_session
from pipeline.sessions.party import Party, PartyError
from pipeline.webrtc.audio_out_track import audio_sender_track, release_pending_audio
from pipeline.webrtc.packet_time import with_packet_time
from pipeline.webrtc.sdp_check import SDPError, check_offer
from services.seams.pipecat_seams import PeerMapRequestHandler

# Sessions last minutes; a client told to come back sooner would only be refused again.
BUSY_RETRY_AFTER_SECS = 10
LOADING_RETRY_AFTER_SECS = 5
PATCH_TIMEOUT_SECS = 5.0
CLOSE_TIMEOUT_SECS = 10.0
# What a session id looks like (ours are 12 hex digits; pipecat's /start hands out the same).
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# How aiortc and aioice refuse what a peer sent: their SDP and candidate parsers raise plain
# assertion, key, index and value errors, setRemoteDescription its own two.
_PEER_INPUT_ERRORS = (
    AssertionError,
    IndexError,
    KeyError,
    ValueError,
    InvalidAccessError,
    InvalidStateError,
)
_WEBRTC_PACKAGES = ("aiortc", "aioice")


def refuses_peer_input(error: BaseException) -> bool:
    """Whether aiortc or aioice raised ``error`` refusing an offer or candidate the peer sent.

    Anything else that escapes pipecat's handler (its own errors, ours, a bug) is the server's
    fault, not the request's.
    """
    if not isinstance(error, _PEER_INPUT_ERRORS):
        return False
    frame = error.__traceback__
    while frame is not None:
        module = str(frame.tb_frame.f_globals.get("__name__", ""))
        if module.split(".", 1)[0] in _WEBRTC_PACKAGES:
            return True
        frame = frame.tb_next
    return False


class OfferError(ValueError):
    """A signalling request the server refuses, with the HTTP status to answer."""

    def __init__(
        self, status: int, message: str, *, reason: str, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


class WebRequestHandler(Protocol):
    """The part of pipecat's ``SmallWebRTCRequestHandler`` the session manager uses."""

    async def handle_web_request(
        self,
        request: SmallWebRTCRequest,
        webrtc_connection_callback: Callable[[SmallWebRTCConnection], Awaitable[None]],
    ) -> Any:
        """Create or renegotiate a peer for an offer; returns the answer."""

    async def handle_patch_request(self, request: SmallWebRTCPatchRequest) -> None:
        """Add trickled ICE candidates."""

    async def close(self) -> None:
        """Close every peer."""

    @property
    def peer_count(self) -> int:
        """Peer connections held now."""


class PeerRequestHandler(PeerMapRequestHandler):
    """pipecat's request handler, holding exactly one entry per live peer, and none it failed.

    pipecat builds a new peer's ``RTCPeerConnection`` before parsing the offer and, when aiortc
    then raises, drops it unclosed. It files a restarted peer under its new ``pc_id`` but keeps
    the old one too, and its "closed" handler removes only the newest: a tab reconnecting all
    day would keep every connection it ever had. Here a new peer is answered the way pipecat
    does it (multiple-connection mode, no ESP32 munging), closing the connection when answering
    fails (:meth:`~services.seams.pipecat_seams.PeerMapRequestHandler.answer_new_peer`); a
    renegotiation goes through pipecat, then the stale id is dropped, and a failed one
    closes the peer (its session ends; the client calls again). On a restart, audio already
    written to the replaced connection is released (see :func:`release_pending_audio`).
    """

    async def handle_web_request(
        self,
        request: SmallWebRTCRequest,
        webrtc_connection_callback: Callable[[Any], Awaitable[None]],
    ) -> dict[str, str] | None:
        """Answer a new peer, or renegotiate a known one."""
        existing = self.peers.get(request.pc_id) if request.pc_id else None
        if existing is None:
            return await self.answer_new_peer(request, webrtc_connection_callback)
        abandoned = audio_sender_track(existing) if request.restart_pc else None
        try:
            answer = await super().handle_web_request(request, webrtc_connection_callback)
        except Exception:
            self.peers.pop(existing.pc_id, None)
            if request.pc_id:
                self.peers.pop(request.pc_id, None)
            await existing.disconnect()
            raise
        finally:
            if abandoned is not None:
                release_pending_audio(abandoned)
        if answer is not None and request.pc_id and request.pc_id != answer["pc_id"]:
            self.peers.pop(request.pc_id, None)
        return answer

    @property
    def peer_count(self) -> int:
        """Peer connections held now."""
        return len(self.peers)

    def peer(self, pc_id: str) -> SmallWebRTCConnection | None:
        """The connection held for ``pc_id``, if any."""
        return self.peers.get(pc_id)


@dataclass(frozen=True)
class _Session:
    """A running pipeline, the id its log lines carry, and who joined its conversation."""

    task: asyncio.Task[None]
    session_id: str
    party: Party


SessionStarter = Callable[
    [SmallWebRTCConnection, AgentRuntime, str, Party], Coroutine[Any, Any, None]
]
"""Builds a peer's session (raising if it cannot) and returns the coroutine that runs it.

A session that can be joined calls ``Party.open`` and runs the party's mixer and output; one
that does not is never joined.
"""


def start_pipeline(
    connection: SmallWebRTCConnection, runtime: AgentRuntime, session_id: str, party: Party
) -> Coroutine[Any, Any, None]:
    """The voice pipeline for one peer (see :mod:`pipeline.session`)."""
    worker = build_worker(connection, runtime, session_id, party)
    return run_session(worker, session_id, runtime.metrics)


class SessionManager:
    """Creates peers and their pipelines, enforces ``max_sessions``, tears all down on close."""

    def __init__(
        self,
        runtime: AgentRuntime,
        handler: WebRequestHandler | None = None,
        *,
        start_session: SessionStarter = start_pipeline,
    ) -> None:
        self._runtime = runtime
        # No ICE servers: host candidates are right on a LAN and a STUN lookup would both leave
        # the house and stall the answer while aiortc waits for it.
        self._handler: WebRequestHandler = handler or PeerRequestHandler(ice_servers=[])
        self._start_session = start_session
        # Each running session under its peer's current pc_id.
        self._sessions: dict[str, _Session] = {}
        # New peers whose offer is being answered: they count against max_sessions already, so
        # concurrent offers cannot all pass the check before any of them is registered.
        self._reserved = 0
        # Ended sessions still giving their memory back (see _run_then_release).
        self._releasing: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def active(self) -> int:
        """Sessions whose pipeline is still running or whose memory is still being released."""
        running = sum(1 for session in self._sessions.values() if not session.task.done())
        return running + len(self._releasing)

    @property
    def guests(self) -> int:
        """Peers that joined a running session's conversation."""
        return sum(s.party.guests for s in self._sessions.values() if not s.task.done())

    @property
    def handler(self) -> WebRequestHandler:
        """The request handler holding the peer connections."""
        return self._handler

    async def offer(self, body: Any, session_id: str | None = None) -> dict[str, str]:
        """Answer an SDP offer; a new peer gets a fresh pipeline, a known one renegotiates."""
        try:
            return await self._offer(body, session_id)
        except OfferError as error:
            self._runtime.metrics.session_refused(error.reason)
            raise

    async def _offer(self, body: Any, session_id: str | None) -> dict[str, str]:
        request, join = _parse_offer(body)
        if self._closed:
            raise OfferError(503, "the agent is shutting down", reason="closing")
        if not self._runtime.ready:
            raise OfferError(
                503,
                "the agent is still loading its models",
                reason="loading",
                retry_after=LOADING_RETRY_AFTER_SECS,
            )
        if join is not None:
            return await self._join(request, join)
        if request.pc_id is not None and self._guest_party(request.pc_id) is not None:
            raise OfferError(
                409,
                "that peer joined a conversation: join it again instead of reconnecting",
                reason="guest_reconnect",
            )
        known = request.pc_id is not None and request.pc_id in self._sessions
        if known:
            return await self._renegotiate(request)
        if self.active + self._reserved >= self._runtime.config.server.max_sessions:
            # Refused before pipecat's handler: no peer connection is created.
            raise OfferError(
                503,
                "the agent is busy: too many sessions, try again later",
                reason="busy",
                retry_after=BUSY_RETRY_AFTER_SECS,
            )
        return await self._answer_new_peer(request, session_id)

    async def _renegotiate(self, request: SmallWebRTCRequest) -> dict[str, str]:
        """The same peer again (a reconnecting tab): one pipeline, filed under its new id."""
        old_id = request.pc_id
        assert old_id is not None
        sid = self._sessions[old_id].session_id
        gone: list[Exception] = []

        async def on_connection(connection: SmallWebRTCConnection) -> None:
            # pipecat calls back only when it no longer knows the peer (it closed meanwhile):
            # refuse rather than leave a connection without a pipeline.
            gone.append(RuntimeError("the peer closed while reconnecting; call again"))
            await connection.disconnect()

        answer = await self._handle(request, on_connection, sid)
        if gone:
            raise OfferError(410, str(gone[0]), reason="gone")
        new_id = answer.get("pc_id", old_id)
        session = self._sessions.pop(old_id, None)
        if session is not None and not session.task.done():
            self._sessions[new_id] = session
        logger.info(
            f"[{sid}] peer renegotiated" + (" as a new connection" if new_id != old_id else "")
        )
        return {**answer, "session_id": sid}

    def _guest_party(self, pc_id: str) -> Party | None:
        """The party of the running session ``pc_id`` joined, if it is a guest."""
        for session in self._sessions.values():
            if session.party.has_peer(pc_id):
                return session.party
        return None

    async def _join(self, request: SmallWebRTCRequest, sid: str) -> dict[str, str]:
        """A new peer joining the running session ``sid``; it gets no pipeline of its own."""
        if request.pc_id is not None:
            raise OfferError(
                400, "a join offer starts a new peer: leave out 'pc_id'", reason="invalid_offer"
            )
        session = next(
            (s for s in self._sessions.values() if s.session_id == sid and not s.task.done()),
            None,
        )
        # Refused before pipecat's handler: no peer connection is created.
        if session is None:
            raise OfferError(
                404,
                "no such conversation: it has ended, or the join link is wrong",
                reason="unknown_session",
            )
        party = session.party
        try:
            party.reserve()
        except PartyError as error:
            raise OfferError(
                error.status,
                str(error),
                reason=error.reason,
                retry_after=BUSY_RETRY_AFTER_SECS if error.status == 503 else None,
            ) from None
        refused: list[Exception] = []

        async def on_connection(connection: SmallWebRTCConnection) -> None:
            try:
                await party.add_guest(connection)
            except Exception as error:  # noqa: BLE001 - reported to the client below
                refused.append(error)
                await connection.disconnect()

        try:
            answer = await self._handle(request, on_connection, sid)
        finally:
            party.unreserve()
        if refused:
            failure = refused[0]
            if isinstance(failure, PartyError):
                raise OfferError(failure.status, str(failure), reason=failure.reason)
            logger.error(f"[{sid}] could not add a joined peer: {failure!r}")
            raise OfferError(500, f"could not join: {failure}", reason="session_error")
        return {**answer, "session_id": sid}

    async def _answer_new_peer(
        self, request: SmallWebRTCRequest, session_id: str | None
    ) -> dict[str, str]:
        sid = session_id or uuid.uuid4().hex[:12]
        # The reservation turns into a running session (counted by `active`) or is given back.
        held = [True]
        self._reserved += 1

        def release() -> None:
            if held[0]:
                held[0] = False
                self._reserved -= 1

        build_errors: list[Exception] = []

        server = self._runtime.config.server
        party = Party(
            sid,
            max_guests=server.max_guests,
            peer_timeout_secs=server.peer_timeout_secs,
            connect_timeout_secs=server.connect_timeout_secs,
        )

        async def on_connection(connection: SmallWebRTCConnection) -> None:
            try:
                session = self._start_session(connection, self._runtime, sid, party)
            except Exception as error:  # noqa: BLE001 - reported to the client below
                # pipecat's handler only logs callback errors; keep it to refuse the offer.
                build_errors.append(error)
                await connection.disconnect()
                return
            task = asyncio.create_task(
                self._run_then_release(session, party), name=f"session-{sid}"
            )
            self._sessions[connection.pc_id] = _Session(task, sid, party)
            release()
            task.add_done_callback(self._forget)

        try:
            answer = await self._handle(request, on_connection, sid)
        finally:
            release()
        if build_errors:
            logger.error(f"[{sid}] could not build the session: {build_errors[0]!r}")
            raise OfferError(
                500, f"could not start a session: {build_errors[0]}", reason="session_error"
            )
        return {**answer, "session_id": sid}

    async def _handle(
        self,
        request: SmallWebRTCRequest,
        on_connection: Callable[[SmallWebRTCConnection], Awaitable[None]],
        sid: str,
    ) -> dict[str, str]:
        """pipecat's handler under a timeout, its errors mapped to HTTP statuses."""
        timeout = self._runtime.config.server.offer_timeout_secs
        try:
            answer = await asyncio.wait_for(
                self._handler.handle_web_request(request, on_connection), timeout
            )
        except HTTPException as error:
            raise OfferError(error.status_code, str(error.detail), reason="rejected") from error
        except TimeoutError as error:
            raise OfferError(504, "timed out answering the offer", reason="timeout") from error
        except Exception as error:
            # An offer that passed sdp_check can still be one aiortc refuses; anything else
            # is a fault of this server, and must read as one in the log and to the client.
            if refuses_peer_input(error):
                logger.debug(f"[{sid}] rejected offer: {type(error).__name__}: {error}")
                raise OfferError(
                    400, f"invalid SDP offer ({type(error).__name__})", reason="invalid_offer"
                ) from error
            logger.opt(exception=error).error(f"[{sid}] answering the offer failed")
            raise OfferError(
                500, "the server failed to answer the offer", reason="session_error"
            ) from error
        if answer is None:
            raise OfferError(500, "no SDP answer was produced", reason="session_error")
        answer = dict(answer)
        packet_ms = self._runtime.config.server.microphone_packet_ms
        if packet_ms is not None and self._runtime.config.variant == "tuned":
            # pipecat's stock answer leaves the caller's microphone at its default, 20 ms.
            answer["sdp"] = with_packet_time(answer["sdp"], packet_ms)
        return answer

    async def patch(self, body: Any) -> None:
        """Add trickled ICE candidates to an existing peer."""
        if not isinstance(body, dict) or not isinstance(body.get("pc_id"), str):
            raise OfferError(400, "expected JSON {pc_id, candidates}", reason="invalid_patch")
        try:
            candidates = [IceCandidate(**c) for c in body.get("candidates") or []]
        except (TypeError, ValueError) as error:
            raise OfferError(
                400, f"invalid ICE candidate ({type(error).__name__})", reason="invalid_patch"
            ) from error
        request = SmallWebRTCPatchRequest(pc_id=body["pc_id"], candidates=candidates)
        try:
            await asyncio.wait_for(self._handler.handle_patch_request(request), PATCH_TIMEOUT_SECS)
        except HTTPException as error:
            raise OfferError(
                error.status_code, str(error.detail), reason="invalid_patch"
            ) from error
        except TimeoutError as error:
            raise OfferError(504, "timed out adding the candidates", reason="timeout") from error
        except Exception as error:
            if refuses_peer_input(error):
                raise OfferError(
                    400, f"invalid ICE candidate ({type(error).__name__})", reason="invalid_patch"
                ) from error
            logger.opt(exception=error).error(f"adding ICE candidates to {request.pc_id} failed")
            raise OfferError(
                500, "the server failed to add the candidates", reason="session_error"
            ) from error

    async def _run_then_release(self, session: Coroutine[Any, Any, None], party: Party) -> None:
        """Run a session, then see its guests out; free its garbage and give the memory back
        (see pipeline.ops.memory)."""
        try:
            await session
        finally:
            await party.close()
            # The party reaches the whole pipeline (its mixer is one of the processors): while
            # this manager and this frame hold it, a collection frees none of the session, and
            # its garbage would wait for some later collection, after the malloc_trim.
            task = asyncio.current_task()
            assert task is not None
            self._releasing.add(task)
            self._forget(task)
            del session, party
            try:
                collect_session_garbage()
                await asyncio.to_thread(release_free_memory)
            finally:
                self._releasing.discard(task)

    def _forget(self, task: asyncio.Task[None]) -> None:
        for pc_id in [key for key, value in self._sessions.items() if value.task is task]:
            del self._sessions[pc_id]

    async def close(self) -> None:
        """Disconnect every peer and wait for the pipelines to finish. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.wait_for(self._handler.close(), CLOSE_TIMEOUT_SECS)
        finally:
            tasks = [session.task for session in self._sessions.values()]
            tasks += self._releasing
            for task in tasks:
                task.cancel()
            if tasks:
                _done, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_SECS)
                for task in pending:
                    logger.error(
                        f"{task.get_name()} did not finish {CLOSE_TIMEOUT_SECS:g} s after cancel"
                    )


def _parse_offer(body: Any) -> tuple[SmallWebRTCRequest, str | None]:
    """Validate an offer's JSON shape and its SDP before any WebRTC object is created.

    Returns the request and the session id it asks to join, if any.
    """

    def invalid(message: str) -> OfferError:
        return OfferError(400, message, reason="invalid_offer")

    if not isinstance(body, dict):
        raise invalid("expected a JSON object {sdp, type, pc_id?, restart_pc?, join?}")
    sdp, kind = body.get("sdp"), body.get("type")
    if not isinstance(sdp, str) or not sdp.strip():
        raise invalid("missing 'sdp'")
    if kind != "offer":
        raise invalid("'type' must be 'offer'")
    pc_id = body.get("pc_id")
    if pc_id is not None and not isinstance(pc_id, str):
        raise invalid("'pc_id' must be a string")
    restart = body.get("restart_pc")
    if restart is not None and not isinstance(restart, bool):
        raise invalid("'restart_pc' must be true or false")
    join = body.get("join")
    if join is not None and not (isinstance(join, str) and SESSION_ID.fullmatch(join)):
        raise invalid("'join' must be a session id (letters, digits, '-' or '_')")
    try:
        check_offer(sdp)
    except SDPError as error:
        raise invalid(f"invalid SDP offer: {error}") from None
    return SmallWebRTCRequest(sdp=sdp, type=kind, pc_id=pc_id, restart_pc=restart), join
