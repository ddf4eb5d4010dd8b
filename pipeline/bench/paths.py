"""Where the benchmark reads and writes by default (no heavy imports: ``--help`` uses these)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CORPUS = Path(__file__).with_name("corpus.json")
# The recorded speech fixtures travel with the repository (licences in their SOURCES.md).
DEFAULT_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "audio"
# Human speech with reference transcripts, for ``jetvoice bench --hearing``.
DEFAULT_RECORDINGS = REPO_ROOT / "tests" / "fixtures" / "speech"
DEFAULT_OUT_DIR = REPO_ROOT / "artifacts" / "bench"
DEFAULT_CACHE = DEFAULT_OUT_DIR / "corpus"
