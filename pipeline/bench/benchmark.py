"""A whole benchmark run: corpus, environment, each variant in turn, then table, JSON and PNG."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from models.paths import ProfilePaths, profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.bench.cli import BenchConfig
from pipeline.bench.corpus import (
    CorpusSources,
    Synthesizer,
    Utterance,
    load_corpus,
    plan_calls,
    prepare,
    selected_turns,
)
from pipeline.bench.driver import DriverConfig
from pipeline.bench.environment import collect_environment, model_sha256
from pipeline.bench.plot import INSTALL_HINT, plot_available, write_plot
from pipeline.bench.prefix_cache import PrefixCacheResult, run_probe
from pipeline.bench.report import build_json, format_report, summarize_run, write_json
from pipeline.bench.runner import VariantRun, run_server_url, run_started_server
from pipeline.config import LLMConfig


class BenchError(RuntimeError):
    """The benchmark cannot run (missing models, an unusable corpus); the message says why."""


def kokoro_synthesizer(model_path: os.PathLike[str], voices_path: os.PathLike[str]) -> Synthesizer:
    """Load Kokoro and return a (text, voice) -> 24 kHz float32 synthesizer."""
    from pathlib import Path

    from pipeline.config import TTSConfig
    from services.tts import KokoroEngine

    engine = KokoroEngine(TTSConfig(model_path=Path(model_path), voices_path=Path(voices_path)))
    known = set(engine.kokoro.get_voices())

    def synthesize(text: str, voice: str) -> Any:
        if voice not in known:
            raise BenchError(f"Kokoro voice {voice!r} is not in the voices file")
        return engine.synthesize(text, voice=voice)

    return synthesize


def _prefix_cache_probe(
    paths: ProfilePaths, progress: Callable[[str], None]
) -> PrefixCacheResult | None:
    """TTFT with and without the cached system prompt, on a server like the agent's own."""
    if paths.device == "cuda":
        config = LLMConfig(server="vllm", model_path=paths.llm_path)
    else:
        config = LLMConfig(server="llamacpp", model_path=paths.llm_path)
    progress("prefix cache: timing the LLM's first token with and without the cached prompt")
    try:
        return run_probe(config)
    except Exception as error:  # noqa: BLE001 - the probe is a side measurement; report, go on
        progress(f"prefix cache probe failed: {error}")
        return None


def _offline_transcripts(
    config: BenchConfig,
    utterances: dict[str, Utterance],
    progress: Callable[[str], None],
) -> dict[str, str]:
    """Each turn's clip decoded whole by the same Whisper model, offline (after the servers
    have stopped, so it competes with nothing): what the model itself hears of the corpus."""
    from pipeline.bench.hearing import Recording, at_pipeline_rate, hear_offline, hearing_config
    from services.stt import WhisperEngine

    stt = hearing_config(config.profile, config.models_dir).stt
    engine = WhisperEngine(replace(stt, short_window=False))
    heard = {
        turn_id: hear_offline(
            engine,
            Recording(turn_id, at_pipeline_rate(u.samples, u.sample_rate), u.spec.text),
        ).text
        for turn_id, u in utterances.items()
    }
    progress(f"offline: {len(heard)} clips decoded whole by {stt.model_dir.name}")
    return heard


def run(config: BenchConfig, progress: Callable[[str], None]) -> int:
    """Run the benchmark; 0 when every variant measured at least one turn, else 1."""
    store = ModelStore(config.models_dir or default_models_dir())
    try:
        paths = profile_paths(config.profile, store)
    except ModelUnavailableError as error:
        raise BenchError(str(error)) from None
    environment = collect_environment(paths, store.catalog)
    for line in environment.header_lines():
        progress(line)
    if not plot_available():
        progress(f"no plot this run: matplotlib is not installed ({INSTALL_HINT})")

    spec = load_corpus(config.corpus)
    selection = selected_turns(spec, config.max_turns)
    sources = CorpusSources(
        fixtures_dir=config.fixtures,
        cache_dir=config.cache_dir,
        tts_model_sha256=model_sha256(store.catalog, paths.tts_model),
        voices_sha256=model_sha256(store.catalog, paths.voices_model),
    )
    # Synthesis happens here, before any server starts, so it never competes with one.
    utterances = prepare(
        [turn for _, turn in selection],
        sources,
        lambda: kokoro_synthesizer(paths.tts_path, paths.voices_path),
    )
    plans = plan_calls(
        selection, utterances, repeat=config.repeat, turns_per_call=config.turns_per_call
    )
    progress(
        f"corpus: {len(selection)} turns x {config.repeat} in {len(plans)} calls "
        f"({len(spec.voices)} Kokoro voices in the full corpus)"
    )
    driver_config = DriverConfig(
        answer_timeout_s=config.answer_timeout_s, warmup_turns=config.warmup
    )
    out_dir = config.json_path.parent
    runs: list[VariantRun] = []
    for variant in config.variants:
        if config.server_url is not None:
            runs.append(run_server_url(config.server_url, variant, plans, driver_config, progress))
        else:
            runs.append(
                run_started_server(
                    variant, config.serve_args, plans, driver_config, progress, log_dir=out_dir
                )
            )

    summaries = [summarize_run(r) for r in runs]
    offline = _offline_transcripts(config, utterances, progress)
    prefix = _prefix_cache_probe(paths, progress) if config.prefix_cache else None
    settings = {
        **{
            k: (str(v) if not isinstance(v, int | float | bool | type(None) | tuple) else v)
            for k, v in asdict(config).items()
        },
        "argv": sys.argv[1:],
        "corpus_turns": len(selection),
        "calls": len(plans),
        "driver": asdict(driver_config),
        "utterances": {
            u.spec.id: {"source": u.spec.source, "audio_sha256": u.audio_sha256}
            for u in utterances.values()
        },
    }
    document = build_json(summaries, environment, settings, offline)
    if prefix is not None:
        document["prefix_cache"] = prefix.as_json()
    write_json(document, config.json_path)
    plotted = plot_available()
    if plotted:
        write_plot(runs, config.plot_path)
    print(format_report(summaries, environment, offline))
    if prefix is not None:
        print(
            f"\nLLM time to first token, system prompt prefix cached: p50 "
            f"{prefix.cached_p50:.0f} ms; uncached: p50 {prefix.uncached_p50:.0f} ms "
            f"({len(prefix.cached_ms)} requests each)"
        )
    plot = (
        config.plot_path if plotted else f"not drawn: matplotlib is not installed ({INSTALL_HINT})"
    )
    print(f"\nJSON: {config.json_path}\nplot: {plot}")
    return 0 if all(s.measured for s in summaries) else 1
