"""The per-turn stacked-stage plot: one panel per variant, one bar per turn.

Each bar stacks the critical-path stages (they add up to voice-to-voice); a black tick marks the
client's voice-to-voice, a grey bar stands for a turn whose server figures are missing, a red
cross for a failed turn. Warm-up turns are drawn faded.

matplotlib is an optional extra (``plot``; ``just setup`` installs it): without it the benchmark
still measures and writes its JSON, and says how to get the plot.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from pipeline.bench.measurement import SEGMENTS, TurnResult
from pipeline.bench.runner import VariantRun

# What to run for the plot; the agent itself never needs matplotlib.
INSTALL_HINT = "uv sync --extra plot (just setup installs it)"
_WIDTH = 0.7
_COLOURS = ("#a6cee3", "#1f78b4", "#b2df8a", "#ff7f00", "#33a02c", "#cab2d6", "#6a3d9a")


def _panel(axes: object, run: VariantRun) -> None:
    from matplotlib.axes import Axes

    assert isinstance(axes, Axes)
    turns: Sequence[TurnResult] = run.turns
    positions = range(len(turns))
    for position, turn in zip(positions, turns, strict=True):
        alpha = 0.45 if turn.warmup else 1.0
        v2v = turn.voice_to_voice_ms
        if not turn.ok or v2v is None:
            axes.plot([position], [0], marker="x", color="red", markersize=10, clip_on=False)
            continue
        values = [getattr(turn.stages, key) for key, _ in SEGMENTS]
        if any(v is None for v in values):
            axes.bar(position, v2v / 1000.0, width=_WIDTH, color="#d9d9d9", alpha=alpha)
        else:
            bottom = 0.0
            for value, colour in zip(values, _COLOURS, strict=True):
                height = max(0.0, float(value or 0.0)) / 1000.0
                axes.bar(position, height, width=_WIDTH, bottom=bottom, color=colour, alpha=alpha)
                bottom += height
        half = _WIDTH / 2
        axes.plot([position - half, position + half], [v2v / 1000.0] * 2, color="black", lw=1)
    labels = [f"{t.turn_id}{' (w)' if t.warmup else ''}" for t in turns]
    axes.set_xticks(list(positions), labels, rotation=60, ha="right", fontsize=7)
    axes.set_xlim(-0.75, max(len(turns), 2) - 0.25)
    cold = "" if run.cold_start_s is None else f", cold start {run.cold_start_s:.1f} s"
    axes.set_title(f"{run.variant}{cold}", fontsize=10)
    axes.set_ylabel("seconds from end of speech")
    axes.grid(axis="y", alpha=0.3)


def plot_available() -> bool:
    """Whether matplotlib, the optional ``plot`` extra, is installed."""
    return importlib.util.find_spec("matplotlib") is not None


def write_plot(runs: Sequence[VariantRun], path: Path) -> None:
    """Draw one panel per variant (shared y axis) and save a PNG (needs :func:`plot_available`)."""
    import matplotlib

    matplotlib.use("Agg")  # no display; a file is all the benchmark needs
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    height = 1.3 + 3.8 * len(runs)
    widest = max((len(r.turns) for r in runs), default=1)
    figure, panels = plt.subplots(
        len(runs), 1, figsize=(max(8.0, 0.45 * widest + 3), height), sharey=True, squeeze=False
    )
    for row, run in zip(panels, runs, strict=True):
        _panel(row[0], run)
    handles = [
        Patch(color=c, label=label) for (_, label), c in zip(SEGMENTS, _COLOURS, strict=True)
    ]
    handles.append(Patch(color="#d9d9d9", label="no server breakdown"))
    top = 1.0 - 0.8 / height  # room for the title and the legend, in inches
    figure.suptitle("jetvoice bench: voice-to-voice per turn, by stage", y=0.995, fontsize=11)
    figure.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 1.0 - 0.35 / height),
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    figure.tight_layout(rect=(0, 0, 1, top))
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
