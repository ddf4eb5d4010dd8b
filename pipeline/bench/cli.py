"""``jetvoice bench``: flags, and the wiring from them to a run. Heavy imports are deferred so
``jetvoice --help`` stays fast."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.bench.paths import (
    DEFAULT_CACHE,
    DEFAULT_CORPUS,
    DEFAULT_FIXTURES,
    DEFAULT_OUT_DIR,
    DEFAULT_RECORDINGS,
)

QUICK_TURNS = 2


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run, built once from the flags."""

    profile: str = "cpu"
    baseline: bool = False
    server_url: str | None = None
    max_turns: int | None = None
    warmup: int = 1
    repeat: int = 1
    turns_per_call: int = 4
    answer_timeout_s: float = 30.0
    corpus: Path = DEFAULT_CORPUS
    fixtures: Path = DEFAULT_FIXTURES
    cache_dir: Path = DEFAULT_CACHE
    models_dir: Path | None = None
    json_path: Path = DEFAULT_OUT_DIR / "bench.json"
    plot_path: Path = DEFAULT_OUT_DIR / "bench.png"
    serve_args: tuple[str, ...] = field(default_factory=tuple)
    prefix_cache: bool = True

    @property
    def variants(self) -> tuple[str, ...]:
        """Variants in run order: jetvoice's pipeline first, then the stock baseline."""
        if self.server_url is not None:
            return ("server",)
        return ("tuned", "stock") if self.baseline else ("tuned",)


