"""pipecat's SmallWebRTC transport, with its output also going to the peers who joined.

The bot's audio is fanned out after pipecat's output transport has cut it into chunks and paced
it, so everyone in the conversation hears the same audio at the same time, and an interruption
(which stops the output writing) silences the bot for everyone at once. The RTVI messages the
host's page gets (transcripts, speaking state) go to the joined peers' pages too.
"""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import (
    OutputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCClient, SmallWebRTCOutputTransport

from pipeline.sessions.party import GUEST_PACE_TIMEOUT_SECS, Party
from services.seams.pipecat_seams import OutputBuildingTransport


class SharedOutputTransport(SmallWebRTCOutputTransport):
    """Writes the bot's audio and messages to the host and to every guest of the party."""

    def __init__(
        self,
        client: SmallWebRTCClient,
        params: TransportParams,
        party: Party,
        **kwargs: object,
    ) -> None:
        """``client``: the host's; ``party``: the session's guests."""
        super().__init__(client, params, **kwargs)
        self._party = party

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        """Send one chunk to everyone; paced by the host, or by the guests once it left."""
        guests = self._party.send_audio(frame.audio)
        wrote = await super().write_audio_frame(frame)
        if guests and not wrote:
            # pipecat's output does not pace itself: without a host track to wait on, the
            # first guest to take the chunk sets the pace.
            await asyncio.wait(
                guests, timeout=GUEST_PACE_TIMEOUT_SECS, return_when=asyncio.FIRST_COMPLETED
            )
        return wrote or bool(guests)

    async def send_message(
        self, frame: OutputTransportMessageFrame | OutputTransportMessageUrgentFrame
    ) -> None:
        """Send a data-channel message to the host (while there) and the guests."""
        if self._party.host_present:
            await super().send_message(frame)
        self._party.send_message(frame.message)


class SharedTransport(OutputBuildingTransport):
    """A SmallWebRTC transport for the host whose output also reaches the party's guests."""

    def __init__(
        self,
        webrtc_connection: SmallWebRTCConnection,
        params: TransportParams,
        party: Party,
        input_name: str | None = None,
        output_name: str | None = None,
    ) -> None:
        """As pipecat's transport, plus the ``party`` its output is shared with."""
        super().__init__(webrtc_connection, params, input_name, output_name)
        self._party = party

        # Runs after pipecat gave the connection its output track (it does so just before
        # raising this event).
        @self.event_handler("on_client_connected")
        async def note_host_track(_transport: SharedTransport, client: object) -> None:
            party.host_connected(webrtc_connection)

    def build_output(
        self, client: SmallWebRTCClient, params: TransportParams, name: str | None
    ) -> SmallWebRTCOutputTransport:
        """The output processor, fanning out to the party."""
        return SharedOutputTransport(client, params, self._party, name=name)
