"""pipecat's internals that jetvoice relies on where pipecat (1.14) offers no public way: the
SmallWebRTC request handler's peer map, the transport's output processor, the writes queued on
an output track, the LLM service's teardown hook for function handlers; and for the models, the
segmented STT's segment hand-off, the LLM service's response and error classification, the VAD's
state machine and Smart Turn's turn buffer.

Each name is checked against the pinned version by ``tests/unit/test_library_seams.py``; a
method copied from pipecat is checked there by the hash of its original.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from loguru import logger
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADState
from pipecat.frames.frames import VADUserStoppedSpeakingFrame
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.stt_service import SegmentedSTTService
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
from pipecat.utils.errors import ErrorCategory


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


# --- the model services and the turn analyzers -----------------------------------------------


class SegmentHandoffSTTService(SegmentedSTTService):
    """pipecat's segmented STT with its segment buffer public and a hook at the segment's cut.

    pipecat cuts the user's segment at the VAD's stop and queues it for ``run_stt`` inside a
    private method, with no hook between the two; a service that must pair the segment's bytes
    with a transcript it already made (the early transcript) needs that moment. The method is
    copied here (checked by the hash of pipecat's original) with :meth:`on_segment` called
    before the segment is queued. Local models read raw PCM: the WAV branch is not copied, and
    :attr:`wants_wav_segments` must stay False.
    """

    @property
    def wants_wav_segments(self) -> bool:
        """Raw 16-bit PCM: the copied hand-off queues the segment as it is."""
        return False

    @property
    def segment_audio(self) -> bytearray:
        """The segment so far (pipecat's buffer, which the service fills while the user speaks)."""
        return self._audio_buffer

    @property
    def user_speaking(self) -> bool:
        """Between the VAD's start and stop, as the service saw them."""
        return self._user_speaking

    @property
    def speaking_user_id(self) -> str:
        """The id the service's transcripts carry (pipecat sets it from the user's frames)."""
        return self._user_id

    def segment_padding(self) -> bytes:
        """The silence pipecat appends to each segment before transcribing it."""
        return self._trailing_silence()

    async def on_segment(self, pcm: bytes) -> None:
        """The segment just cut at the VAD's stop, unpadded, before it is queued for ``run_stt``
        (the same bytes object ``run_stt`` then gets)."""

    async def on_segment_dropped(self) -> None:
        """The service is unusable: the segment cut at the VAD's stop was thrown away."""

    async def _handle_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame) -> None:
        # pipecat's SegmentedSTTService._handle_user_stopped_speaking (1.14), with the hooks.
        self._user_speaking = False
        if not self.is_usable:
            self._audio_buffer.clear()
            await self.on_segment_dropped()
            return
        pcm = bytes(self._audio_buffer)
        self._audio_buffer.clear()
        self._record_stt_audio_usage(pcm + self._trailing_silence())
        await self.emit_stt_usage_metrics()
        await self.on_segment(pcm)
        await self._segment_queue.put(pcm)


class ResponseSlotLLMService(OpenAILLMService):
    """pipecat's OpenAI-compatible LLM service with a hook around each whole response and a
    public error classification.

    pipecat runs a response (the request and its whole stream, tool calls included) in a private
    method; :meth:`response_slot` is entered before the request and left after the stream, the
    only place that spans both. pipecat decides whether an error marks the service unusable in a
    private method too; :meth:`classify_error` is that decision.
    """

    @property
    def client(self) -> Any:
        """The service's own OpenAI client (built by ``create_client``), for requests of the
        service's own beside its responses."""
        return self._client

    def response_slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held for one whole response; pipecat's behaviour (nothing) unless overridden."""
        return contextlib.nullcontext()

    def classify_error(self, exception: Exception) -> ErrorCategory | None:
        """pipecat's classification of a failed request, unless overridden."""
        return super()._classify_error(exception)

    async def _process_context(self, context: Any) -> None:
        async with self.response_slot():
            await super()._process_context(context)

    def _classify_error(self, exception: Exception) -> ErrorCategory | None:
        return self.classify_error(exception)


class StopHookVADAnalyzer(SileroVADAnalyzer):
    """Silero VAD whose state machine can be read, and its speech ended, after each audio chunk.

    pipecat keeps the VAD's state, its count of quiet windows and the audio past the last whole
    window private, and decides the stop inside a private method: :meth:`after_windows` is
    called with each state it decides, and may end the speech at once (:meth:`end_speech`).
    """

    def after_windows(self, state: VADState) -> VADState:
        """The state pipecat decided for the latest audio; the one returned is used instead."""
        return state

    @property
    def pending_audio(self) -> bytes:
        """Audio received past the last whole window (not yet analyzed)."""
        return bytes(self._vad_buffer)

    @property
    def quiet_windows(self) -> int:
        """Windows of non-speech counted toward the stop so far (pipecat's stopping count)."""
        return self._vad_stopping_count

    @property
    def stop_windows(self) -> int:
        """Windows of non-speech that make the stop."""
        return self._vad_stop_frames

    def end_speech(self) -> VADState:
        """End the speech now, as pipecat does when its stop count is reached."""
        self._vad_state = VADState.QUIET
        self._vad_stopping_count = 0
        return VADState.QUIET

    def _run_analyzer(self, buffer: bytes) -> VADState:
        return self.after_windows(super()._run_analyzer(buffer))


class GuessingSmartTurn(LocalSmartTurnAnalyzerV3):
    """Local Smart Turn v3 with its turn buffer readable, a single-shot prediction, a hook when
    it clears the turn, and the executor its model runs on chosen by a subclass.

    pipecat keeps the turn's audio and whether speech started private, predicts only inside
    ``analyze_end_of_turn``, clears the turn in a private method and builds its model thread in
    a private property.
    """

    @property
    def turn_audio(self) -> list[tuple[float, Any]]:
        """The turn's audio so far, as (time, samples) chunks."""
        return self._audio_buffer

    @property
    def speech_triggered(self) -> bool:
        """Speech has started in this turn."""
        return self._speech_triggered

    def predict(self, audio: list[tuple[float, Any]]) -> tuple[EndOfTurnState, Any]:
        """The model's verdict on ``audio``, as ``analyze_end_of_turn`` gets it (blocking: run
        it on :meth:`model_executor`)."""
        return self._process_speech_segment(audio)

    def clear_turn(self, state: EndOfTurnState) -> None:
        """Forget the turn, as pipecat does once it has decided it."""
        self._clear(state)

    def on_clear(self) -> None:
        """pipecat cleared the turn (decided, reset, or cleared from outside)."""

    def build_executor(self) -> ThreadPoolExecutor:
        """The one thread the model runs on; pipecat's plain thread unless overridden."""
        return ThreadPoolExecutor(max_workers=1)

    def model_executor(self) -> ThreadPoolExecutor:
        """The model's thread, built once (pipecat's cleanup shuts it down)."""
        return self._model_executor

    @property
    def _model_executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = self.build_executor()
        return self._executor

    def _clear(self, turn_state: EndOfTurnState) -> None:
        super()._clear(turn_state)
        self.on_clear()
