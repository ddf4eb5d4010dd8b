"""The benchmark's results: per-variant summaries, the printed table and the JSON file.

Statistics cover the measured turns: successful turns after the warm-up. Warm-up and failed
turns are counted and listed, never silently dropped; the first turn after start is also
reported on its own (it pays for whatever the server's warm-up did not cover).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.bench.environment import Environment
from pipeline.bench.measurement import OVERHEAD_DEFINITION, STAGE_ROWS, TurnResult
from pipeline.bench.runner import VariantRun
from pipeline.bench.stats import Summary, summarize
from pipeline.bench.wer import WordErrorRate, corpus_wer

SCHEMA = "jetvoice-bench/1"
HEADLINE_KEYS = ("p50", "p95", "max")
# The targets, printed next to the measured figures.
RATIO_GOAL = 0.6
OVERHEAD_GOAL_MS = 100.0


@dataclass(frozen=True)
class VariantSummary:
    """Statistics of one variant's run."""

    run: VariantRun
    measured: tuple[TurnResult, ...]
    warmup: tuple[TurnResult, ...]
    failed: tuple[TurnResult, ...]
    stages: dict[str, Summary | None]
    wer: WordErrorRate
    smart_turn_probability: Summary | None
    longest_pause_ms: Summary | None = None

    @property
    def first_turn(self) -> TurnResult | None:
        """The first real turn after the server started."""
        return self.run.turns[0] if self.run.turns else None

    @property
    def voice_to_voice(self) -> Summary | None:
        """Client voice-to-voice over the measured turns."""
        return self.stages.get("voice_to_voice")

    @property
    def overhead(self) -> Summary | None:
        """Loop overhead (see OVERHEAD_DEFINITION) over the measured turns."""
        return self.stages.get("overhead")


def summarize_run(run: VariantRun) -> VariantSummary:
    """Split the run's turns into measured / warm-up / failed and summarise each stage."""
    measured = tuple(t for t in run.turns if t.ok and not t.warmup)
    stages = {
        key: summarize(getattr(t.stages, key) for t in measured) for key, _label in STAGE_ROWS
    }
    # WER is about the recogniser, not timing: every turn counts, warm-up included; a turn
    # with no transcript at all counts each expected word as deleted.
    wer = corpus_wer([(t.expected, t.transcript or "") for t in run.turns])
    return VariantSummary(
        run=run,
        measured=measured,
        warmup=tuple(t for t in run.turns if t.warmup),
        failed=tuple(t for t in run.turns if not t.ok),
        stages=stages,
        wer=wer,
        smart_turn_probability=summarize(t.smart_turn_probability for t in measured),
        longest_pause_ms=summarize(
            None if t.longest_pause_s is None else t.longest_pause_s * 1000.0 for t in measured
        ),
    )


def _headline(summary: Summary | None) -> dict[str, float] | None:
    if summary is None:
        return None
    data = summary.as_dict()
    return {k: float(data[k]) for k in HEADLINE_KEYS}


def _breakdowns(summary: VariantSummary) -> dict[str, Any]:
    """How many measured turns lack the server's breakdown, and why."""
    missing = [t for t in summary.measured if t.stages.server_total is None]
    lost = [t for t in missing if t.latency is not None]
    return {
        "missing": len(missing),
        "lost_user_silence": len(lost),
        "missing_turns": [t.turn_id for t in missing],
        "turns_with_server_errors": sum(1 for t in summary.run.turns if t.server_errors),
    }


def _smart_turn(summary: VariantSummary) -> dict[str, Any]:
    turns = summary.measured
    verdicts = [t for t in turns if t.smart_turn_complete is not None]
    probability = summary.smart_turn_probability
    return {
        "turns": len(turns),
        "with_verdict": len(verdicts),
        "complete": sum(1 for t in verdicts if t.smart_turn_complete),
        "fallback_fired": sum(1 for t in turns if t.fallback),
        "probability": None if probability is None else probability.as_dict(),
        "probabilities": [t.smart_turn_probability for t in turns],
    }


