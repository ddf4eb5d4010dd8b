"""The turn's clock starts where the VAD's quiet windows start, as pipecat counts them."""

from __future__ import annotations

import pytest
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams

from pipeline.ops.latency_report import SILERO_WINDOW_SECS, vad_stop_window_secs


@pytest.mark.parametrize("stop_secs", [0.01, 0.1, 0.2, 0.25, 0.5, 0.8])
def test_the_stop_window_is_the_quiet_windows_pipecat_waits_for(stop_secs: float) -> None:
    vad = SileroVADAnalyzer(sample_rate=16000, params=VADParams(stop_secs=stop_secs))
    vad.set_sample_rate(16000)
    assert vad.num_frames_required() / 16000 == SILERO_WINDOW_SECS
    # pipecat stops once the quiet-window count reaches its target, and never before one.
    windows = max(1, vad._vad_stop_frames)
    assert vad_stop_window_secs(stop_secs) == pytest.approx(windows * SILERO_WINDOW_SECS)


def test_the_default_stop_is_six_windows() -> None:
    assert vad_stop_window_secs(0.2) == pytest.approx(0.192)
