"""One voice session: a fresh pipecat pipeline per WebRTC peer, over the shared runtime.

browser -> SmallWebRTC in -> RNNoise -> (Silero VAD + Smart Turn v3 in the user aggregator)
-> Whisper -> LLM -> think filter -> Kokoro -> SmallWebRTC out. A pipeline is never reused:
pipecat silently drops TTS when one is restarted for a second peer.
"""

from __future__ import annotations

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

from pipeline.fallback import FailureResponder
from pipeline.jitter import shorten_audio_jitter_buffers
from pipeline.latency_report import LatencyReport
from pipeline.metrics import Metrics
from pipeline.runtime import AgentRuntime
from pipeline.think_filter import ThinkFilter
from services.llm import create_llm_service
from services.stt import WhisperSTTService
from services.tts import KokoroTTSService

AUDIO_IN_SAMPLE_RATE = 16000


def _transport(
    connection: SmallWebRTCConnection, runtime: AgentRuntime, *, out_10ms_chunks: int
) -> SmallWebRTCTransport:
    config = runtime.config
    return SmallWebRTCTransport(
        webrtc_connection=connection,
        params=TransportParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            audio_in_sample_rate=AUDIO_IN_SAMPLE_RATE,
            audio_out_sample_rate=config.tts.sample_rate,
            audio_in_filter=RNNoiseFilter() if config.noise_filter else None,
            audio_out_10ms_chunks=out_10ms_chunks,
        ),
    )


def build_worker(
    connection: SmallWebRTCConnection, runtime: AgentRuntime, session_id: str
) -> PipelineWorker:
    """Assemble the pipeline for one peer and return its (not yet running) worker."""
    config = runtime.config
    if runtime.whisper is None or runtime.kokoro is None:
        raise RuntimeError("the runtime has not loaded its models")
    if config.variant == "stock":
        return _stock_worker(connection, runtime, session_id)
    # 20 ms output packets (one Opus frame) rather than pipecat's 40 ms: less to wait for
    # before the first bot sample leaves.
    transport = _transport(connection, runtime, out_10ms_chunks=2)
    shorten_audio_jitter_buffers(connection.pc)
    turn = config.turn
    vad = SileroVADAnalyzer(
        params=VADParams(
            confidence=turn.vad_confidence,
            start_secs=turn.vad_start_secs,
            stop_secs=turn.vad_stop_secs,
        )
    )
    smart_turn = LocalSmartTurnAnalyzerV3(
        params=SmartTurnParams(stop_secs=turn.smart_turn_stop_secs)
    )
    context = LLMContext()
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=vad,
            user_turn_strategies=UserTurnStrategies(
                stop=[TurnAnalyzerUserTurnStopStrategy(turn_analyzer=smart_turn)]
            ),
        ),
    )
    processors: list[FrameProcessor] = [
        transport.input(),
        WhisperSTTService(runtime.whisper),
        aggregators.user(),
        create_llm_service(config.llm, runtime.llm_endpoint),
        ThinkFilter(),
        KokoroTTSService(runtime.kokoro),
        transport.output(),
        aggregators.assistant(),
    ]
    return _worker(processors, connection, runtime, session_id, transport)


def _stock_worker(
    connection: SmallWebRTCConnection, runtime: AgentRuntime, session_id: str
) -> PipelineWorker:
    """pipecat's stock services on the same model files: the benchmark's baseline.

    Stock WhisperSTTService (beam search, temperature fallback, 1 s transcript wait, its own
    model load per session), sentence-level KokoroTTSService, default VAD and Smart Turn.
    """
    from pipecat.services.kokoro.tts import KokoroTTSService as StockKokoroTTSService
    from pipecat.services.whisper.stt import WhisperSTTService as StockWhisperSTTService

    config = runtime.config
    transport = _transport(connection, runtime, out_10ms_chunks=4)
    aggregators = LLMContextAggregatorPair(
        LLMContext(),
        user_params=LLMUserAggregatorParams(vad_analyzer=SileroVADAnalyzer()),
    )
    stt = StockWhisperSTTService(
        device=config.stt.device,
        compute_type=config.stt.compute_type,
        settings=StockWhisperSTTService.Settings(model=str(config.stt.model_dir)),
    )
    tts = StockKokoroTTSService(
        model_path=str(config.tts.model_path),
        voices_path=str(config.tts.voices_path),
        settings=StockKokoroTTSService.Settings(voice=config.tts.voice),
    )
    processors: list[FrameProcessor] = [
        transport.input(),
        stt,
        aggregators.user(),
        create_llm_service(config.llm, runtime.llm_endpoint),
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
) -> PipelineWorker:
    """Wrap the processors in a worker with metrics, the latency report and the greeting."""
    config = runtime.config
    report = LatencyReport(
        connection, session_id, runtime.metrics, stop_secs=config.turn.vad_stop_secs
    )
    worker = PipelineWorker(
        Pipeline(processors),
        observers=report.observers,
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

    FailureResponder(worker, connection, session_id, runtime.metrics)

    @transport.event_handler("on_client_connected")
    async def on_client_connected(_transport: SmallWebRTCTransport, _client: object) -> None:
        logger.info(f"[{session_id}] client connected")
        if config.greeting:
            await worker.queue_frames([TTSSpeakFrame(config.greeting)])

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(_transport: SmallWebRTCTransport, _client: object) -> None:
        logger.info(f"[{session_id}] client disconnected")
        await worker.cancel()

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
