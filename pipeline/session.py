"""One voice session: a fresh pipecat pipeline per WebRTC peer, over the shared runtime.

browser -> SmallWebRTC in -> peer watchdog -> audio ingress (repairs malformed frames, RNNoise)
-> Silero VAD on the denoised audio (speech start/stop and "the voice went quiet" as frames)
-> the microphone's own audio again -> Whisper -> user
aggregator (Smart Turn v3) -> prefill request -> device-request guard (when no device tool is
configured) -> LLM -> think filter -> empty-answer guard -> clause cutter -> Kokoro ->
SmallWebRTC out. A pipeline is never reused: pipecat silently drops TTS when one is restarted
for a second peer.
"""

from __future__ import annotations

import functools

from loguru import logger
from pipecat.audio.filters.rnnoise_filter import RNNoiseFilter
from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.turns.user_stop.turn_analyzer_user_turn_stop_strategy import (
    TurnAnalyzerUserTurnStopStrategy,
)
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from pipeline.audio.early_smart_turn import EarlySmartTurn, EarlySmartTurnStopStrategy
from pipeline.audio.endpointing_vad import EndpointingSileroVAD
from pipeline.audio.ingress import AudioIngress
from pipeline.audio.input_sink import InputAudioSink
from pipeline.audio.microphone_audio import MicrophoneAudioRestorer
from pipeline.audio.noise_filter import AlignedRNNoiseFilter
from pipeline.audio.voice_activity import VoiceActivityProcessor
from pipeline.config import AgentConfig, TurnConfig
from pipeline.conversation.device_requests import DeviceRequestGuard
from pipeline.conversation.empty_answer import EmptyAnswerGuard
from pipeline.conversation.keeper import ConversationKeeper
from pipeline.conversation.prefill_request import PrefillRequester
from pipeline.conversation.think_filter import ThinkFilter
from pipeline.ops.fallback import FailureResponder
from pipeline.ops.latency_report import LatencyReport, send_to_page
from pipeline.ops.metrics import Metrics
from pipeline.runtime import AgentRuntime
from pipeline.sessions.liveness import PeerWatchdog
from pipeline.sessions.party import Party
from pipeline.tools.registry import install_tools
from pipeline.webrtc.jitter import shorten_audio_jitter_buffers
from pipeline.webrtc.opus_sender import send_low_delay_opus
from pipeline.webrtc.shared_transport import SharedTransport
from services.llm import create_llm_service
from services.stt import LocalWhisperSTTService
from services.tts import LocalKokoroTTSService, clause_text_processor

AUDIO_IN_SAMPLE_RATE = 16000


def _transport(
    connection: SmallWebRTCConnection,
    runtime: AgentRuntime,
    *,
    out_10ms_chunks: int,
    noise_filter_in_transport: bool,
    party: Party | None = None,
) -> SmallWebRTCTransport:
    config = runtime.config
    in_transport = config.noise_filter and noise_filter_in_transport
    params = TransportParams(
        audio_in_enabled=True,
        audio_out_enabled=True,
        audio_in_sample_rate=AUDIO_IN_SAMPLE_RATE,
        audio_out_sample_rate=config.tts.sample_rate,
        audio_in_filter=RNNoiseFilter() if in_transport else None,
        audio_out_10ms_chunks=out_10ms_chunks,
    )
    if party is not None:
        return SharedTransport(connection, params, party)
    return SmallWebRTCTransport(webrtc_connection=connection, params=params)


def audio_ingress(config: AgentConfig) -> AudioIngress:
    """The input audio gate, with RNNoise when the config asks for noise filtering."""
    return AudioIngress(
        AUDIO_IN_SAMPLE_RATE,
        noise_filter=AlignedRNNoiseFilter() if config.noise_filter else None,
    )


def input_steps(config: AgentConfig) -> list[FrameProcessor]:
    """What microphone audio goes through before the STT: the ingress (repair, RNNoise), the
    VAD step on the denoised audio, then the microphone's own audio again for the speech models
    (pipeline.audio.microphone_audio)."""
    restore = config.noise_filter and not config.speech_models_hear_denoised
    return [
        audio_ingress(config),
        voice_activity(config.turn),
        *([MicrophoneAudioRestorer()] if restore else []),
    ]


def voice_activity(turn: TurnConfig) -> VoiceActivityProcessor:
    """Silero VAD as a pipeline step: with the energy drop on, the endpointing VAD, whose gate
    is the pipeline's one "the voice went quiet" signal (pipeline.audio.voice_activity)."""
    vad_params = VADParams(
        confidence=turn.vad_confidence,
        start_secs=turn.vad_start_secs,
        stop_secs=turn.vad_stop_secs,
    )
    vad = (
        EndpointingSileroVAD(
            params=vad_params,
            drop_db=turn.vad_energy_drop_db,
            sub_window_stop=turn.vad_sub_window_stop,
        )
        if turn.vad_energy_drop_db > 0
        else SileroVADAnalyzer(params=vad_params)
    )
    return VoiceActivityProcessor(vad_analyzer=vad)


