"""Word error rate: normalisation and word-level Levenshtein."""

from __future__ import annotations

import pytest

from pipeline.bench.wer import WordErrorRate, corpus_wer, normalize, wer, word_errors


def test_normalize_drops_case_punctuation_and_apostrophes() -> None:
    assert normalize("Hello, World! It's the living-room lamp.") == [
        "hello",
        "world",
        "its",
        "the",
        "living",
        "room",
        "lamp",
    ]


def test_normalize_spells_out_small_numbers() -> None:
    assert normalize("Set a timer for 10 minutes") == normalize("Set a timer for ten minutes.")
    assert normalize("42") == ["forty", "two"]
    assert normalize("365 days") == ["365", "days"]


def test_identical_transcripts_have_no_errors() -> None:
    assert wer("What is the weather in Paris?", "what is the weather in paris").rate == 0.0


@pytest.mark.parametrize(
    ("reference", "hypothesis", "errors"),
    [
        (["a", "b", "c"], ["a", "x", "c"], 1),  # substitution
        (["a", "b", "c"], ["a", "c"], 1),  # deletion
        (["a", "b", "c"], ["a", "b", "x", "c"], 1),  # insertion
        (["a", "b", "c"], [], 3),
        ([], ["a", "b"], 2),
        (["kitten", "sat", "on", "mat"], ["sitting", "on", "the", "mat"], 3),
    ],
)
def test_word_errors_counts_edits(reference: list[str], hypothesis: list[str], errors: int) -> None:
    assert word_errors(reference, hypothesis) == errors


def test_empty_hypothesis_is_every_word_deleted() -> None:
    result = wer("Turn on the living room lamp.", "")
    assert result == WordErrorRate(errors=6, reference_words=6)
    assert result.rate == 1.0


def test_corpus_wer_pools_errors_over_reference_words() -> None:
    pooled = corpus_wer([("hello world", "hello word"), ("a b c d e f", "a b c d e f")])
    assert pooled == WordErrorRate(errors=1, reference_words=8)
    assert pooled.rate == pytest.approx(0.125)


def test_no_reference_words_has_no_rate() -> None:
    assert corpus_wer([]).rate is None
