"""Every private name of pipecat, aiortc and aioice that pipeline/ and services/ rely on, checked
against the pinned versions, so that an upgrade which renames or rewrites one fails here, loudly
and by name, instead of silently in a call (an attribute written under a name the library no
longer reads, a ``getattr`` default taken, an override nobody calls).

Each entry of :data:`SEAMS` says where we use the name (file:function), why, and whether a public
API could replace it. The checks, against the installed versions only (no network, no model):

- the name exists where we expect it, with the expected kind: a method (sync or async), a
  property, a module function, or an attribute present on an instance built with minimal
  arguments (pipecat services, aiortc's peer connection, jitter buffer...);
- where the library must still read or write the name for our use to work, its source still
  does (``library_reads``);
- where we copied a library method (or mirror its state machine), the original's source still
  hashes to what we copied from (``copied_sha256``): a changed hash names our copy to re-check;
- no private library name is used in pipeline/ or services/ without an entry here, nor outside
  ``services/seams/`` (one adapter module per library), and each adapter does what its callers
  assume of it.

:data:`UNDOCUMENTED` holds the names without an underscore that no documentation promises
(aiortc's Opus encoder internals, faster-whisper's model and tokenizer), checked the same way.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The versions this inventory vouches for (uv.lock). A bump re-runs this file before anything.
PINNED = {"pipecat-ai": "1.14.0", "aiortc": "1.16.0", "aioice": "0.13.0", "faster-whisper": "1.2.1"}
LIBRARY_PACKAGES = ("pipecat", "aiortc", "aioice", "av", "onnxruntime", "faster_whisper")

# Kinds.
ATTRIBUTE = "attribute on a built instance"
METHOD = "method"
ASYNC_METHOD = "async method"
PROPERTY = "property"
FUNCTION = "module function"
LIBRARY_READS = "read by the library (set on our object)"
LIBRARY_WRITES = "written by the library (on its own object)"


@dataclass(frozen=True)
class Seam:
    """One private library name we rely on."""

    library: str  # distribution name
    owner: str  # "module:Qualname" (the class or module that defines the name)
    name: str
    kind: str
    used_by: str  # "path:Class.function" in this repository
    why: str
    public: str  # "kept: ..." or "could use public API: ..."
    instance: str | None = None  # key of INSTANCE_FACTORIES, for ATTRIBUTE
    library_reads: tuple[str, ...] = ()  # substrings the owner's source must still contain
    copied_sha256: str | None = None  # sha256 of inspect.getsource(owner.name)
    library_module: str | None = None  # where library_reads are, when not in the owner
    private: bool = True  # False: a public-looking but undocumented attribute (UNDOCUMENTED)

    @property
    def id(self) -> str:
        return f"{self.owner.rpartition(':')[2] or self.owner}.{self.name}"


PIPECAT, AIORTC, AIOICE = "pipecat-ai", "aiortc", "aioice"
TTS = "pipecat.services.tts_service:TTSService"
STT = "pipecat.services.stt_service:SegmentedSTTService"
OPENAI = "pipecat.services.openai.base_llm:BaseOpenAILLMService"
VAD = "pipecat.audio.vad.vad_analyzer:VADAnalyzer"
SMART_TURN = "pipecat.audio.turn.smart_turn.base_smart_turn:BaseSmartTurn"
HANDLER = "pipecat.transports.smallwebrtc.request_handler:SmallWebRTCRequestHandler"
TRANSPORT = "pipecat.transports.smallwebrtc.transport:SmallWebRTCTransport"
RECEIVER = "aiortc.rtcrtpreceiver:RTCRtpReceiver"
SENDER = "aiortc.rtcrtpsender:RTCRtpSender"
ICE_CONNECTION = "aioice.ice:Connection"
STUN_PROTOCOL = "aioice.ice:StunProtocol"

SEAMS: tuple[Seam, ...] = (
    # --- services/seams/pipecat_seams.py (for services/stt.py) --------------------------------
    Seam(PIPECAT, STT, "_handle_user_stopped_speaking", ASYNC_METHOD,
         "services/seams/pipecat_seams.py:SegmentHandoffSTTService._handle_user_stopped_speaking",
         "copied and overridden with on_segment: the early transcript is paired with the "
         "segment's bytes",
         "kept: pipecat has no hook between the segment's cut and its queueing",
         copied_sha256="b7f892458382e9e4f10ac1859bff4141f4b7d245e2f0748ff31eb56478aff705"),
    Seam(PIPECAT, STT, "_audio_buffer", ATTRIBUTE,
         "services/seams/pipecat_seams.py:SegmentHandoffSTTService.segment_audio",
         "the turn's audio so far, read by the early transcript and cut in the copied hand-off",
         "kept: no public accessor for the segment buffer",
         instance="stt", library_reads=("self._audio_buffer += frame.audio",)),
    Seam(PIPECAT, STT, "_segment_queue", ATTRIBUTE,
         "services/seams/pipecat_seams.py:SegmentHandoffSTTService._handle_user_stopped_speaking",
         "the copied hand-off queues the segment where pipecat's run_stt loop takes it",
         "kept: part of the copied hand-off",
         instance="stt", library_reads=("await self._segment_queue.get()",)),
    Seam(PIPECAT, STT, "_user_speaking", ATTRIBUTE,
         "services/seams/pipecat_seams.py:SegmentHandoffSTTService.user_speaking",
         "the early transcript watches only while the user speaks; the copy clears it",
         "kept: part of the copied hand-off",
         instance="stt", library_reads=("if not self._user_speaking",)),
    Seam(PIPECAT, STT, "_trailing_silence", METHOD,
         "services/seams/pipecat_seams.py:SegmentHandoffSTTService.segment_padding",
         "pads each decoded segment exactly as pipecat pads the segments it queues",
         "kept: part of the copied hand-off"),
    Seam(PIPECAT, "pipecat.services.stt_service:STTService", "_record_stt_audio_usage", METHOD,
         "services/seams/pipecat_seams.py:SegmentHandoffSTTService._handle_user_stopped_speaking",
         "usage metrics for the segment, as the copied original records them",
         "kept: part of the copied hand-off"),
    Seam(PIPECAT, STT, "_user_id", ATTRIBUTE,
         "services/seams/pipecat_seams.py:SegmentHandoffSTTService.speaking_user_id",
         "the TranscriptionFrame carries the speaking user's id, as pipecat's services do",
         "kept: no public accessor",
         instance="stt", library_reads=("self._user_id = ",)),
    # --- services/seams/pipecat_seams.py (for services/llm.py) --------------------------------
    Seam(PIPECAT, OPENAI, "_process_context", ASYNC_METHOD,
         "services/seams/pipecat_seams.py:ResponseSlotLLMService._process_context",
         "wrapped in response_slot: the turn waits in line at the shared LLM gate and its "
         "response is marked complete",
         "kept: the only method spanning the request and its whole stream"),
    Seam(PIPECAT, OPENAI, "get_chat_completions", ASYNC_METHOD,
         "services/llm.py:LocalLLMService.get_llm_invocation_params_for",
         "its request building is copied for the prefill, so the prefill's prompt is the turn's",
         "kept: public method, but its request-building lines are copied (hash)",
         copied_sha256="c2510fc7ca3c1849b07542a66ed280ca82518317d46ed84a3cc588edae1ce33b"),
    Seam(PIPECAT, OPENAI, "_client", ATTRIBUTE,
         "services/seams/pipecat_seams.py:ResponseSlotLLMService.client",
         "the prefill goes through the service's own client (same timeout, no retries)",
         "kept: a second client would be a second connection pool to the same server",
         instance="llm", library_reads=("self._client = self.create_client(",)),
    Seam(PIPECAT, "pipecat.processors.frame_processor:FrameProcessor", "_classify_error", METHOD,
         "services/seams/pipecat_seams.py:ResponseSlotLLMService._classify_error",
         "overridden by classify_error: a local server's 4xx must not mark the service "
         "unusable for the session",
         "kept: pipecat's only error-classification hook"),
    # --- services/seams/pipecat_seams.py (for pipeline/tools/registry.py) ---------------------
    Seam(PIPECAT, "pipecat.services.llm_service:LLMService", "_pipecat_cleanup", LIBRARY_READS,
         "services/seams/pipecat_seams.py:set_handler_cleanup",
         "set on each tool handler so pipecat closes the tool timers when the session ends",
         "kept: pipecat's documented teardown hook for handlers (MCP uses it too)",
         library_reads=('getattr(handler, "_pipecat_cleanup", None)',)),
    # --- services/seams/pipecat_seams.py (for pipeline/audio/endpointing_vad.py) -------------
    Seam(PIPECAT, VAD, "_run_analyzer", METHOD,
         "services/seams/pipecat_seams.py:StopHookVADAnalyzer._run_analyzer",
         "overridden to call after_windows: the stop ends from the energy drop; relies on the "
         "base's stop counting",
         "kept: no public hook into the VAD's state machine",
         copied_sha256="0a33840d096030fceaaec4d76df8c327b1dda1257784de5041c1017785a9dde0"),
    Seam(PIPECAT, VAD, "_vad_state", ATTRIBUTE,
         "services/seams/pipecat_seams.py:StopHookVADAnalyzer.end_speech",
         "written QUIET when the sub-window stop ends speech early",
         "kept: no public setter", instance="vad",
         library_reads=("match self._vad_state:",)),
    Seam(PIPECAT, VAD, "_vad_stopping_count", ATTRIBUTE,
         "services/seams/pipecat_seams.py:StopHookVADAnalyzer.quiet_windows",
         "quiet windows counted so far; reset with the early stop",
         "kept: no public accessor", instance="vad",
         library_reads=("self._vad_stopping_count += 1",)),
    Seam(PIPECAT, VAD, "_vad_buffer", ATTRIBUTE,
         "services/seams/pipecat_seams.py:StopHookVADAnalyzer.pending_audio",
         "the audio received past the last whole window counts toward the stop",
         "kept: no public accessor", instance="vad"),
    Seam(PIPECAT, VAD, "_vad_stop_frames", ATTRIBUTE,
         "services/seams/pipecat_seams.py:StopHookVADAnalyzer.stop_windows",
         "windows of quiet that make a stop, as the base counts them",
         "kept: the base rounds stop_secs to windows itself", instance="vad"),
    # --- services/seams/pipecat_seams.py (for pipeline/audio/early_smart_turn.py) ------------
    Seam(PIPECAT, SMART_TURN, "_audio_buffer", ATTRIBUTE,
         "services/seams/pipecat_seams.py:GuessingSmartTurn.turn_audio",
         "the turn so far, handed to the model for the early guess",
         "kept: no public accessor", instance="smart_turn",
         library_reads=("self._process_speech_segment, self._audio_buffer",)),
    Seam(PIPECAT, SMART_TURN, "_speech_triggered", ATTRIBUTE,
         "services/seams/pipecat_seams.py:GuessingSmartTurn.speech_triggered",
         "guess only once the turn's speech has started",
         "kept: no public accessor", instance="smart_turn"),
    Seam(PIPECAT, SMART_TURN, "_process_speech_segment", METHOD,
         "services/seams/pipecat_seams.py:GuessingSmartTurn.predict",
         "runs the model on the guess, exactly as analyze_end_of_turn does",
         "kept: no public single-shot predict"),
    Seam(PIPECAT, SMART_TURN, "_clear", METHOD,
         "services/seams/pipecat_seams.py:GuessingSmartTurn._clear",
         "overridden to call on_clear (the guess is dropped whenever pipecat clears the turn); "
         "clear_turn calls it on a used guess's COMPLETE",
         "kept: no public reset hook"),
    Seam(PIPECAT, SMART_TURN, "_model_executor", PROPERTY,
         "services/seams/pipecat_seams.py:GuessingSmartTurn._model_executor",
         "overridden to build_executor: the model's thread runs at the models' (lowered) "
         "priority",
         "kept: no executor parameter"),
    Seam(PIPECAT, SMART_TURN, "_executor", ATTRIBUTE,
         "services/seams/pipecat_seams.py:GuessingSmartTurn._model_executor",
         "the executor the overridden property builds, which pipecat's cleanup shuts down",
         "kept: with _model_executor", instance="smart_turn",
         library_reads=("self._executor.shutdown(wait=False)",)),
    Seam(PIPECAT, SMART_TURN, "analyze_end_of_turn", ASYNC_METHOD,
         "pipeline/audio/early_smart_turn.py:EarlySmartTurn.analyze_end_of_turn",
         "mirrored when the guess is used (model result, then the turn cleared on COMPLETE)",
         "kept: public method; the mirrored steps are checked by hash",
         copied_sha256="23c37ea27cab87f054713ec998a8b5a3608a2100148d0897c0a66b4f92306b8f"),
    # --- services/seams/aiortc_seams.py (for pipeline/webrtc/jitter.py) ----------------------
    Seam(AIORTC, RECEIVER, "_RTCRtpReceiver__jitter_buffer", ATTRIBUTE,
         "services/seams/aiortc_seams.py:replace_jitter_buffer",
         "the audio receiver's jitter buffer is replaced (no prefetch, no stall on a loss)",
         "kept: aiortc has no knob; pipecat's SmallWebRTCTrack writes the same name for its "
         "screen-share video and has no slot for audio or another buffer kind",
         instance="audio_receiver",
         library_reads=("pli_flag, encoded_frame = self.__jitter_buffer.add(packet)",)),
    Seam(AIORTC, RECEIVER, "_data", LIBRARY_WRITES,
         "services/seams/aiortc_seams.py:depayloaded",
         "the depayloaded bytes the receiver stores on each RtpPacket before add()",
         "kept: the jitter buffer's only input",
         library_reads=("packet._data = depayload(codec, packet.payload)",)),
    # --- services/seams/aiortc_seams.py (for pipeline/webrtc/opus_sender.py) -----------------
    Seam(AIORTC, "aiortc.rtcrtptransceiver:RTCRtpTransceiver", "_codecs", ATTRIBUTE,
         "services/seams/aiortc_seams.py:negotiated_codecs",
         "the negotiated codecs: only an Opus sender gets the low-delay encoder "
         "(a getattr default would silently skip every sender)",
         "kept: aiortc exposes no negotiated-codec accessor (the SDP lists them, but parsing "
         "it again could disagree with what the sender is given)",
         instance="audio_transceiver",
         library_reads=("transceiver._codecs = common", "codecs=transceiver._codecs"),
         library_module="aiortc.rtcpeerconnection"),
    Seam(AIORTC, SENDER, "_RTCRtpSender__encoder", ATTRIBUTE,
         "services/seams/aiortc_seams.py:set_sender_encoder",
         "set before media flows; the sender builds its own only when this is None "
         "(a getattr default would silently leave aiortc's 20 ms voip encoder); read back by "
         "sender_encoder to leave a sender that already encodes alone",
         "kept: aiortc has no encoder parameter", instance="audio_sender",
         library_reads=("if self.__encoder is None:",)),
    # --- services/seams/pipecat_seams.py (for pipeline/webrtc/audio_out_track.py) ------------
    Seam(PIPECAT, "pipecat.transports.smallwebrtc.transport:RawAudioTrack", "_chunk_queue",
         ATTRIBUTE, "services/seams/pipecat_seams.py:take_pending_audio_writes",
         "(chunk, future) writes completed when the peer is gone, or the output stalls 10 s "
         "(a getattr default would silently release nothing)",
         "kept: no public way to drop queued writes", instance="raw_audio_track",
         library_reads=("self._chunk_queue.append((chunk, fut))",
                        "chunk, future = self._chunk_queue.popleft()")),
    # --- services/seams/pipecat_seams.py (for pipeline/sessions/manager.py) ------------------
    Seam(PIPECAT, HANDLER, "_pcs_map", ATTRIBUTE,
         "services/seams/pipecat_seams.py:PeerMapRequestHandler.peers",
         "one entry per live peer: stale and failed peers are dropped from pipecat's map",
         "kept: no public peer registry", instance="request_handler"),
    Seam(PIPECAT, HANDLER, "_ice_servers", ATTRIBUTE,
         "services/seams/pipecat_seams.py:PeerMapRequestHandler.answer_new_peer",
         "the new-peer branch builds the connection as pipecat does",
         "kept: part of the copied branch", instance="request_handler"),
    Seam(PIPECAT, HANDLER, "handle_web_request", ASYNC_METHOD,
         "services/seams/pipecat_seams.py:PeerMapRequestHandler.answer_new_peer",
         "its new-peer branch is copied, closing the connection when answering fails",
         "kept: public method; the copied branch is checked by hash",
         copied_sha256="80a6cc27471cb49c5dc90067c51db00e325d39329d00434ecd7fe4fe12411911"),
    # --- services/seams/aioice_seams.py (for pipeline/webrtc/ice_policy.py; process-wide) ----
    Seam(AIOICE, "aioice.ice", "get_host_addresses", FUNCTION,
         "services/seams/aioice_seams.py:install_ice_filter",
         "replaced to gather on 127.0.0.1 (and own addresses); called as a module global",
         "kept: aioice has no gathering-address option",
         library_reads=("addresses = get_host_addresses(",)),
    Seam(AIOICE, ICE_CONNECTION, "add_remote_candidate", ASYNC_METHOD,
         "services/seams/aioice_seams.py:install_ice_filter",
         "wrapped to drop remote candidates that are not this machine (mDNS unresolved)",
         "kept: aioice has no candidate filter"),
    Seam(AIOICE, STUN_PROTOCOL, "datagram_received", METHOD,
         "services/seams/aioice_seams.py:install_ice_filter",
         "wrapped to ignore datagrams from strangers", "kept: aioice has no source filter"),
    Seam(AIOICE, STUN_PROTOCOL, "send_stun", METHOD,
         "services/seams/aioice_seams.py:install_ice_filter",
         "wrapped to send nothing to a stranger", "kept: aioice has no destination filter"),
    Seam(AIOICE, STUN_PROTOCOL, "send_data", ASYNC_METHOD,
         "services/seams/aioice_seams.py:install_ice_filter",
         "wrapped to send nothing to a stranger", "kept: aioice has no destination filter"),
    # --- services/seams/pipecat_seams.py (for pipeline/webrtc/shared_transport.py) -----------
    Seam(PIPECAT, TRANSPORT, "output", METHOD,
         "services/seams/pipecat_seams.py:OutputBuildingTransport.output",
         "copied, building the output with a hook (SharedTransport: fan-out to guests)",
         "kept: no output-class parameter",
         copied_sha256="06560e36303ea3a9059df0b08b8cec4f1711d3cad4ecbb9ce2f84ce013d4520a"),
    Seam(PIPECAT, TRANSPORT, "_output", ATTRIBUTE,
         "services/seams/pipecat_seams.py:OutputBuildingTransport.output",
         "the cached output processor of the copied output()", "kept: part of the copy",
         instance="transport"),
    Seam(PIPECAT, TRANSPORT, "_client", ATTRIBUTE,
         "services/seams/pipecat_seams.py:OutputBuildingTransport.output",
         "the host's SmallWebRTCClient the output writes to", "kept: part of the copy",
         instance="transport"),
    Seam(PIPECAT, TRANSPORT, "_params", ATTRIBUTE,
         "services/seams/pipecat_seams.py:OutputBuildingTransport.output",
         "the transport params the output is built with", "kept: part of the copy",
         instance="transport"),
    Seam(PIPECAT, TRANSPORT, "_output_name", ATTRIBUTE,
         "services/seams/pipecat_seams.py:OutputBuildingTransport.output",
         "the output processor's name", "kept: part of the copy", instance="transport"),
)  # fmt: skip

# Names without an underscore that no documentation promises, used the same silent way (an
# attribute we assign under a name the library stopped reading does nothing). Not counted as
# private uses; checked alike.
UNDOCUMENTED: tuple[Seam, ...] = (
    Seam(AIORTC, "aiortc.codecs.opus:OpusEncoder", "codec", ATTRIBUTE,
         "pipeline/webrtc/opus_sender.py:LowDelayOpusEncoder.__init__",
         "its options switched to lowdelay/10 ms before the codec opens",
         "kept: no encoder options in aiortc", instance="opus_encoder", private=False,
         library_reads=("packets += self.codec.encode(frame)",)),
    Seam(AIORTC, "aiortc.codecs.opus:OpusEncoder", "resampler", ATTRIBUTE,
         "pipeline/webrtc/opus_sender.py:LowDelayOpusEncoder.__init__",
         "replaced by one cutting 10 ms frames, primed with silence in encode()",
         "kept: no frame-size option in aiortc", instance="opus_encoder", private=False,
         library_reads=("for frame in self.resampler.resample(frame):",)),
    Seam("faster-whisper", "faster_whisper.transcribe:WhisperModel", "model", LIBRARY_WRITES,
         "services/whisper_window.py:ShortWindowDecoder.decode",
         "CTranslate2's Whisper, encoded and generated on a short window",
         "kept: faster-whisper always pads to 30 s", private=False,
         library_reads=("self.model = ctranslate2.models.Whisper(",)),
    Seam("faster-whisper", "faster_whisper.transcribe:WhisperModel", "hf_tokenizer",
         LIBRARY_WRITES, "services/whisper_window.py:ShortWindowDecoder.__init__",
         "builds the Tokenizer for the timestamped prompt", "kept: as model", private=False,
         library_reads=("self.hf_tokenizer = tokenizers.Tokenizer.from_file(",)),
    Seam("faster-whisper", "faster_whisper.transcribe:WhisperModel", "feature_extractor",
         LIBRARY_WRITES, "services/whisper_window.py:ShortWindowDecoder.decode",
         "log-mel features of the short window", "kept: as model", private=False,
         library_reads=("self.feature_extractor = FeatureExtractor(",)),
    Seam("faster-whisper", "faster_whisper.tokenizer:Tokenizer", "sot_sequence", PROPERTY,
         "services/whisper_window.py:ShortWindowDecoder.prompt",
         "the prompt of a short-window decode", "kept: as model", private=False),
    Seam("faster-whisper", "faster_whisper.tokenizer:Tokenizer", "timestamp_begin", PROPERTY,
         "services/whisper_window.py:ShortWindowDecoder._segments_text",
         "tells timestamp tokens from text tokens", "kept: as model", private=False),
    Seam("faster-whisper", "faster_whisper.tokenizer:Tokenizer", "eot", PROPERTY,
         "services/whisper_window.py:ShortWindowDecoder._segments_text",
         "the end-of-text token", "kept: as model", private=False),
    Seam("faster-whisper", "faster_whisper.tokenizer:Tokenizer", "decode", METHOD,
         "services/whisper_window.py:ShortWindowDecoder._segments_text",
         "text of a segment's tokens", "kept: as model", private=False),
)  # fmt: skip

# Public names, not in this inventory, that a scan would take for private: stdlib modules.
_NOT_LIBRARY_OBJECTS = frozenset({"argparse"})

# The adapter modules, one per library: the only place a private library name may be used.
ADAPTERS = "services/seams/"
ADAPTERS_PACKAGE = "services.seams"


# --- instances built with minimal arguments ------------------------------------------------


async def _build_instances() -> dict[str, Any]:
    from aiortc import RTCConfiguration, RTCPeerConnection
    from aiortc.codecs.opus import OpusEncoder
    from pipecat.audio.turn.smart_turn.base_smart_turn import BaseSmartTurn
    from pipecat.audio.vad.vad_analyzer import VADAnalyzer
    from pipecat.services.openai.llm import OpenAILLMService
    from pipecat.services.stt_service import SegmentedSTTService
    from pipecat.services.tts_service import TTSService
    from pipecat.transports.base_transport import TransportParams
    from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
    from pipecat.transports.smallwebrtc.request_handler import SmallWebRTCRequestHandler
    from pipecat.transports.smallwebrtc.transport import RawAudioTrack, SmallWebRTCTransport

    class Tts(TTSService):
        async def run_tts(self, text: str, context_id: str) -> Any:
            yield None

    class Stt(SegmentedSTTService):
        async def run_stt(self, audio: bytes) -> Any:
            yield None

    class Vad(VADAnalyzer):
        def num_frames_required(self) -> int:
            return 512

        def voice_confidence(self, buffer: bytes) -> float:
            return 0.0

    class SmartTurn(BaseSmartTurn):
        def _predict_endpoint(self, audio_array: Any) -> dict[str, Any]:
            return {}

    vad = Vad()
    vad.set_sample_rate(16000)  # the VAD's window state is set here, not in __init__
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver("audio", direction="sendrecv")
    finally:
        await pc.close()
    return {
        "tts": Tts(sample_rate=24000),
        "stt": Stt(),
        "llm": OpenAILLMService(api_key="unused", settings=OpenAILLMService.Settings(model="m")),
        "vad": vad,
        "smart_turn": SmartTurn(),
        "audio_transceiver": transceiver,
        "audio_sender": transceiver.sender,
        "audio_receiver": transceiver.receiver,
        "raw_audio_track": RawAudioTrack(sample_rate=24000),
        "request_handler": SmallWebRTCRequestHandler(),
        "transport": SmallWebRTCTransport(SmallWebRTCConnection(), TransportParams()),
        "opus_encoder": OpusEncoder(),
    }


@functools.cache
def locked_packages() -> list[dict[str, Any]]:
    packages: list[dict[str, Any]] = tomllib.loads((ROOT / "uv.lock").read_text())["package"]
    return packages


@functools.cache
def instances() -> dict[str, Any]:
    return asyncio.run(_build_instances())


def resolve(owner: str) -> Any:
    module_name, _, qualname = owner.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in filter(None, qualname.split(".")):
        obj = getattr(obj, part)
    return obj


def source_sha256(obj: Any) -> str:
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()


# --- the checks ------------------------------------------------------------------------------


@pytest.mark.parametrize("package", sorted(PINNED))
def test_pinned_versions_are_the_ones_vouched_for(package: str) -> None:
    """The inventory below was checked against these versions, installed and locked."""
    installed = importlib.metadata.version(package)
    locked = {p["version"] for p in locked_packages() if p["name"] == package}
    assert installed == PINNED[package], (
        f"{package} {installed} is installed, but test_library_seams vouches for "
        f"{PINNED[package]}: re-check every SEAMS entry of {package}, then update PINNED"
    )
    assert locked == {PINNED[package]}, f"uv.lock pins {package} {locked}, not {PINNED[package]}"


@pytest.mark.parametrize("seam", SEAMS + UNDOCUMENTED, ids=lambda seam: seam.id)
def test_private_name_exists_as_we_use_it(seam: Seam) -> None:
    """The name is where our code expects it, of the kind it expects, and still used so."""
    version = importlib.metadata.version(seam.library)
    where = (
        f"{seam.library} {version}: {seam.owner} .{seam.name} ({seam.kind}), "
        f"used by {seam.used_by} ({seam.why})"
    )
    owner = resolve(seam.owner)
    if seam.kind == ATTRIBUTE:
        assert seam.instance is not None
        obj = instances()[seam.instance]
        assert isinstance(obj, owner), f"{where}: test instance is a {type(obj)}"
        assert hasattr(obj, seam.name), f"{where}: no longer set on a new instance"
        assert not inspect.ismethod(getattr(obj, seam.name)), f"{where}: is now a method"
    elif seam.kind in (METHOD, ASYNC_METHOD, PROPERTY, FUNCTION):
        static = inspect.getattr_static(owner, seam.name, None)
        assert static is not None, f"{where}: no longer defined"
        if seam.kind == PROPERTY:
            kind = (property, functools.cached_property)
            assert isinstance(static, kind), f"{where}: is now a {type(static)}"
        else:
            assert inspect.isfunction(static), f"{where}: is now a {type(static)}"
            is_async = inspect.iscoroutinefunction(static)
            assert is_async == (seam.kind == ASYNC_METHOD), f"{where}: async is now {is_async}"
    else:
        assert seam.kind in (LIBRARY_READS, LIBRARY_WRITES), seam.kind
        assert seam.library_reads, f"{where}: say where the library reads or writes it"
    reader = resolve(seam.library_module) if seam.library_module else owner
    for needle in seam.library_reads:
        assert needle in inspect.getsource(reader), (
            f"{where}: the library no longer contains {needle!r}, so our use no longer takes "
            "effect: re-check it"
        )
    if seam.copied_sha256 is not None:
        assert source_sha256(getattr(owner, seam.name)) == seam.copied_sha256, (
            f"{where}: the original of our copy changed in {seam.library} {version}: "
            f"re-check {seam.used_by} against it, then record the new sha256"
        )
    path, _, function = seam.used_by.partition(":")
    ours = (ROOT / path).read_text()
    assert re.search(rf"\b(def|class) {re.escape(function.rpartition('.')[2])}\b", ours), (
        f"{seam.used_by} not found: update the entry"
    )


# --- the adapters behave as their callers assume -------------------------------------------


@pytest.mark.asyncio
async def test_a_replaced_jitter_buffer_gets_each_packet_with_its_payload() -> None:
    """aiortc's receiver hands every packet to the buffer replace_jitter_buffer gave it, with
    the depayloaded bytes stored where depayloaded() reads them."""
    from aiortc import RTCConfiguration, RTCPeerConnection
    from aiortc.jitterbuffer import JitterFrame
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters
    from aiortc.rtp import RtpPacket

    from services.seams.aiortc_seams import depayloaded, replace_jitter_buffer

    got: list[bytes] = []

    class Recorder:
        def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
            got.append(depayloaded(packet))
            return False, None

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        receiver = pc.addTransceiver("audio", direction="recvonly").receiver
        replace_jitter_buffer(receiver, Recorder())
        # What receive() records from the negotiated parameters (it would also start threads).
        opus = RTCRtpCodecParameters(
            mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111
        )
        receiver._RTCRtpReceiver__codecs[111] = opus  # type: ignore[attr-defined]
        packet = RtpPacket(payload_type=111, sequence_number=7, timestamp=960, payload=b"opus")
        await receiver._handle_rtp_packet(packet, arrival_time_ms=0)
    finally:
        await pc.close()
    assert got == [b"opus"]


@pytest.mark.asyncio
async def test_a_sender_encodes_with_the_encoder_set_before_media_flows() -> None:
    """aiortc's sender encodes with set_sender_encoder's encoder instead of building its own."""
    from aiortc import RTCConfiguration, RTCPeerConnection
    from aiortc.codecs.base import Encoder
    from aiortc.mediastreams import AudioStreamTrack
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters
    from av.frame import Frame
    from av.packet import Packet

    from services.seams.aiortc_seams import (
        negotiated_codecs,
        sender_encoder,
        set_sender_encoder,
    )

    class Recorder(Encoder):
        frames = 0

        def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
            self.frames += 1
            return [b"ours"], 0

        def pack(self, packet: Packet) -> tuple[list[bytes], int]:
            return [b"ours"], 0

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        transceiver = pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
        assert negotiated_codecs(transceiver) == []  # before an answer
        sender = transceiver.sender
        assert sender_encoder(sender) is None
        ours = Recorder()
        set_sender_encoder(sender, ours)
        assert sender_encoder(sender) is ours
        opus = RTCRtpCodecParameters(
            mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111
        )
        encoded = await sender._next_encoded_frame(opus)
    finally:
        await pc.close()
    assert ours.frames == 1 and encoded is not None and encoded.payloads == [b"ours"]


@pytest.mark.asyncio
async def test_taken_audio_writes_leave_the_track_empty() -> None:
    """take_pending_audio_writes empties RawAudioTrack's queue and hands back its futures."""
    from pipecat.transports.smallwebrtc.transport import RawAudioTrack

    from services.seams.pipecat_seams import take_pending_audio_writes

    track = RawAudioTrack(sample_rate=24000)
    write = track.add_audio_bytes(bytes(960))  # 20 ms: two chunks, the future on the last
    assert take_pending_audio_writes(track) == [None, write]
    assert take_pending_audio_writes(track) == []
    assert take_pending_audio_writes(None) == []


