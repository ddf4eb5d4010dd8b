"""pipecat's internals that jetvoice relies on where pipecat (1.14) offers no public way: the
SmallWebRTC request handler's peer map, the transport's output processor, the writes queued on
an output track, and the LLM service's teardown hook for function handlers.

Each name is checked against the pinned version by ``tests/unit/test_library_seams.py``; a
method copied from pipecat is checked there by the hash of its original.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)
from pipecat.transports.smallwebrtc.transport import (
    RawAudioTrack,
    SmallWebRTCClient,
    SmallWebRTCOutputTransport,
    SmallWebRTCTransport,
)


class PeerMapRequestHandler(SmallWebRTCRequestHandler):
    """pipecat's request handler with its peer map, and its answer to a new peer, public.

    pipecat keeps the live peers in a private map that only its own ``handle_web_request`` and
    "closed" handler maintain, and answers a new peer inside that method; a subclass that must
    keep the map right (drop stale and failed peers) has no other way to reach either.
    """

    @property
    def peers(self) -> dict[str, SmallWebRTCConnection]:
        """The live map of peer connections by ``pc_id`` that pipecat answers and patches from:
        changing it changes which peers pipecat knows."""
        return self._pcs_map

    async def answer_new_peer(
        self,
        request: SmallWebRTCRequest,
        webrtc_connection_callback: Callable[[Any], Awaitable[None]],
    ) -> dict[str, str] | None:
        """Answer an offer from a peer not in :attr:`peers`, as ``handle_web_request`` does it
        (multiple-connection mode, no ESP32 munging; its new-peer branch, copied), except that
        the connection is closed when answering fails and is not kept when the callback closed
        it."""
        # pipecat builds the connection with the handler's ICE servers (no public accessor).
        connection = SmallWebRTCConnection(ice_servers=self._ice_servers)
        try:
            await connection.initialize(sdp=request.sdp, type=request.type)
        except BaseException:
            await connection.disconnect()
            raise

        @connection.event_handler("closed")
        async def forget(closed: SmallWebRTCConnection) -> None:
            logger.debug(f"Discarding peer connection for pc_id: {closed.pc_id}")
            self._pcs_map.pop(closed.pc_id, None)

        try:
            await webrtc_connection_callback(connection)
        except Exception as error:  # noqa: BLE001 - pipecat's contract: logged, not raised
            logger.error(f"webrtc_connection_callback failed for {connection.pc_id}: {error}")
        answer = connection.get_answer()
        if answer is None:
            await connection.disconnect()
            raise RuntimeError("SmallWebRTC connection produced no SDP answer")
        # A peer the callback already closed (its session could not be built) is not kept.
        if connection.pc.connectionState != "closed":
            self._pcs_map[answer["pc_id"]] = connection
        return dict(answer)


class OutputBuildingTransport(SmallWebRTCTransport):
    """pipecat's SmallWebRTC transport whose output processor is built by :meth:`build_output`.

    pipecat's transport has no parameter for the output class: its ``output()`` builds a
    ``SmallWebRTCOutputTransport`` from private state. Here ``output()`` is that method, copied,
    with the constructor call replaced by the hook.
    """

    def build_output(
        self, client: SmallWebRTCClient, params: TransportParams, name: str | None
    ) -> SmallWebRTCOutputTransport:
        """The output processor, built once: pipecat's own unless overridden."""
        return SmallWebRTCOutputTransport(client, params, name=name)

    def output(self) -> SmallWebRTCOutputTransport:
        """The output processor (pipecat's ``output()``, building it with :meth:`build_output`)."""
        if not self._output:
            self._output = self.build_output(self._client, self._params, self._output_name)
        return self._output


def take_pending_audio_writes(track: object) -> list[object]:
    """Empty the writes queued on pipecat's output ``track``; return their futures.

    pipecat's output transport awaits each audio write until the peer connection's sender has
    consumed it; ``RawAudioTrack`` queues the writes as (chunk, future) pairs, with no public
    way to drop them. Any other track (or None) has no queue: nothing is taken.
    """
    queue = track._chunk_queue if isinstance(track, RawAudioTrack) else None
    futures: list[object] = []
    while queue:
        _chunk, future = queue.popleft()
        futures.append(future)
    return futures


def set_handler_cleanup(
    handler: Callable[..., Awaitable[None]], cleanup: Callable[[], Awaitable[None]]
) -> None:
    """Have pipecat await ``cleanup`` when the LLM service ``handler`` is registered on is torn
    down (the session ended).

    pipecat's ``LLMService`` looks for a ``_pipecat_cleanup`` coroutine function on each
    registered function handler (its MCP client sets it too); there is no public parameter.
    Shared by several handlers, it is awaited once.
    """
    setattr(handler, "_pipecat_cleanup", cleanup)  # noqa: B010 - an attribute of a function
