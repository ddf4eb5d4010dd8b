"""A WebRTC client peer that calls a SmallWebRTC server the way the browser page does.

Used by the loopback tests and the latency benchmark: it speaks clips through a real-time fake
microphone, records what the bot says with arrival times, and collects the bot's data-channel
(RTVI) messages.

    async with LoopbackCaller("http://127.0.0.1:7860") as caller:
        clip, rate = load_wav("hello_world.wav")
        spoken_end = await caller.say(clip, rate)
        reply_at = await caller.wait_for_voice(after=spoken_end, timeout=10)
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import av
import httpx
import numpy.typing as npt
from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from pipeline.bench.client.audio_clip import FloatArray, to_mono_float32
from pipeline.bench.client.audio_recorder import DEFAULT_VOICE_THRESHOLD_DBFS, AudioRecorder
from pipeline.bench.client.microphone_track import MicrophoneTrack, to_mic_samples
from pipeline.webrtc.jitter import LISTENER_AUDIO_PREFETCH_PACKETS, shorten_audio_jitter_buffers
from pipeline.webrtc.opus_sender import LowDelayOpusEncoder, send_low_delay_opus
from pipeline.webrtc.packet_time import MIC_PACKET_MS, packet_time
from pipeline.webrtc.signalling import (
    ServerMessage,
    client_ready_message,
    parse_answer,
    ping_message,
    split_candidates,
    track_status_message,
)

logger = logging.getLogger(__name__)

_POLL_S = 0.01


@dataclass(frozen=True)
class CallerConfig:
    """How the caller behaves; the defaults mirror pipecat's small-webrtc browser transport."""

    offer_path: str = "/api/offer"
    """Path of the offer endpoint under the base URL (POST offer, PATCH candidates)."""
    request_timeout_s: float = 10.0
    """Bound on each HTTP request."""
    ca_file: str | None = None
    """CA bundle that signed an https server's certificate (the project's local CA)."""
    trickle_ice: bool = False
    """Send the offer without candidates and PATCH them afterwards, as browsers do."""
    video_transceiver: bool = True
    """Add the (silent) camera transceiver at index 1, as the browser client always does."""
    send_client_ready: bool = True
    """Send RTVI client-ready when the data channel opens (the server answers bot-ready)."""
    ping_interval_s: float = 1.0
    """Data-channel keep-alive period; pipecat drops a peer silent for 3 s."""
    wait_for_bot: bool = True
    """connect() also waits until the bot's pipeline is up: its first audio frame or RTVI
    bot-ready, whichever comes first (audio sent earlier is dropped by the server)."""
    close_timeout_s: float = 5.0
    """Bound on closing the peer connection."""
    honour_packet_time: bool = True
    """Send 10 ms microphone packets when the answer asks for them (``a=ptime:10``), as
    Chrome does (pipeline.webrtc.packet_time); False keeps 20 ms packets whatever it says."""
    jitter_prefetch_packets: int = LISTENER_AUDIO_PREFETCH_PACKETS
    """Audio packets buffered before a received frame is released. One (20 ms) is the least
    aiortc can do and about what a browser's adaptive buffer settles to on a quiet LAN;
    aiortc's default four would add 60 ms to every measured latency."""