@pytest.mark.asyncio
async def test_pipecat_answers_and_patches_from_the_peer_map() -> None:
    """PeerMapRequestHandler.peers is the map pipecat's handler looks peers up in."""
    from fastapi import HTTPException
    from pipecat.transports.smallwebrtc.request_handler import (
        IceCandidate,
        SmallWebRTCPatchRequest,
    )

    from services.seams.pipecat_seams import PeerMapRequestHandler

    added: list[object] = []

    class Peer:
        async def add_ice_candidate(self, candidate: object) -> None:
            added.append(candidate)

    handler = PeerMapRequestHandler(ice_servers=[])
    end_of_candidates = [IceCandidate(candidate="", sdp_mid="0", sdp_mline_index=0)]
    with pytest.raises(HTTPException):
        await handler.handle_patch_request(SmallWebRTCPatchRequest("a", end_of_candidates))
    handler.peers["a"] = Peer()  # type: ignore[assignment]
    await handler.handle_patch_request(SmallWebRTCPatchRequest("a", end_of_candidates))
    assert added == [None]


def test_the_transport_builds_its_output_with_the_hook() -> None:
    """OutputBuildingTransport.output() builds the output once, with build_output."""
    from pipecat.transports.base_transport import TransportParams
    from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
    from pipecat.transports.smallwebrtc.transport import (
        SmallWebRTCClient,
        SmallWebRTCOutputTransport,
    )

    from services.seams.pipecat_seams import OutputBuildingTransport

    built: list[tuple[object, str | None]] = []

    class Transport(OutputBuildingTransport):
        def build_output(
            self, client: SmallWebRTCClient, params: TransportParams, name: str | None
        ) -> SmallWebRTCOutputTransport:
            built.append((params, name))
            return super().build_output(client, params, name)

    params = TransportParams()
    transport = Transport(SmallWebRTCConnection(), params, output_name="out")
    output = transport.output()
    assert transport.output() is output and built == [(params, "out")]
    assert output.name == "out"