def user_turn_aggregators(config: AgentConfig) -> LLMContextAggregatorPair:
    """A fresh context with its user aggregator deciding the turn's end with Smart Turn v3; the
    VAD's frames come from :func:`voice_activity`, ahead of it."""
    turn = config.turn
    smart_turn_params = SmartTurnParams(stop_secs=turn.smart_turn_stop_secs)
    stop: TurnAnalyzerUserTurnStopStrategy
    if turn.smart_turn_early_secs > 0:
        early = EarlySmartTurn(
            params=smart_turn_params,
            quiet_secs=turn.smart_turn_early_secs,
            pad_to_secs=turn.vad_stop_secs,
            nice=config.compute_nice,
        )
        stop = EarlySmartTurnStopStrategy(turn_analyzer=early)
    else:
        stop = TurnAnalyzerUserTurnStopStrategy(
            turn_analyzer=LocalSmartTurnAnalyzerV3(params=smart_turn_params)
        )
    return LLMContextAggregatorPair(
        LLMContext(),
        user_params=LLMUserAggregatorParams(user_turn_strategies=UserTurnStrategies(stop=[stop])),
    )


def _device_request_guard(config: AgentConfig, session_id: str) -> list[FrameProcessor]:
    """With no device tool, a device request is answered that nothing can be switched, rather
    than by a small model that says it did it (see pipeline.conversation.device_requests)."""
    tools = config.tools
    if tools.home_assistant or not tools.no_device_tool_answer:
        return []
    return [DeviceRequestGuard(tools.no_device_tool_answer, session_id=session_id)]


def _watchdog(
    connection: SmallWebRTCConnection, runtime: AgentRuntime, session_id: str
) -> PeerWatchdog:
    server = runtime.config.server
    return PeerWatchdog(
        connection,
        session_id,
        peer_timeout_secs=server.peer_timeout_secs,
        connect_timeout_secs=server.connect_timeout_secs,
    )


def build_worker(
    connection: SmallWebRTCConnection,
    runtime: AgentRuntime,
    session_id: str,
    party: Party | None = None,
) -> PipelineWorker:
    """Assemble the pipeline for one peer and return its (not yet running) worker.

    With ``party``, others can join the conversation (see pipeline.sessions.party): their audio is
    mixed into the input and they hear the bot too.
    """
    config = runtime.config
    if runtime.whisper is None or runtime.kokoro is None:
        raise RuntimeError("the runtime has not loaded its models")
    if config.variant == "stock":
        return _stock_worker(connection, runtime, session_id)
    # 20 ms output writes rather than pipecat's 40 ms: less to wait for before the first bot
    # sample leaves (it leaves in 10 ms Opus packets, see pipeline.webrtc.opus_sender).
    # RNNoise runs in the audio ingress, after malformed frames are repaired, not in the
    # transport (see pipeline.audio.ingress).
    transport = _transport(
        connection, runtime, out_10ms_chunks=2, noise_filter_in_transport=False, party=party
    )
    shorten_audio_jitter_buffers(connection.pc)
    send_low_delay_opus(connection.pc)
    aggregators = user_turn_aggregators(config)
    llm = create_llm_service(config.llm, runtime.llm_endpoint, runtime.llm_gate)
    install_tools(llm, aggregators.user().context, config.tools, session_id)
    processors: list[FrameProcessor] = [
        transport.input(),
        _watchdog(connection, runtime, session_id),
        *([party.mixer] if party is not None else []),
        *input_steps(config),
        LocalWhisperSTTService(runtime.whisper),
        aggregators.user(),
        InputAudioSink(),
        *([PrefillRequester(aggregators.user())] if config.llm.prefill else []),
        *_device_request_guard(config, session_id),
        llm,
        ThinkFilter(),
        EmptyAnswerGuard(llm),
        clause_text_processor(),
        LocalKokoroTTSService(runtime.kokoro),
        transport.output(),
        aggregators.assistant(),
    ]
    return _worker(
        processors,
        connection,
        runtime,
        session_id,
        transport,
        aggregators=aggregators,
        party=party,
    )


def stock_stt(config: AgentConfig) -> FrameProcessor:
    """pipecat's stock ``WhisperSTTService`` on the profile's model files (beam search,
    temperature fallback, 1 s transcript wait, its own model load per session)."""
    from pipecat.services.whisper.stt import WhisperSTTService as StockWhisperSTTService

    return StockWhisperSTTService(
        device=config.stt.device,
        compute_type=config.stt.compute_type,
        settings=StockWhisperSTTService.Settings(model=str(config.stt.model_dir)),
    )


