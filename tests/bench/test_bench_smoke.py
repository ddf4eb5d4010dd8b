"""Benchmark smoke test: the real machinery, end to end, on two turns against a real server.

Loose on purpose: it checks that `jetvoice bench` keeps producing its outputs (JSON with the
headline keys, a PNG, a voice-to-voice and a transcript per turn), never how fast anything is;
speed is the full benchmark's job, run as a command.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.paths import profile_paths
from models.store import ModelStore, ModelUnavailableError, default_models_dir
from pipeline.bench.corpus import CorpusSources, load_corpus, prepare
from pipeline.bench.environment import model_sha256
from pipeline.bench.paths import DEFAULT_FIXTURES
from pipeline.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cpu_store() -> ModelStore:
    """The cpu profile's models; the suite's set-up (`just test`) pulls them first."""
    store = ModelStore(default_models_dir())
    try:
        profile_paths("cpu", store)
    except ModelUnavailableError as error:
        pytest.fail(f"cpu models missing (run `just setup`): {error}")
    if not DEFAULT_FIXTURES.is_dir():
        pytest.fail(f"missing speech fixtures {DEFAULT_FIXTURES}")
    return store


@pytest.mark.timeout(180)
def test_bench_two_turns_writes_json_and_plot(cpu_store: ModelStore, tmp_path: Path) -> None:
    json_path = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "--turns",
            "2",
            "--warmup",
            "1",
            "--json",
            str(json_path),
            "--cache-dir",
            str(tmp_path / "corpus"),
        ]
    )
    assert code == 0
    document = json.loads(json_path.read_text())

    for key in ("voice_to_voice_ms", "overhead_ms"):
        assert set(document[key]) == {"p50", "p95", "max"}, document[key]
    assert document["overhead_definition"]
    prefix = document["prefix_cache"]
    assert prefix["cached_ttft_ms"]["p50"] > 0 and prefix["uncached_ttft_ms"]["p50"] > 0
    assert document["environment"]["packages"]["pipecat"] == "1.14.0"
    tuned = document["variants"]["tuned"]
    assert tuned["cold_start_s"] > 0
    assert tuned["turns_total"] == 2 and tuned["warmup_turns"] == 1
    assert tuned["wer"]["rate"] is not None and tuned["wer"]["reference_words"] > 0
    # The same turns decoded whole by the same model, offline, beside the live rate.
    assert set(document["wer"]) == {"tuned", "offline"}
    assert document["wer"]["offline"]["reference_words"] == tuned["wer"]["reference_words"]
    assert set(document["offline_transcripts"]) == {"warm_up", "hello_world"}
    assert "hello" in document["offline_transcripts"]["hello_world"].lower()

    turns = document["turns"]
    assert [t["turn_id"] for t in turns] == ["warm_up", "hello_world"]
    assert {t["source"].split(":")[0] for t in turns} == {"fixture", "kokoro"}
    for turn in turns:
        assert turn["ok"], turn["error"]
        assert turn["voice_to_voice_ms"] > 0
        assert turn["transcript"], turn
        assert turn["latency"] is not None, "no server latency message for the turn"

    assert (tmp_path / "bench.png").read_bytes()[:8] == PNG_SIGNATURE
    assert (tmp_path / "serve-tuned.log").stat().st_size > 0


@pytest.mark.timeout(120)
def test_corpus_synthesis_is_deterministic(cpu_store: ModelStore, tmp_path: Path) -> None:
    """Two syntheses of the same turn give the same bytes, so the cache is only a shortcut."""
    from pipeline.bench.benchmark import kokoro_synthesizer

    paths = profile_paths("cpu", cpu_store)
    turn = next(t for t in load_corpus().single_turns if t.voice)
    written = []
    for name in ("first", "second"):
        sources = CorpusSources(
            fixtures_dir=DEFAULT_FIXTURES,
            cache_dir=tmp_path / name,
            tts_model_sha256=model_sha256(cpu_store.catalog, paths.tts_model),
            voices_sha256=model_sha256(cpu_store.catalog, paths.voices_model),
        )
        prepare([turn], sources, lambda: kokoro_synthesizer(paths.tts_path, paths.voices_path))
        (wav,) = (tmp_path / name).glob("*.wav")
        written.append(wav)
    assert written[0].name == written[1].name
    assert written[0].read_bytes() == written[1].read_bytes()


@pytest.mark.timeout(180)
def test_hearing_scores_the_live_path_beside_the_model_offline(
    cpu_store: ModelStore, tmp_path: Path
) -> None:
    """`jetvoice bench --hearing` speaks a recording into the live input path in real time."""
    speech = Path(__file__).resolve().parents[1] / "fixtures" / "speech"
    name = "go_forward_ten_meters.wav"
    (tmp_path / name).write_bytes((speech / name).read_bytes())
    (tmp_path / "transcripts.json").write_text(json.dumps({name: "go forward ten meters"}))
    json_path = tmp_path / "hearing.json"
    code = main(
        [
            "bench",
            "--hearing",
            "--paths",
            "tuned",
            "--recordings",
            str(tmp_path),
            "--json",
            str(json_path),
        ]
    )
    assert code == 0
    document = json.loads(json_path.read_text())
    paths = {path["name"]: path for path in document["paths"]}
    assert set(paths) == {"offline", "tuned"}
    for path in paths.values():
        assert path["reference_words"] == 4
        # A clean, short command: heard whole by both (a word of slack for the model's whims).
        assert path["errors"] <= 1, path["heard"]
    assert paths["tuned"]["heard"][name]["pieces"] >= 1
    assert paths["tuned"]["latency_p50_ms"] is not None
