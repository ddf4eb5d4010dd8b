"""A turn's later segment, decoded with the turn's earlier audio, hands on only its new words."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.turn_transcript import MAX_CONTEXT_SECS, TurnSoFar, new_words


def test_the_new_words_follow_what_was_handed_on() -> None:
    heard = ["Can you explain in a couple of sentences?", "why the sky looks blue during the day."]
    whole = (
        "Can you explain in a couple of sentences why the sky looks blue during the day"
        " but red at sunset?"
    )
    assert new_words(heard, whole) == "but red at sunset?"


def test_earlier_words_heard_differently_are_not_written_twice() -> None:
    assert new_words(["And so am I fellow American."], "And so my fellow Americans, ask not.") == (
        "ask not."
    )
    assert new_words(["a b"], "a y c") == "c"


def test_nothing_new_and_nothing_before() -> None:
    assert new_words(["Turn on the lamp."], "Turn on the lamp.") == ""
    assert new_words([], " Hello there. ") == "Hello there."


@given(
    st.lists(st.sampled_from(["red", "at", "sunset", "the", "sky", "is", "blue"]), max_size=8),
    st.lists(st.sampled_from(["one", "two", "three", "four"]), max_size=5),
)
def test_an_exact_repeat_of_the_earlier_words_yields_exactly_the_rest(
    before: list[str], after: list[str]
) -> None:
    whole = " ".join(before + after)
    got = new_words([" ".join(before)], whole)
    # The rest may start earlier only when the earlier words end like the rest begins.
    assert got.split() == after or (before and got.split()[-len(after) or None :] == after)


def test_the_context_stops_past_its_limit() -> None:
    turn = TurnSoFar(segments=[b"\x00\x00" * 16000])
    assert turn.context() == b"\x00\x00" * 16000
    turn.segments.append(b"\x00\x00" * int(16000 * MAX_CONTEXT_SECS))
    assert turn.context() == b""
    assert TurnSoFar().context() == b""
