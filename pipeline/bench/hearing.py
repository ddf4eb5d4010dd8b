"""``jetvoice bench --hearing``: how well the live pipeline hears recorded human speech.

Each recording (a folder of 16-bit WAV files and a ``transcripts.json`` of what is said in
them) is spoken into a pipeline built from the same factories as a session
(:mod:`pipeline.session`) at real-time pacing: 0.5 s of silence, the recording, 2.5 s of
silence, in 20 ms frames. Before the pipeline the audio takes the microphone's way in: up to
the browser's 48 kHz, then down to 16 kHz through the same libswresample resampler the WebRTC
transport uses. What the STT hands to the user aggregator is scored with
:mod:`pipeline.bench.wer`, beside:

* ``offline``: the same Whisper model on the whole recording at once, greedy, no context: what
  the model itself can hear;
* ``stock``: pipecat's stock path on the same model files (RNNoise in the transport, the VAD in
  the user aggregator, pipecat's ``WhisperSTTService``), as ``jetvoice serve --pipeline stock``;
* ``tuned``: jetvoice's path (ingress with RNNoise for the VAD, the endpointing VAD step, the
  early transcript, Whisper on a window cut to the segment);
* with ``--suspects``: the tuned path with one thing changed at a time (see ``SUSPECTS``).

The latency column is from the end of the recording's speech (its last sample above -45 dBFS)
to the last transcript the STT hands on for it: what a suspect costs in time.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soxr
from pipecat.frames.frames import Frame, InputAudioRawFrame, StartFrame, TranscriptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_transport import TransportParams

from pipeline.audio.stream_resampler import StreamResampler
from pipeline.bench.client.audio_clip import load_wav
from pipeline.bench.paths import DEFAULT_OUT_DIR
from pipeline.bench.wer import WordErrorRate, corpus_wer, wer
from pipeline.config import AgentConfig
from pipeline.session import (
    AUDIO_IN_SAMPLE_RATE,
    input_steps,
    stock_stt,
    stock_user_aggregators,
    user_turn_aggregators,
)
from services.stt import LocalWhisperSTTService, WhisperEngine

SAMPLE_RATE = AUDIO_IN_SAMPLE_RATE
# What a browser captures and Opus carries; the transport resamples it to the pipeline's rate.
MICROPHONE_RATE = 48_000
FRAME_MS = 20
LEAD_SECS = 0.5
# Longer than any turn's end (VAD stop, Smart Turn's 1.5 s fallback) plus a slow decode.
TAIL_SECS = 2.5
# Speech ends at the last sample above this level (the fixtures' own trim level).
_SPEECH_FLOOR_DBFS = -45.0


@dataclass(frozen=True)
class Recording:
    """One recording: 16 kHz mono float32 audio and what is said in it."""

    name: str
    audio: npt.NDArray[np.float32]
    reference: str

    @property
    def seconds(self) -> float:
        """The recording's length."""
        return self.audio.size / SAMPLE_RATE

    @property
    def speech_end(self) -> int:
        """The sample after the last one above the speech floor."""
        floor = 10 ** (_SPEECH_FLOOR_DBFS / 20)
        loud = np.flatnonzero(np.abs(self.audio) > floor)
        return int(loud[-1]) + 1 if loud.size else self.audio.size


def at_pipeline_rate(samples: npt.NDArray[np.float32], rate: int) -> npt.NDArray[np.float32]:
    """Mono float32 audio at ``rate`` as the pipeline's 16 kHz."""
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples, rate, SAMPLE_RATE)
    return samples.astype(np.float32)


def read_wav(path: Path) -> npt.NDArray[np.float32]:
    """A PCM WAV file as 16 kHz mono float32 (the benchmark client's loader, resampled)."""
    return at_pipeline_rate(*load_wav(path))


def load_recordings(folder: Path) -> list[Recording]:
    """Every recording that ``folder/transcripts.json`` names, in its order.

    Raises:
        FileNotFoundError: no transcripts.json, or a recording it names is missing.
    """
    index = folder / "transcripts.json"
    if not index.is_file():
        raise FileNotFoundError(f"{index} not found: a recordings folder needs one")
    transcripts: dict[str, str] = json.loads(index.read_text())
    return [Recording(name, read_wav(folder / name), text) for name, text in transcripts.items()]