@pytest.mark.asyncio
async def test_pipecat_runs_the_handler_cleanup_at_teardown() -> None:
    """set_handler_cleanup's callable is awaited, once, when the LLM service is cleaned up."""
    from pipecat.services.llm_service import FunctionCallParams
    from pipecat.services.openai.llm import OpenAILLMService

    from services.seams.pipecat_seams import set_handler_cleanup

    closed: list[bool] = []

    async def close() -> None:
        closed.append(True)

    async def first(params: FunctionCallParams) -> None:
        return None

    async def second(params: FunctionCallParams) -> None:
        return None

    llm = OpenAILLMService(api_key="unused", settings=OpenAILLMService.Settings(model="m"))
    for name, handler in (("first", first), ("second", second)):
        set_handler_cleanup(handler, close)
        llm.register_function(name, handler)
    await llm.cleanup()
    assert closed == [True]


@pytest.mark.asyncio
async def test_the_ice_filter_is_consulted_and_removed() -> None:
    """install_ice_filter puts the filter in aioice's place; remove_ice_filter restores it."""
    import aioice.ice

    from services.seams.aioice_seams import install_ice_filter, remove_ice_filter

    class Nobody:
        def gather(self, use_ipv4: bool, use_ipv6: bool) -> list[str]:
            return ["127.0.0.1"]

        def accepts_candidate(self, host: str) -> bool:
            return False

        def allows(self, host: object) -> bool:
            return False

    received: list[object] = []

    class Receiver:
        def data_received(self, data: bytes, component: int) -> None:
            received.append(data)

    originals = (aioice.ice.get_host_addresses, aioice.ice.StunProtocol.datagram_received)
    install_ice_filter(Nobody())
    try:
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1"]
        protocol = aioice.ice.StunProtocol(Receiver())  # type: ignore[arg-type]
        protocol.datagram_received(b"not stun", ("192.0.2.1", 9))
    finally:
        remove_ice_filter()
    assert received == []
    assert (aioice.ice.get_host_addresses, aioice.ice.StunProtocol.datagram_received) == originals