def add_bench_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` subcommand to the ``jetvoice`` parser."""
    bench = subparsers.add_parser(
        "bench",
        help="measure voice-to-voice latency over the real loop",
        description="Start `jetvoice serve`, call it over WebRTC on loopback, speak a corpus of "
        "turns in real time and measure, per turn, from the true end of speech to the bot's "
        "first sound, with the server's per-stage breakdown. Prints a table, writes JSON and PNG.",
    )
    bench.add_argument("--profile", default="cpu", help="model/device profile (default: cpu)")
    bench.add_argument(
        "--baseline",
        action="store_true",
        help="also run pipecat's stock pipeline on the same models, after ours, and report the "
        "ratio of the medians",
    )
    bench.add_argument(
        "--server-url",
        default=None,
        help="drive an already running server (e.g. http://127.0.0.1:8430) instead of starting "
        "one; cold start is then not measured",
    )
    size = bench.add_mutually_exclusive_group()
    size.add_argument(
        "--turns",
        type=int,
        default=None,
        help="only the first N turns of the corpus (default: all)",
    )
    size.add_argument(
        "--quick", action="store_true", help=f"only the first {QUICK_TURNS} turns (a smoke run)"
    )
    bench.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="first N turns of each variant left out of the statistics (default: 1)",
    )
    bench.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="speak the corpus K times for more samples (default: 1); with "
        "--long-conversation, hold K conversations (default: 3)",
    )
    bench.add_argument(
        "--turns-per-call",
        type=int,
        default=4,
        help="single turns spoken in one call before a fresh call (default: 4)",
    )
    bench.add_argument(
        "--answer-timeout",
        type=float,
        default=30.0,
        help="seconds from end of speech to the bot's first sound before a turn counts as "
        "failed (default: 30)",
    )
    bench.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the JSON (default: artifacts/bench/bench-<time>.json)",
    )
    bench.add_argument(
        "--plot", type=Path, default=None, help="where to write the PNG (default: next to the JSON)"
    )
    bench.add_argument(
        "--fixtures",
        type=Path,
        default=DEFAULT_FIXTURES,
        help=f"recorded speech fixtures (default: {DEFAULT_FIXTURES})",
    )
    bench.add_argument(
        "--corpus",
        type=Path,
        default=DEFAULT_CORPUS,
        help="corpus file (default: the built-in one)",
    )
    bench.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help="synthesized corpus audio cache (default: artifacts/bench/corpus)",
    )
    bench.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="where model weights live (default: models/weights)",
    )
    bench.add_argument(
        "--no-prefix-cache",
        action="store_true",
        help="skip the LLM time-to-first-token probe with and without the cached prompt prefix",
    )
    bench.add_argument(
        "--long-conversation",
        action="store_true",
        help="instead of the voice loop: time the LLM's first token at every turn of a "
        "30-turn conversation (--turns N to change) held directly with the profile's LLM "
        "server through the agent's rolling context window",
    )
    bench.add_argument(
        "--no-context-window",
        action="store_true",
        help="with --long-conversation: let the context grow unbounded (the comparison)",
    )
    bench.add_argument(
        "--hearing",
        action="store_true",
        help="instead of the voice loop: speak recorded human speech into the live input path "
        "(ingress, RNNoise, VAD, early transcript, Whisper) in real time and report the word "
        "error rate beside the same model offline and pipecat's stock path",
    )
    bench.add_argument(
        "--suspects",
        action="store_true",
        help="with --hearing: also run the tuned path with one part changed at a time",
    )
    bench.add_argument(
        "--paths",
        default=None,
        help="with --hearing: only these paths, comma-separated (e.g. tuned,full-window)",
    )
    bench.add_argument(
        "--recordings",
        type=Path,
        default=DEFAULT_RECORDINGS,
        help="with --hearing: a folder of WAV files and their transcripts.json, or `corpus` "
        f"for the benchmark corpus's turns (default: {DEFAULT_RECORDINGS})",
    )
    bench.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for each started `jetvoice serve` (repeatable), "
        "e.g. --serve-arg=--no-noise-filter",
    )


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """Validate the flags into a BenchConfig.

    Raises:
        ValueError: an inconsistent or out-of-range flag, with the flag named.
    """
    if args.server_url is not None and args.baseline:
        raise ValueError("--baseline starts both servers itself; it cannot use --server-url")
    if args.server_url is not None and not args.server_url.startswith(("http://", "https://")):
        raise ValueError(f"--server-url must be an http(s) URL, got {args.server_url!r}")
    for flag, value, low in (
        ("--turns", args.turns, 1),
        ("--warmup", args.warmup, 0),
        ("--repeat", args.repeat, 1),
        ("--turns-per-call", args.turns_per_call, 1),
    ):
        if value is not None and value < low:
            raise ValueError(f"{flag} must be at least {low}, got {value}")
    if args.answer_timeout <= 0:
        raise ValueError("--answer-timeout must be positive")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    json_path = args.json or DEFAULT_OUT_DIR / f"bench-{stamp}.json"
    serve_args = ["--profile", args.profile, *args.serve_arg]
    if args.models_dir is not None:
        serve_args += ["--models-dir", str(args.models_dir)]
    return BenchConfig(
        profile=args.profile,
        baseline=args.baseline,
        server_url=args.server_url,
        max_turns=QUICK_TURNS if args.quick else args.turns,
        warmup=args.warmup,
        repeat=args.repeat or 1,
        turns_per_call=args.turns_per_call,
        answer_timeout_s=args.answer_timeout,
        corpus=args.corpus,
        fixtures=args.fixtures,
        cache_dir=args.cache_dir,
        models_dir=args.models_dir,
        json_path=json_path,
        plot_path=args.plot or json_path.with_suffix(".png"),
        serve_args=tuple(serve_args),
        prefix_cache=not args.no_prefix_cache and args.server_url is None,
    )


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_bench(args: argparse.Namespace) -> int:
    """Run ``jetvoice bench``; 0 when every variant measured at least one turn."""
    from pipeline.bench.benchmark import BenchError, run

    if args.hearing:
        from pipeline.bench.hearing import run_hearing_bench

        return run_hearing_bench(args)
    if args.long_conversation:
        from pipeline.bench.long_conversation import run_long_conversation

        return run_long_conversation(args)
    try:
        config = config_from_args(args)
        return run(config, _progress)
    except (ValueError, BenchError, FileNotFoundError) as error:
        print(f"jetvoice bench: {error}", file=sys.stderr)
        return 2