class LoopbackCaller:
    """One call to a SmallWebRTC server over loopback (or a LAN): mic in, bot audio out."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        config: CallerConfig | None = None,
        resume_pc_id: str | None = None,
        join: str | None = None,
    ) -> None:
        """Prepare a call to `base_url` (e.g. "http://127.0.0.1:7860"); nothing connects yet.

        With `resume_pc_id` the offer names an earlier call's peer and asks for a restart
        (`restart_pc`), as pipecat's browser client does when it reconnects: the server keeps
        that session and gives it this new peer connection. With `join` (a session id, as in
        another call's `session_id`) the call joins that running conversation instead of
        starting one, as the page opened from a join link does.
        """
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self._config = config or CallerConfig()
        self._offer_url = base_url.rstrip("/") + self._config.offer_path
        self._headers = dict(headers or {})
        self.recorder = AudioRecorder()
        self._messages: list[ServerMessage] = []
        self._pc: RTCPeerConnection | None = None
        self._http: httpx.AsyncClient | None = None
        self._mic: MicrophoneTrack | None = None
        self._channel: RTCDataChannel | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._connected: asyncio.Future[None] | None = None
        self._channel_open = asyncio.Event()
        self._bot_up = asyncio.Event()
        self._closed = False
        self._resume_pc_id = resume_pc_id
        self._join = join
        self.pc_id: str | None = None
        # The server's id for the conversation this call is in (what another call joins with).
        self.session_id: str | None = None
        self.answer_sdp: str | None = None
        # (arrival time, samples, sample rate) of every bot audio frame, for pacing checks.
        self.frame_arrivals: list[tuple[float, int, int]] = []
        self.connect_duration_s: float | None = None
        self._connect_started = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> LoopbackCaller:
        """Connect with the default timeout."""
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the call."""
        await self.close()

    @property
    def connection_state(self) -> str:
        """aiortc's connection state ("new" before connect())."""
        return self._pc.connectionState if self._pc else "new"

    async def connect(self, timeout: float = 20.0) -> None:
        """Offer, answer and wait for the peer (and data channel) to be connected.

        Raises:
            ConnectionError: the server refused the offer or the connection failed.
            TimeoutError: not connected within `timeout` seconds.
        """
        if self._pc is not None or self._closed:
            raise RuntimeError("a LoopbackCaller connects once; create a new one to call again")
        self._connect_started = started = time.monotonic()
        try:
            await asyncio.wait_for(self._connect(), timeout)
        except TimeoutError:
            state = self.connection_state
            await self.close()
            raise TimeoutError(f"not connected after {timeout:.1f} s (state {state})") from None
        except BaseException:
            await self.close()
            raise
        self.connect_duration_s = time.monotonic() - started
        logger.debug("connected %s in %.3f s", self.pc_id, self.connect_duration_s)

    async def close(self) -> None:
        """Hang up: stop the tasks, the microphone, the peer connection and the HTTP client."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self._config.close_timeout_s)
        self._tasks.clear()
        if self._mic is not None:
            self._mic.stop()
        if self._pc is not None:
            try:
                await asyncio.wait_for(self._pc.close(), self._config.close_timeout_s)
            except TimeoutError:
                logger.warning("peer connection %s did not close in time", self.pc_id)
        if self._connected is not None:
            if not self._connected.done():
                self._connected.cancel()
            elif not self._connected.cancelled():
                self._connected.exception()  # mark a failure nobody awaited as retrieved
        if self._http is not None:
            await self._http.aclose()

    async def vanish(self) -> None:
        """Disappear as a killed tab or a dropped Wi-Fi does: no goodbye of any kind.

        The ICE transport (which, bundled, carries audio, RTCP and the data channel) is closed
        without a DTLS close_notify or an SCTP abort, so the server simply stops hearing from
        this peer: no more pings, audio or consent answers. `close()` still frees this side.
        """
        if self._pc is None:
            raise RuntimeError("not connected")
        for task in self._tasks:
            if task.get_name() == "caller-ping":
                task.cancel()
        sctp = self._pc.sctp
        if sctp is None:
            raise RuntimeError("no data channel transport to close")
        await asyncio.wait_for(sctp.transport.transport.stop(), self._config.close_timeout_s)

    # -- speaking -------------------------------------------------------------------------

    async def say(
        self, samples: npt.NDArray[Any], sample_rate: int, *, stall_timeout: float = 10.0
    ) -> float:
        """Speak a clip into the microphone and wait until all of it has been sent.

        Args:
            samples: int16 or float audio, mono or shaped (frames, channels).
            sample_rate: the clip's rate; it is resampled to 48 kHz.
            stall_timeout: fail once no microphone frame at all has gone out for this long.
                A process short of CPU sends its audio late (the microphone's clock skips
                ahead rather than burst a backlog), so a bound on the whole clip would fail
                a slow call that is still talking; only a stopped sender is a fault.

        Returns:
            The `time.monotonic()` of the clip's last sample on the microphone's real-time
            timeline (its 20 ms frame was sent at most 20 ms later).

        Raises:
            TimeoutError: the microphone stopped sending before the clip was out.
        """
        mic = self._require_mic()
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        mono = to_mono_float32(samples)
        resampled = await asyncio.wait_for(
            asyncio.to_thread(to_mic_samples, mono, sample_rate), self._config.request_timeout_s
        )
        sent = mic.enqueue(resampled)
        progress = mic.seconds_sent
        while True:
            done, _ = await asyncio.wait([sent], timeout=stall_timeout)
            if done:
                return sent.result()
            if mic.seconds_sent == progress:
                mic.clear()  # fails `sent`: nothing of this clip is sent later
                sent.exception()
                raise TimeoutError(
                    f"the microphone sent nothing for {stall_timeout:.0f} s "
                    f"(connection {self.connection_state}, {mic.queued_seconds:.1f} s unsent)"
                )
            progress = mic.seconds_sent

    def stop_speaking(self) -> None:
        """Drop whatever the microphone has not sent yet (pending say() calls fail)."""
        self._require_mic().clear()

    # -- listening ------------------------------------------------------------------------

    def first_voiced_after(
        self, t: float, threshold_dbfs: float = DEFAULT_VOICE_THRESHOLD_DBFS
    ) -> float | None:
        """Arrival time of the first received 10 ms block louder than the threshold after t."""
        return self.recorder.first_voiced_after(t, threshold_dbfs)

    def received_audio(self, since: float | None = None) -> tuple[FloatArray, int]:
        """Received audio (mono float32) from `since` on, and its sample rate (48 kHz)."""
        return self.recorder.received_audio(since)

    async def wait_for_voice(
        self, after: float, timeout: float, threshold_dbfs: float = DEFAULT_VOICE_THRESHOLD_DBFS
    ) -> float:
        """Wait for received voice after `after`; return its arrival time (TimeoutError if none)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.recorder.first_voiced_after(after, threshold_dbfs)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no voice received within {timeout:.1f} s")
            await asyncio.sleep(_POLL_S)

    async def wait_for_silence(
        self,
        min_silence_s: float,
        timeout: float,
        *,
        after: float | None = None,
        threshold_dbfs: float = DEFAULT_VOICE_THRESHOLD_DBFS,
    ) -> float:
        """Wait until no voice has arrived for `min_silence_s` (the bot finished speaking).

        Silence counts from the end of the last voiced block after `after` (default: when
        connect() started), so a bot that finished earlier is reported at once.

        Returns:
            The time the bot's voice ended (`after` if none was heard since then).
        """
        deadline = time.monotonic() + timeout
        floor = after if after is not None else self._connect_started
        while True:
            voice_end = self.recorder.last_voiced_end(floor, threshold_dbfs)
            quiet_since = floor if voice_end is None else max(floor, voice_end)
            if time.monotonic() - quiet_since >= min_silence_s:
                return quiet_since
            if time.monotonic() >= deadline:
                raise TimeoutError(f"bot still speaking after {timeout:.1f} s")
            await asyncio.sleep(_POLL_S)

    @property
    def microphone_packet_ms(self) -> int:
        """The length of the microphone's frames, and so of its packets: 20 ms, or 10 ms when
        the answer asked for them."""
        return self._require_mic().frame_ms

    @property
    def microphone_seconds_sent(self) -> float:
        """Seconds of microphone audio sent so far (silence included)."""
        return self._require_mic().seconds_sent

    @property
    def messages(self) -> list[ServerMessage]:
        """JSON messages received on the data channel so far, oldest first."""
        return list(self._messages)

    async def wait_for_message(
        self,
        message_type: str,
        timeout: float,
        *,
        after: float | None = None,
        label: str | None = None,
    ) -> ServerMessage:
        """Wait for a data-channel message of `message_type` (and `label`, when given: RTVI and
        jetvoice both send an "error") received after `after`."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self._messages:
                if (
                    message.type == message_type
                    and (label is None or message.label == label)
                    and (after is None or message.received_at > after)
                ):
                    return message
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no {message_type!r} message within {timeout:.1f} s")
            await asyncio.sleep(_POLL_S)

    def send_message(self, message: dict[str, Any]) -> None:
        """Send a JSON message (e.g. an RTVI client message) on the data channel."""
        if self._channel is None or self._channel.readyState != "open":
            raise ConnectionError("data channel is not open")
        self._channel.send(json.dumps(message))

    # -- internals ------------------------------------------------------------------------

    def _require_mic(self) -> MicrophoneTrack:
        if self._mic is None or self._closed:
            raise RuntimeError("not connected")
        return self._mic

    async def _connect(self) -> None:
        config = self._config
        verify: ssl.SSLContext | bool = True
        if config.ca_file is not None:
            verify = ssl.create_default_context(cafile=config.ca_file)
        self._http = httpx.AsyncClient(
            timeout=config.request_timeout_s,
            headers=self._headers,
            verify=verify,
            # Proxy variables must never route a loopback call through another host.
            trust_env=False,
        )
        # Without an explicit configuration aiortc falls back to a public STUN server.
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self._pc = pc
        self._connected = asyncio.get_running_loop().create_future()
        pc.on("connectionstatechange", self._on_connection_state)

        # pipecat maps transceivers by creation order (0 mic, 1 camera, 2 screen); the browser
        # client always creates the camera one, sendrecv, even with the camera off.
        self._mic = MicrophoneTrack()
        pc.addTransceiver(self._mic, direction="sendrecv")
        if config.video_transceiver:
            pc.addTransceiver("video", direction="sendrecv")
        shorten_audio_jitter_buffers(pc, config.jitter_prefetch_packets)
        channel = pc.createDataChannel("chat", ordered=True)
        self._channel = channel
        channel.on("open", self._on_channel_open)
        channel.on("message", self._on_channel_message)

        await pc.setLocalDescription(await pc.createOffer())
        local_sdp = pc.localDescription.sdp
        # Browsers send the offer at once and trickle candidates; aiortc gathers them first.
        offer_sdp, candidates = split_candidates(local_sdp)
        if not config.trickle_ice:
            offer_sdp, candidates = local_sdp, []
        answer_sdp = await self._post_offer(offer_sdp)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))
        # Before media flows (ICE and DTLS have yet to run), like the encoder a browser picks
        # from the answer: libwebrtc takes the shortest Opus frame at or above its ptime.
        asked = packet_time(answer_sdp)
        if config.honour_packet_time and asked is not None and asked <= MIC_PACKET_MS:
            self._mic.set_frame_ms(MIC_PACKET_MS)
            send_low_delay_opus(pc, lambda: LowDelayOpusEncoder(MIC_PACKET_MS, "voip"))

        remote_audio = pc.getTransceivers()[0].receiver.track
        if remote_audio is None:
            raise ConnectionError("server answered without an audio track on transceiver 0")
        self._tasks.append(asyncio.create_task(self._record(remote_audio), name="caller-record"))
        if candidates:
            await self._patch_candidates(candidates)

        await self._connected
        await self._channel_open.wait()
        if config.wait_for_bot:
            await self._bot_up.wait()

    async def _post_offer(self, sdp: str) -> str:
        assert self._http is not None
        resume = self._resume_pc_id
        body: dict[str, Any] = {
            "sdp": sdp,
            "type": "offer",
            "pc_id": resume,
            "restart_pc": resume is not None,
        }
        if self._join is not None:
            body["join"] = self._join
        response = await self._http.post(self._offer_url, json=body)
        answer = parse_answer(response.status_code, response.text)
        self.pc_id = answer["pc_id"]
        self.session_id = answer.get("session_id")
        self.answer_sdp = answer["sdp"]
        return answer["sdp"]

    async def _patch_candidates(self, candidates: list[dict[str, Any]]) -> None:
        assert self._http is not None
        body = {"pc_id": self.pc_id, "candidates": candidates}
        response = await self._http.patch(self._offer_url, json=body)
        if response.status_code // 100 != 2:
            raise ConnectionError(f"candidates refused: HTTP {response.status_code}")

    def _on_connection_state(self) -> None:
        assert self._pc is not None and self._connected is not None
        state = self._pc.connectionState
        logger.debug("caller %s connection state %s", self.pc_id, state)
        if self._connected.done():
            return
        if state == "connected":
            self._connected.set_result(None)
        elif state in ("failed", "closed"):
            self._connected.set_exception(ConnectionError(f"peer connection {state}"))

    def _on_channel_open(self) -> None:
        if self._closed or self._channel is None:
            return
        channel = self._channel
        # What the browser client sends first: mic on, camera off, then RTVI client-ready.
        channel.send(json.dumps(track_status_message(0, enabled=True)))
        if self._config.video_transceiver:
            channel.send(json.dumps(track_status_message(1, enabled=False)))
        if self._config.send_client_ready:
            channel.send(json.dumps(client_ready_message()))
        self._tasks.append(asyncio.create_task(self._ping(channel), name="caller-ping"))
        self._channel_open.set()

    def _on_channel_message(self, message: str | bytes) -> None:
        received_at = time.monotonic()
        if not isinstance(message, str):
            logger.debug("ignoring %d-byte binary data-channel message", len(message))
            return
        try:
            data = json.loads(message)
        except ValueError:
            logger.debug("ignoring non-JSON data-channel message")
            return
        if isinstance(data, dict):
            received = ServerMessage(received_at=received_at, data=data)
            self._messages.append(received)
            if received.type == "bot-ready":
                self._bot_up.set()

    async def _ping(self, channel: RTCDataChannel) -> None:
        # pipecat's is_connected() needs a "ping..." text at least every 3 s, else it stops
        # sending the bot's audio to this peer.
        while channel.readyState == "open":
            channel.send(ping_message())
            await asyncio.sleep(self._config.ping_interval_s)

    async def _record(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                async with asyncio.timeout(1.0):
                    frame = await track.recv()
            except TimeoutError:
                continue  # the server may pause sending; keep listening
            except MediaStreamError:
                return
            if isinstance(frame, av.AudioFrame):
                arrival = time.monotonic()
                self.frame_arrivals.append((arrival, frame.samples, frame.sample_rate))
                self.recorder.add_frame(frame, arrival)
                self._bot_up.set()
