"""Word error rate of the STT against the corpus's expected transcripts.

Both sides are normalised the same way before comparing: lower case, apostrophes dropped, other
punctuation and hyphens turned into word breaks ("ill-disposed" is two words on both sides), and
whole numbers under 100 spelt out, since Whisper writes "10 minutes" for "ten
minutes" and that is not a recognition error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
# Apostrophes are dropped, not turned into spaces, so "it's" stays one word ("its").
_APOSTROPHES = re.compile(r"['’]")
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _spell(number: int) -> list[str]:
    if number < 20:
        return [_ONES[number]]
    tens, ones = divmod(number, 10)
    return [_TENS[tens]] if ones == 0 else [_TENS[tens], _ONES[ones]]


def normalize(text: str) -> list[str]:
    """The words of `text` as compared: lower case, no punctuation, small numbers spelt out."""
    words: list[str] = []
    cleaned = _NON_WORD.sub(" ", _APOSTROPHES.sub("", text.lower()))
    for word in cleaned.split():
        if word.isdigit() and int(word) < 100:
            words.extend(_spell(int(word)))
        else:
            words.append(word)
    return words


def word_errors(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Word-level Levenshtein distance: substitutions + deletions + insertions."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution or match
                )
            )
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class WordErrorRate:
    """Errors over reference words, pooled over a set of utterances."""

    errors: int
    reference_words: int

    @property
    def rate(self) -> float | None:
        """errors / reference words; None when there were no reference words."""
        return self.errors / self.reference_words if self.reference_words else None


def wer(reference: str, hypothesis: str) -> WordErrorRate:
    """Word error rate of one utterance (an empty hypothesis counts every word deleted)."""
    ref = normalize(reference)
    return WordErrorRate(word_errors(ref, normalize(hypothesis)), len(ref))


def corpus_wer(pairs: Sequence[tuple[str, str]]) -> WordErrorRate:
    """Pooled WER over (reference, hypothesis) pairs: total errors / total reference words."""
    results = [wer(ref, hyp) for ref, hyp in pairs]
    return WordErrorRate(sum(r.errors for r in results), sum(r.reference_words for r in results))