@dataclass(frozen=True)
class Heard:
    """What one path heard of one recording."""

    text: str
    # Transcripts handed on (one per segment the VAD cut).
    pieces: int
    # From the end of speech to the last transcript; None offline.
    latency_ms: float | None


@dataclass(frozen=True)
class PathResult:
    """One path over all recordings."""

    name: str
    description: str
    heard: dict[str, Heard]
    wer: WordErrorRate
    per_recording: dict[str, WordErrorRate]

    @property
    def latency_p50_ms(self) -> float | None:
        """Median transcript latency over the recordings."""
        values = [h.latency_ms for h in self.heard.values() if h.latency_ms is not None]
        return statistics.median(values) if values else None


@dataclass(frozen=True)
class LivePath:
    """A way from the microphone to a transcript: tuned (a config change on top), or stock."""

    name: str
    description: str
    stock: bool = False
    change: Callable[[AgentConfig], AgentConfig] = lambda config: config
    # Through the transport's 48 kHz -> 16 kHz resampler, as a browser's audio arrives.
    from_microphone_rate: bool = True


def _stt(replace: Callable[..., object]) -> Callable[[AgentConfig], AgentConfig]:
    def change(config: AgentConfig) -> AgentConfig:
        return dataclasses.replace(config, stt=replace(config.stt))  # type: ignore[arg-type]

    return change


def _stt_path(name: str, description: str, **changes: object) -> LivePath:
    """The tuned path with ``changes`` to its STT config."""
    return LivePath(name, description, change=_stt(lambda stt: dataclasses.replace(stt, **changes)))


def _turn(replace: Callable[..., object]) -> Callable[[AgentConfig], AgentConfig]:
    def change(config: AgentConfig) -> AgentConfig:
        return dataclasses.replace(config, turn=replace(config.turn))  # type: ignore[arg-type]

    return change


TUNED = LivePath("tuned", "jetvoice's path")
STOCK = LivePath("stock", "pipecat's stock path on the same model", stock=True)
# Each suspect is the tuned path with one thing changed.
SUSPECTS: tuple[LivePath, ...] = (
    _stt_path(
        "full-window",
        "Whisper on its full 30 s window, not one cut to the segment",
        short_window=False,
    ),
    _stt_path(
        "no-early",
        "no early transcript: each segment decoded at the VAD's stop",
        early_transcript_secs=0.0,
    ),
    _stt_path(
        "early-40ms",
        "the early transcript after 40 ms of quiet, not 120",
        early_transcript_secs=0.04,
    ),
    _stt_path(
        "early-80ms",
        "the early transcript after 80 ms of quiet, not 120",
        early_transcript_secs=0.08,
    ),
    _stt_path(
        "no-turn-context",
        "each segment decoded alone, not after the turn's earlier segments",
        turn_context=False,
    ),
    _stt_path("beam-5", "beam search (5) instead of greedy decoding", beam_size=5),
    LivePath(
        "denoised-stt",
        "Whisper and Smart Turn hear RNNoise's output too, not only the VAD",
        change=lambda config: dataclasses.replace(config, speech_models_hear_denoised=True),
    ),
    LivePath(
        "no-rnnoise",
        "no RNNoise",
        change=lambda config: dataclasses.replace(config, noise_filter=False),
    ),
    LivePath(
        "16k-direct",
        "audio fed at 16 kHz, not resampled from the microphone's 48 kHz",
        from_microphone_rate=False,
    ),
    LivePath(
        "plain-vad",
        "pipecat's Silero VAD, without the energy gate or the sub-window stop",
        change=_turn(lambda turn: dataclasses.replace(turn, vad_energy_drop_db=0.0)),
    ),
)


# Other models on the tuned path; each must be pulled first (`jetvoice models pull --model ID`).
OTHER_MODELS: tuple[LivePath, ...] = (
    LivePath(
        "whisper-base",
        "Whisper base (multilingual, 74 M parameters) instead of tiny.en",
        change=_stt(
            lambda stt: dataclasses.replace(stt, model_dir=stt.model_dir.with_name("whisper-base"))
        ),
    ),
)