@functools.cache
def _library_names(cls: type) -> frozenset[str]:
    """Private names a library class (and its library bases) define or set on ``self``."""
    names: set[str] = set()
    for base in cls.__mro__:
        if (base.__module__ or "").split(".")[0] not in LIBRARY_PACKAGES:
            continue
        names |= {name for name in vars(base) if name.startswith("_")}
        with contextlib.suppress(OSError, TypeError):  # no Python source (a C extension)
            names |= set(re.findall(r"self\.(_\w+)", inspect.getsource(base)))
    return frozenset(n for n in names if not (n.startswith("__") and n.endswith("__")))


def _imported_library_classes(
    imports: list[ast.ImportFrom], classes: list[ast.ClassDef]
) -> dict[str, type]:
    """The classes imported by name and subclassed, from a library or from an adapter (whose
    classes are library subclasses: theirs are the library's private names too)."""
    base_names = {b.id for node in classes for b in node.bases if isinstance(b, ast.Name)}
    found: dict[str, type] = {}
    for node in imports:
        if not node.module or not (
            node.module.split(".")[0] in LIBRARY_PACKAGES
            or node.module.startswith(ADAPTERS_PACKAGE)
        ):
            continue
        for alias in node.names:
            if (alias.asname or alias.name) in base_names:
                value = getattr(importlib.import_module(node.module), alias.name)
                if isinstance(value, type):
                    found[alias.asname or alias.name] = value
    return found