def variant_json(summary: VariantSummary) -> dict[str, Any]:
    """One variant's section of the JSON."""
    run = summary.run
    first = summary.first_turn
    return {
        "variant": run.variant,
        "base_url": run.base_url,
        "error": run.error,
        "cold_start_s": None if run.cold_start_s is None else round(run.cold_start_s, 2),
        "server_startup_secs": run.startup_secs,
        "server_exit_code": run.exit_code,
        "server_log": None if run.log_path is None else str(run.log_path),
        "wall_s": round(run.wall_s, 1),
        "turns_total": len(run.turns),
        "turns_measured": len(summary.measured),
        "warmup_turns": len(summary.warmup),
        "failed_turns": len(summary.failed),
        "failures": [{"turn": t.index, "id": t.turn_id, "error": t.error} for t in summary.failed],
        "first_turn": None
        if first is None
        else {"id": first.turn_id, "ok": first.ok, "stages_ms": first.stages.as_dict()},
        "voice_to_voice_ms": _headline(summary.voice_to_voice),
        "overhead_ms": _headline(summary.overhead),
        "stages_ms": {k: (None if s is None else s.as_dict()) for k, s in summary.stages.items()},
        "smart_turn": _smart_turn(summary),
        "longest_pause_in_answer_ms": None
        if summary.longest_pause_ms is None
        else summary.longest_pause_ms.as_dict(),
        "server_breakdown": _breakdowns(summary),
        "wer": {
            "rate": summary.wer.rate,
            "errors": summary.wer.errors,
            "reference_words": summary.wer.reference_words,
            "turns_without_transcript": sum(1 for t in run.turns if not t.transcript),
        },
        "calls": [
            {
                "index": c.index,
                "conversation": c.conversation,
                "connect_s": None if c.connect_s is None else round(c.connect_s, 3),
                "greeting_ms": None if c.greeting_ms is None else round(c.greeting_ms, 1),
                "error": c.error,
            }
            for c in run.calls
        ],
    }


def offline_wer(summary: VariantSummary, offline: dict[str, str]) -> WordErrorRate:
    """The word error rate of the offline transcripts over the turns ``summary`` spoke."""
    return corpus_wer([(t.expected, offline.get(t.turn_id, "")) for t in summary.run.turns])


def wer_comparison(
    summaries: Sequence[VariantSummary], offline: dict[str, str] | None
) -> dict[str, dict[str, Any]]:
    """Word error rate per variant, and of the same model offline, over the same turns."""
    rows: dict[str, WordErrorRate] = {
        s.run.variant: s.wer for s in summaries if s.run.turns and not s.run.error
    }
    spoken = next((s for s in summaries if s.run.turns and not s.run.error), None)
    if offline is not None and spoken is not None:
        rows["offline"] = offline_wer(spoken, offline)
    return {
        name: {"rate": w.rate, "errors": w.errors, "reference_words": w.reference_words}
        for name, w in rows.items()
    }


def build_json(
    summaries: Sequence[VariantSummary],
    environment: Environment,
    settings: dict[str, Any],
    offline: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The whole JSON document. The first summary is the headline; a ``stock`` one after it
    is the baseline. ``offline``: each turn's clip decoded whole by the same model."""
    primary = summaries[0]
    baseline = next((s for s in summaries[1:] if s.run.variant == "stock"), None)
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "variant": primary.run.variant,
        "voice_to_voice_ms": _headline(primary.voice_to_voice),
        "overhead_ms": _headline(primary.overhead),
        "overhead_definition": OVERHEAD_DEFINITION,
    }
    if baseline is not None:
        document["baseline_voice_to_voice_ms"] = _headline(baseline.voice_to_voice)
        document["baseline_overhead_ms"] = _headline(baseline.overhead)
        ours, theirs = primary.voice_to_voice, baseline.voice_to_voice
        document["ratio_p50"] = (
            round(ours.p50 / theirs.p50, 3) if ours and theirs and theirs.p50 > 0 else None
        )
    document["wer"] = wer_comparison(summaries, offline)
    if offline is not None:
        document["offline_transcripts"] = offline
    document["load_average"] = [round(v, 2) for v in os.getloadavg()]
    document["environment"] = environment.as_dict()
    document["settings"] = settings
    document["variants"] = {s.run.variant: variant_json(s) for s in summaries}
    document["turns"] = [t.as_dict() for s in summaries for t in s.run.turns]
    return document