def stock_user_aggregators() -> LLMContextAggregatorPair:
    """pipecat's default user aggregator, running its own Silero VAD and Smart Turn."""
    return LLMContextAggregatorPair(
        LLMContext(),
        user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer()),
    )


def _stock_worker(
    connection: SmallWebRTCConnection, runtime: AgentRuntime, session_id: str
) -> PipelineWorker:
    """pipecat's stock services on the same model files: the benchmark's baseline.

    Stock WhisperSTTService, sentence-level KokoroTTSService, default VAD and Smart Turn.
    """
    from pipecat.services.kokoro.tts import KokoroTTSService as StockKokoroTTSService

    config = runtime.config
    transport = _transport(connection, runtime, out_10ms_chunks=4, noise_filter_in_transport=True)
    aggregators = stock_user_aggregators()
    tts = StockKokoroTTSService(
        model_path=str(config.tts.model_path),
        voices_path=str(config.tts.voices_path),
        settings=StockKokoroTTSService.Settings(voice=config.tts.voice),
    )
    processors: list[FrameProcessor] = [
        transport.input(),
        _watchdog(connection, runtime, session_id),
        stock_stt(config),
        aggregators.user(),
        create_llm_service(config.llm, runtime.llm_endpoint, runtime.llm_gate),
        ThinkFilter(),
        tts,
        transport.output(),
        aggregators.assistant(),
    ]
    return _worker(processors, connection, runtime, session_id, transport)


def _worker(
    processors: list[FrameProcessor],
    connection: SmallWebRTCConnection,
    runtime: AgentRuntime,
    session_id: str,
    transport: SmallWebRTCTransport,
    *,
    aggregators: LLMContextAggregatorPair | None = None,
    party: Party | None = None,
) -> PipelineWorker:
    """Wrap the processors in a worker with metrics, the latency report and the greeting.

    With ``aggregators``, the session keeps its turns in the history and its context window
    rolling (see pipeline.conversation.keeper). With ``party``, the session outlives its host
    while anyone who joined is still in the conversation, and ends when the last one leaves.
    """
    config = runtime.config
    keeper = (
        ConversationKeeper(
            config, aggregators, runtime.history, runtime.llm_endpoint, session_id=session_id
        )
        if aggregators is not None
        else None
    )
    worker = PipelineWorker(
        Pipeline(processors),
        params=PipelineParams(
            audio_in_sample_rate=AUDIO_IN_SAMPLE_RATE,
            audio_out_sample_rate=config.tts.sample_rate,
            enable_metrics=True,
        ),
        conversation_id=session_id,
        # A household session may sit quietly for a long time; the peer's liveness, not
        # silence, decides when it ends.
        idle_timeout_secs=None,
    )
    report = LatencyReport(
        functools.partial(send_to_page, worker),
        session_id,
        runtime.metrics,
        stop_secs=config.turn.vad_stop_secs,
        on_report=keeper.on_latency if keeper is not None else None,
    )
    for observer in report.observers:
        worker.add_observer(observer)
    FailureResponder(worker, session_id, runtime.metrics)
    if keeper is not None:
        worker.add_event_handler("on_pipeline_error", keeper.on_error)

    @transport.event_handler("on_client_connected")
    async def on_client_connected(_transport: SmallWebRTCTransport, _client: object) -> None:
        logger.info(f"[{session_id}] client connected")
        resumed = keeper is not None and await keeper.begin()
        greeting = config.resume_greeting if resumed else config.greeting
        if greeting:
            await worker.queue_frames([TTSSpeakFrame(greeting)])

    ended = False

    async def end() -> None:
        nonlocal ended
        if ended:
            return
        ended = True
        if keeper is not None:
            await keeper.end()
        await worker.cancel()

    if party is not None:
        party.open(out_sample_rate=config.tts.sample_rate, on_empty=end)

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport: SmallWebRTCTransport, _client: object) -> None:
        logger.info(f"[{session_id}] client disconnected")
        if party is not None and await party.host_left():
            return
        await end()

    return worker


async def run_session(
    worker: PipelineWorker, session_id: str, metrics: Metrics | None = None
) -> None:
    """Run one session's pipeline until the peer leaves or the server shuts down."""
    runner = WorkerRunner(handle_sigint=False, handle_sigterm=False)
    await runner.add_workers(worker)
    if metrics is not None:
        metrics.session_started()
    try:
        await runner.run()
    except Exception:
        logger.exception(f"[{session_id}] session failed")
        raise
    finally:
        if metrics is not None:
            metrics.session_ended()
        logger.info(f"[{session_id}] session ended")