class FeedInput(BaseInputTransport):
    """An input transport fed by frames pushed into the pipeline (the harness, the tests): they
    take the transport's own audio path."""

    async def start(self, frame: StartFrame) -> None:
        """Ready at once (a real transport is ready when its peer connects)."""
        await super().start(frame)
        await self.set_transport_ready(frame)


class _SpeechClock(FrameProcessor):
    """Notes when the audio frame that holds the end of speech arrives."""

    def __init__(self, speech_end: int) -> None:
        super().__init__()
        self._speech_end = speech_end
        self._samples = 0
        self.ended_at: float | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Count the samples; pass everything on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame) and self.ended_at is None:
            self._samples += len(frame.audio) // 2
            if self._samples >= self._speech_end:
                self.ended_at = time.perf_counter()
        await self.push_frame(frame, direction)


class _TranscriptTap(FrameProcessor):
    """Keeps every transcript the STT hands on, with when it came."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.last_at: float | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Keep transcripts; pass everything on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame) and direction == FrameDirection.DOWNSTREAM:
            self.texts.append(frame.text.strip())
            self.last_at = time.perf_counter()
        await self.push_frame(frame, direction)


def microphone_frames(recording: Recording, *, from_microphone_rate: bool) -> list[bytes]:
    """The recording with its lead and tail silence, as the transport would hand it on: 20 ms
    frames of 16 kHz int16, through the 48 kHz round trip when ``from_microphone_rate``."""
    lead = np.zeros(int(LEAD_SECS * SAMPLE_RATE), dtype=np.float32)
    tail = np.zeros(int(TAIL_SECS * SAMPLE_RATE), dtype=np.float32)
    audio = np.concatenate([lead, recording.audio, tail])
    if from_microphone_rate:
        audio = soxr.resample(audio, SAMPLE_RATE, MICROPHONE_RATE).astype(np.float32)
    pcm = np.clip(np.rint(audio * 32767), -32768, 32767).astype(np.int16)
    rate = MICROPHONE_RATE if from_microphone_rate else SAMPLE_RATE
    step = rate * FRAME_MS // 1000
    chunks = [pcm[i : i + step].tobytes() for i in range(0, pcm.size, step)]
    if not from_microphone_rate:
        return chunks
    resampler = StreamResampler(MICROPHONE_RATE, SAMPLE_RATE)
    return [out for out in (resampler.resample(chunk) for chunk in chunks) if out]


def _live_processors(
    path: LivePath, config: AgentConfig, engine: WhisperEngine | None, tap: _TranscriptTap
) -> list[FrameProcessor]:
    params = TransportParams(audio_in_enabled=True, audio_in_sample_rate=SAMPLE_RATE)
    if path.stock:
        from pipecat.audio.filters.rnnoise_filter import RNNoiseFilter

        params.audio_in_filter = RNNoiseFilter() if config.noise_filter else None
        return [FeedInput(params), stock_stt(config), tap, stock_user_aggregators().user()]
    assert engine is not None
    return [
        FeedInput(params),
        *input_steps(config),
        LocalWhisperSTTService(engine),
        tap,
        user_turn_aggregators(config).user(),
    ]


async def hear_live(
    path: LivePath, config: AgentConfig, engine: WhisperEngine | None, recording: Recording
) -> Heard:
    """Speak ``recording`` into a fresh pipeline for ``path`` in real time; what the STT heard."""
    clock = _SpeechClock(int(LEAD_SECS * SAMPLE_RATE) + recording.speech_end)
    tap = _TranscriptTap()
    pipeline = Pipeline([clock, *_live_processors(path, config, engine, tap)])
    frames: list[Frame] = []
    for chunk in microphone_frames(recording, from_microphone_rate=path.from_microphone_rate):
        frames.append(InputAudioRawFrame(audio=chunk, sample_rate=SAMPLE_RATE, num_channels=1))
        frames.append(SleepFrame(sleep=len(chunk) / 2 / SAMPLE_RATE))
    await run_test(
        pipeline,
        frames_to_send=frames,
        pipeline_params=PipelineParams(audio_in_sample_rate=SAMPLE_RATE),
        start_timeout=30,
    )
    latency = (
        1000 * (tap.last_at - clock.ended_at)
        if tap.last_at is not None and clock.ended_at is not None
        else None
    )
    return Heard(" ".join(t for t in tap.texts if t), len(tap.texts), latency)


def hear_offline(engine: WhisperEngine, recording: Recording) -> Heard:
    """The whole recording in one decode: faster-whisper's own 30 s window, greedy, no context,
    no no-speech filter."""
    segments, _info = engine.model.transcribe(
        recording.audio,
        language=engine.config.language or None,
        beam_size=1,
        best_of=1,
        temperature=0.0,
        condition_on_previous_text=False,
        without_timestamps=True,
        vad_filter=False,
    )
    texts = [segment.text.strip() for segment in segments]
    return Heard(" ".join(texts), len(texts), None)


def _score(
    name: str, description: str, recordings: Sequence[Recording], heard: dict[str, Heard]
) -> PathResult:
    per = {r.name: wer(r.reference, heard[r.name].text) for r in recordings}
    overall = corpus_wer([(r.reference, heard[r.name].text) for r in recordings])
    return PathResult(name, description, heard, overall, per)


async def run_path(
    path: LivePath,
    base: AgentConfig,
    recordings: Sequence[Recording],
    progress: Callable[[str], None],
) -> PathResult:
    """Every recording through ``path``, one fresh pipeline each."""
    config = path.change(base)
    engine = None
    if not path.stock:
        engine = WhisperEngine(config.stt)
        await asyncio.to_thread(engine.warm_up)
    heard: dict[str, Heard] = {}
    for recording in recordings:
        heard[recording.name] = await hear_live(path, config, engine, recording)
        result = wer(recording.reference, heard[recording.name].text)
        progress(
            f"  {path.name} {recording.name}: {result.errors} errors: {heard[recording.name].text}"
        )
    return _score(path.name, path.description, recordings, heard)


def run_offline(base: AgentConfig, recordings: Sequence[Recording]) -> PathResult:
    """Every recording decoded whole by the same model."""
    engine = WhisperEngine(dataclasses.replace(base.stt, short_window=False))
    heard = {r.name: hear_offline(engine, r) for r in recordings}
    return _score("offline", "the same model on the whole recording, greedy", recordings, heard)


def run_hearing(
    base: AgentConfig,
    recordings: Sequence[Recording],
    paths: Sequence[LivePath],
    progress: Callable[[str], None],
) -> list[PathResult]:
    """Offline first, then each live path in turn (never two at once: they share two cores)."""
    results = [run_offline(base, recordings)]
    progress(f"offline: WER {_percent(results[0].wer)}")
    for path in paths:
        progress(f"{path.name}: {path.description}")
        result = asyncio.run(run_path(path, base, recordings, progress))
        progress(f"{path.name}: WER {_percent(result.wer)}")
        results.append(result)
    return results


def _percent(result: WordErrorRate) -> str:
    return "n/a" if result.rate is None else f"{100 * result.rate:.1f}%"


def report_table(recordings: Sequence[Recording], results: Sequence[PathResult]) -> str:
    """Markdown: errors per recording and path, then WER and transcript latency per path."""
    names = [r.name for r in results]
    lines = [
        "| recording | s | words | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for recording in recordings:
        cells = [str(result.per_recording[recording.name].errors) for result in results]
        words = results[0].per_recording[recording.name].reference_words
        lines.append(
            f"| {recording.name} | {recording.seconds:.1f} | {words} | " + " | ".join(cells) + " |"
        )
    lines.append("| **WER** | | | " + " | ".join(_percent(r.wer) for r in results) + " |")
    latencies = ["" if r.latency_p50_ms is None else f"{r.latency_p50_ms:.0f}" for r in results]
    lines.append("| transcript latency p50 (ms) | | | " + " | ".join(latencies) + " |")
    return "\n".join(lines)


def report_json(
    recordings: Sequence[Recording], results: Sequence[PathResult]
) -> dict[str, object]:
    """Everything measured, per path and recording."""
    return {
        "recordings": {
            r.name: {"seconds": round(r.seconds, 2), "reference": r.reference} for r in recordings
        },
        "paths": [
            {
                "name": result.name,
                "description": result.description,
                "wer": result.wer.rate,
                "errors": result.wer.errors,
                "reference_words": result.wer.reference_words,
                "latency_p50_ms": result.latency_p50_ms,
                "heard": {name: dataclasses.asdict(h) for name, h in result.heard.items()},
            }
            for result in results
        ],
    }


def hearing_config(profile: str, models_dir: Path | None) -> AgentConfig:
    """The profile's STT and turn settings, as ``jetvoice serve`` builds them (no LLM needed)."""
    from models.paths import profile_paths
    from models.store import ModelStore, default_models_dir
    from pipeline.config import LLMConfig, STTConfig, TTSConfig

    store = ModelStore(models_dir or default_models_dir())
    paths = profile_paths(profile, store)
    return AgentConfig(
        profile=paths.profile,
        stt=STTConfig(
            model_dir=paths.stt_dir,
            device="cuda" if paths.device == "cuda" else "cpu",
            compute_type=store.catalog.profile(profile).stt_compute_type,
        ),
        tts=TTSConfig(model_path=paths.tts_path, voices_path=paths.voices_path),
        # Never called: the harness stops at the user aggregator.
        llm=LLMConfig(server="external", base_url="http://127.0.0.1:9/v1"),
        warmup=False,
    )