def write_json(document: dict[str, Any], path: Path) -> None:
    """Write the JSON document (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _variant_table(summary: VariantSummary) -> list[str]:
    run = summary.run
    if run.error:
        return [f"== {run.variant}: did not run: {run.error}"]
    cold = "not measured" if run.cold_start_s is None else f"{run.cold_start_s:.1f} s"
    first = summary.first_turn
    first_v2v = first.voice_to_voice_ms if first is not None else None
    lines = [
        f"== {run.variant}: {len(summary.measured)} turns measured "
        f"({len(summary.warmup)} warm-up excluded, {len(summary.failed)} failed); "
        f"cold start {cold}; first turn {_cell(first_v2v)} ms",
        f"{'stage (ms)':<40}{'n':>4}{'min':>8}{'p50':>8}{'p95':>8}{'max':>8}",
    ]
    for key, label in STAGE_ROWS:
        s = summary.stages.get(key)
        if s is None:
            lines.append(f"{label:<40}{0:>4}{'-':>8}{'-':>8}{'-':>8}{'-':>8}")
        else:
            lines.append(f"{label:<40}{s.n:>4}{s.min:>8.0f}{s.p50:>8.0f}{s.p95:>8.0f}{s.max:>8.0f}")
    st = _smart_turn(summary)
    prob = summary.smart_turn_probability
    dist = (
        "no probabilities reported"
        if prob is None
        else f"probability min {prob.min:.2f} / p50 {prob.p50:.2f} / p95 {prob.p95:.2f} "
        f"/ max {prob.max:.2f}"
    )
    lines.append(
        f"Smart Turn: {st['with_verdict']} verdicts, {st['complete']} complete, silence "
        f"fallback fired {st['fallback_fired']}x of {st['turns']}; {dist}"
    )
    pause = summary.longest_pause_ms
    if pause is not None:
        lines.append(
            f"Longest pause inside an answer: p50 {pause.p50:.0f} ms, p95 {pause.p95:.0f} ms, "
            f"max {pause.max:.0f} ms (sentence pauses are 250 ms)"
        )
    rate = summary.wer.rate
    lines.append(
        f"STT word error rate: {'-' if rate is None else f'{rate * 100:.1f} %'} "
        f"({summary.wer.errors} errors / {summary.wer.reference_words} words, "
        f"{len(run.turns)} turns)"
    )
    gaps = _breakdowns(summary)
    if gaps["missing"] or gaps["turns_with_server_errors"]:
        lines.append(
            f"server breakdown missing for {gaps['missing']} measured turns "
            f"({gaps['lost_user_silence']} measured from client_connected: the observer lost the "
            f"user's silence); {gaps['turns_with_server_errors']} turns had server errors"
        )
    for failed in summary.failed:
        lines.append(f"  failed turn {failed.index + 1} {failed.turn_id}: {failed.error}")
    return lines


def _comparison(summaries: Sequence[VariantSummary]) -> list[str]:
    """Medians side by side, one column per variant."""
    names = [s.run.variant for s in summaries]
    lines = [
        "== p50 side by side (ms)",
        f"{'stage':<40}" + "".join(f"{n:>10}" for n in names),
    ]
    for key, label in STAGE_ROWS:
        cells = []
        for summary in summaries:
            stat = summary.stages.get(key)
            cells.append(f"{_cell(stat.p50 if stat else None):>10}")
        lines.append(f"{label:<40}" + "".join(cells))
    return lines


def _wer_line(summaries: Sequence[VariantSummary], offline: dict[str, str] | None) -> str:
    cells = []
    for name, row in wer_comparison(summaries, offline).items():
        rate = "-" if row["rate"] is None else f"{row['rate'] * 100:.1f} %"
        cells.append(f"{name} {rate} ({row['errors']}/{row['reference_words']})")
    return "word error rate on the same turns: " + ", ".join(cells)


def format_report(
    summaries: Sequence[VariantSummary],
    environment: Environment,
    offline: dict[str, str] | None = None,
) -> str:
    """The text printed at the end of a run: environment, one table per variant, the word
    error rates side by side (with the same model offline), headline."""
    lines = ["jetvoice bench", *environment.header_lines(), ""]
    for summary in summaries:
        lines += [*_variant_table(summary), ""]
    if len(summaries) > 1:
        lines += [*_comparison(summaries), ""]
    lines += [_wer_line(summaries, offline), ""]
    primary = summaries[0]
    ours = primary.voice_to_voice
    if ours is not None:
        overhead = primary.overhead
        lines.append(
            f"headline ({primary.run.variant}): voice-to-voice p50 {ours.p50:.0f} ms, "
            f"p95 {ours.p95:.0f} ms, max {ours.max:.0f} ms; overhead p50 "
            f"{_cell(overhead.p50 if overhead else None)} ms (goal < {OVERHEAD_GOAL_MS:.0f})"
        )
    baseline = next((s for s in summaries[1:] if s.run.variant == "stock"), None)
    theirs = baseline.voice_to_voice if baseline is not None else None
    if ours is not None and theirs is not None and theirs.p50 > 0:
        lines.append(
            f"baseline (stock): voice-to-voice p50 {theirs.p50:.0f} ms, p95 {theirs.p95:.0f} ms; "
            f"ratio p50 {ours.p50 / theirs.p50:.2f} (goal <= {RATIO_GOAL})"
        )
    return "\n".join(lines)
