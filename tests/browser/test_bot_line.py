"""The bot's line in the page's transcript never goes backwards, in a real Chromium.

The page's own module (pipeline/server/web/bot_line.js) is driven with the messages of the response
that went "Sure! I" -> "Sure! I can" -> "Sure!" -> the whole sentence: the LLM's tokens
(bot-llm-text) and, later and a sentence at a time, what was spoken (bot-output). The page's
files are served to the browser from the working tree by Playwright's router, so no agent runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (uv sync installs it)"
)

CHROMIUM = Path("/usr/bin/chromium")
WEB = Path(__file__).resolve().parents[2] / "pipeline" / "server" / "web"
ORIGIN = "http://jetvoice.test"
TYPES = {".js": "text/javascript", ".html": "text/html", ".css": "text/css"}

SENTENCE = "Sure! I can turn on the living room light."
TOKENS = ["Sure", "!", " I", " can", " turn", " on", " the", " living", " room", " light", "."]


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    """A page of the web app's origin, served from pipeline/server/web; nothing else answers."""
    chromium = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed: run `just browser-deps`")

    def serve(route: Any) -> None:
        name = route.request.url.removeprefix(ORIGIN).split("?")[0].lstrip("/") or "index.html"
        path = WEB / name
        if path.parent != WEB or not path.is_file():
            route.fulfill(status=404, body="")
            return
        route.fulfill(status=200, body=path.read_bytes(), content_type=TYPES.get(path.suffix))

    with playwright_sync.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=str(chromium), headless=True, args=["--no-sandbox"]
        )
        try:
            page = browser.new_page()
            page.route("**/*", serve)
            page.goto(f"{ORIGIN}/index.html")
            yield page
        finally:
            browser.close()


def _run(page: Any, steps: list[list[Any]]) -> dict[str, Any]:
    """Feed a BotLine the steps (["llm", text], ["output", id, text], ["tts", text]); its
    texts as shown, and its regression count."""
    result: dict[str, Any] = page.evaluate(
        """async (steps) => {
            const { BotLine, regressions } = await import('/bot_line.js');
            const line = new BotLine();
            for (const [kind, a, b] of steps) {
                if (kind === 'llm') line.addGenerated(a);
                else if (kind === 'output') line.setSegment(a, b);
                else line.addTts(a);
            }
            return { text: line.text, shown: line.shown, regressions: regressions(line.shown) };
        }""",
        steps,
    )
    return result


def test_the_page_loads_the_module_and_counts_no_regression_before_a_call(page: Any) -> None:
    # app.js imports bot_line.js under the page's Content-Security-Policy.
    assert page.evaluate("window.jetvoice && window.jetvoice.botTextRegressions") == 0


def test_the_counter_sees_a_line_that_went_backwards(page: Any) -> None:
    texts = ["Sure! I", "Sure! I can", "Sure!", SENTENCE]
    assert page.evaluate("async (t) => (await import('/bot_line.js')).regressions(t)", texts) == 1


def test_the_spoken_first_sentence_does_not_cut_the_generated_text_back(page: Any) -> None:
    # As recorded: tokens stream, the first sentence is spoken while more tokens arrive, then
    # the rest is spoken.
    steps: list[list[Any]] = [["llm", t] for t in TOKENS[:4]]
    steps += [["output", 0, "Sure!"], ["tts", "Sure!"]]
    steps += [["llm", t] for t in TOKENS[4:]]
    steps += [["output", 1, "I can turn on the living room light."]]
    result = _run(page, steps)
    assert result["regressions"] == 0, result["shown"]
    assert result["text"] == SENTENCE
    assert "Sure!" not in result["shown"][2:], result["shown"]
    lengths = [len(t) for t in result["shown"]]
    assert lengths == sorted(lengths), result["shown"]


def test_an_answer_cut_off_keeps_what_was_generated(page: Any) -> None:
    steps: list[list[Any]] = [["llm", t] for t in TOKENS]
    steps += [["output", 0, "Sure!"]]
    result = _run(page, steps)
    assert result["text"] == SENTENCE
    assert result["regressions"] == 0


def test_speech_without_an_llm_grows_sentence_by_sentence(page: Any) -> None:
    result = _run(page, [["tts", "Hi, I'm Jet."], ["tts", "How can I help?"]])
    assert result["shown"] == ["Hi, I'm Jet.", "Hi, I'm Jet. How can I help?"]


def test_a_segment_spoken_word_by_word_keeps_its_whole_text(page: Any) -> None:
    # With word timestamps, a segment's first message has all of it, the next ones the words
    # spoken so far.
    result = _run(
        page,
        [["output", 7, "It is sunny."], ["output", 7, "It"], ["output", 7, "It is sunny."]],
    )
    assert result["shown"] == ["It is sunny."]


def test_a_think_block_is_never_shown(page: Any) -> None:
    result = _run(page, [["llm", "<think>the user"], ["llm", " wants</think>Hello"]])
    assert result["shown"] == ["Hello"]