def _private_uses(path: Path) -> dict[str, list[int]]:
    """Private library names ``path`` uses, each with the lines it is used on: on
    ``self``/``super()`` of a class with a library base, and any ``x._name`` or
    ``getattr(x, "_name")`` on something that is not ``self``."""
    nodes = list(ast.walk(ast.parse(path.read_text())))
    classes = [node for node in nodes if isinstance(node, ast.ClassDef)]
    imports = [node for node in nodes if isinstance(node, ast.ImportFrom)]
    bases = _imported_library_classes(imports, classes)
    used: dict[str, set[int]] = {}
    for class_node in classes:
        names = [b.id for b in class_node.bases if isinstance(b, ast.Name) and b.id in bases]
        if names:
            theirs = frozenset().union(*(_library_names(bases[name]) for name in names))
            for sub in ast.walk(class_node):
                if isinstance(sub, ast.Attribute) and sub.attr in theirs:
                    used.setdefault(sub.attr, set()).add(sub.lineno)
                elif isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef) and sub.name in theirs:
                    used.setdefault(sub.name, set()).add(sub.lineno)
    for node in nodes:
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            value = node.value
            is_self = isinstance(value, ast.Name) and value.id in ("self", "cls")
            is_super = isinstance(value, ast.Call) and getattr(value.func, "id", "") == "super"
            stdlib = isinstance(value, ast.Name) and value.id in _NOT_LIBRARY_OBJECTS
            if not (is_self or is_super or stdlib or node.attr.endswith("__")):
                used.setdefault(node.attr, set()).add(node.lineno)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", "") in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and str(node.args[1].value).startswith("_")
        ):
            used.setdefault(str(node.args[1].value), set()).add(node.lineno)
    return {name: sorted(lines) for name, lines in used.items()}