def corpus_recordings(profile: str, models_dir: Path | None) -> list[Recording]:
    """The benchmark corpus's turns (recorded fixtures and Kokoro speech, synthesized into the
    benchmark's cache when missing) as recordings, each once."""
    from models.paths import profile_paths
    from models.store import ModelStore, default_models_dir
    from pipeline.bench.benchmark import kokoro_synthesizer
    from pipeline.bench.corpus import CorpusSources, load_corpus, prepare, selected_turns
    from pipeline.bench.environment import model_sha256
    from pipeline.bench.paths import DEFAULT_CACHE, DEFAULT_FIXTURES

    store = ModelStore(models_dir or default_models_dir())
    paths = profile_paths(profile, store)
    sources = CorpusSources(
        fixtures_dir=DEFAULT_FIXTURES,
        cache_dir=DEFAULT_CACHE,
        tts_model_sha256=model_sha256(store.catalog, paths.tts_model),
        voices_sha256=model_sha256(store.catalog, paths.voices_model),
    )
    turns = [turn for _, turn in selected_turns(load_corpus(), None)]
    prepared = prepare(
        turns, sources, lambda: kokoro_synthesizer(paths.tts_path, paths.voices_path)
    )
    return [
        Recording(turn_id, at_pipeline_rate(u.samples, u.sample_rate), u.spec.text)
        for turn_id, u in prepared.items()
    ]