@functools.cache
def _all_private_uses() -> dict[str, dict[str, list[int]]]:
    """Per file of pipeline/ and services/ (relative path), its private library names."""
    uses = {
        str(path.relative_to(ROOT)): _private_uses(path)
        for folder in ("pipeline", "services")
        for path in sorted((ROOT / folder).rglob("*.py"))
    }
    return {path: names for path, names in uses.items() if names}


def test_every_private_library_name_in_use_is_in_the_inventory() -> None:
    """A new private use (or one moved to another file) must be added to SEAMS, with its why."""
    listed = {(seam.used_by.partition(":")[0], seam.name) for seam in SEAMS}
    unlisted = sorted(
        f"{path}:{lines[0]}: {name}"
        for path, names in _all_private_uses().items()
        for name, lines in names.items()
        if (path, name) not in listed
    )
    assert not unlisted, (
        f"private library names used but not in SEAMS (add them with why and where): {unlisted}"
    )


def test_private_library_names_are_used_only_in_the_adapters() -> None:
    """Outside services/seams/, pipeline/ and services/ reach pipecat, aiortc and aioice through
    public names only."""
    outside = sorted(
        f"{path}:{line}: {name}"
        for path, names in _all_private_uses().items()
        if not path.startswith(ADAPTERS)
        for name, lines in names.items()
        for line in lines
    )
    assert not outside, (
        "private library names used outside services/seams/ (move each into the library's "
        f"adapter module there, behind a public name): {outside}"
    )