def run_hearing_bench(args: argparse.Namespace) -> int:
    """``jetvoice bench --hearing``: print the table and (always) write the JSON."""
    from pipeline.bench.environment import cpu_name

    recordings = (
        corpus_recordings(args.profile, args.models_dir)
        if str(args.recordings) == "corpus"
        else load_recordings(args.recordings)
    )
    config = hearing_config(args.profile, args.models_dir)
    paths = [TUNED, STOCK, *SUSPECTS] if args.suspects else [TUNED, STOCK]
    if args.paths:
        known = {path.name: path for path in (TUNED, STOCK, *SUSPECTS, *OTHER_MODELS)}
        wanted = [name.strip() for name in args.paths.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise ValueError(
                f"--paths: no path named {', '.join(unknown)}; known: {', '.join(known)}"
            )
        paths = [known[name] for name in wanted]
    _progress(
        f"hearing: {len(recordings)} recordings, {sum(r.seconds for r in recordings):.0f} s, "
        f"paths {', '.join(p.name for p in paths)}, on {cpu_name()}"
    )
    results = run_hearing(config, recordings, paths, _progress)
    print(report_table(recordings, results))
    document = {"cpu": cpu_name(), "profile": args.profile, **report_json(recordings, results)}
    json_path = args.json or DEFAULT_OUT_DIR / f"hearing-{time.strftime('%Y%m%d-%H%M%S')}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(document, indent=2))
    _progress(f"wrote {json_path}")
    return 0


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
