"""A real browser talks to the real agent: headless Debian Chromium with its default WebRTC.

Chromium (driven by Playwright, never a downloaded browser) opens the talk page, with a WAV file
as its microphone, presses the talk button, and the page must show the user's question and the
bot's reply, with audible bot audio after the question. Two modes, as a person meets them:

- the loopback default (`just serve`), plain http, at http://127.0.0.1:PORT/ and at
  http://localhost:PORT/;
- `jetvoice serve --tls --require-token` at https://127.0.0.1:PORT/ with the pairing token;
  without the token, or with a wrong one, the page is refused (401 / 403) and says so.

Chromium's WebRTC is left as a person has it: mDNS host names on (its host candidates are
``<uuid>.local`` names), no loopback candidates. It calls from this machine's LAN address to the
agent's; the agent accepts that because the address is its own (pipeline/webrtc/ice_policy.py).

TLS is real: the server presents the certificate `jetvoice certs` made, whose chain the agent
fixture verifies against the local CA for 127.0.0.1 on every health poll. Chromium is told to
accept exactly that server key (`--ignore-certificate-errors-spki-list` with its SPKI hash), the
command-line equivalent of trusting the CA, without touching a system trust store.

Nothing else leaves the browser: its background services are off, its proxy is a dead loopback
port and its resolver answers nothing but localhost (none of these touch WebRTC). Both agents
run under the network audit: the whole session must not talk to another machine.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.ops.agent_process import AgentProcess
from pipeline.server.certs import load_certificate, spki_sha256_base64
from tests.support.conversation import padded_question_wav

playwright_sync = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (uv sync installs it)"
)

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "audio" / "weather_question.wav"
SCREENSHOT = REPO / "artifacts" / "browser" / "call.png"
PHONE = {"width": 412, "height": 915}
LEAD_SILENCE_S = 4.0  # the greeting plays meanwhile
TRAIL_SILENCE_S = 4.0  # lets the turn end
# Bounds on hangs, not speed: on 2 cores Chromium slows the models about twofold.
CONNECT_BOUND_MS = 30_000
ANSWER_BOUND_MS = 120_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    """Debian's Chromium; `just test` installs it first (`just browser-deps`)."""
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.skip(
            "Debian's chromium is not installed and could not be installed: "
            "run `just browser-deps` (apt-get install chromium) as root or with sudo"
        )
    return CHROMIUM if CHROMIUM.exists() else Path(str(shutil.which("chromium")))


@pytest.fixture(scope="module")
def browser(
    chromium: Path, secure_agent: AgentProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Headless Chromium with a WAV microphone, trusting exactly the agent's server key."""
    if not FIXTURE.exists():
        pytest.fail(f"missing speech fixture {FIXTURE}")
    mic = tmp_path_factory.mktemp("browser") / "question.wav"
    padded_question_wav(mic, FIXTURE.name, lead_s=LEAD_SILENCE_S, trail_s=TRAIL_SILENCE_S)
    server_cert = load_certificate(secure_agent.ca_file.with_name("server.crt"))
    args = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--no-pings",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic}%noloop",
        "--autoplay-policy=no-user-gesture-required",
        # Cast discovery off (it multicasts on the LAN); WebRTC keeps its defaults.
        "--disable-features=MediaRouter,DialMediaRouteProvider",
        # Nothing but loopback: any stray request goes to a dead local port, names don't resolve.
        "--proxy-server=http://127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
        f"--ignore-certificate-errors-spki-list={spki_sha256_base64(server_cert)}",
    ]
    with playwright_sync.sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=str(chromium), headless=True, args=args, timeout=60_000
        )
        try:
            yield launched
        finally:
            launched.close()


class PageLog:
    """The page's console and its API responses, for assertions and failure messages."""

    def __init__(self, page: Any) -> None:
        self.console: list[str] = []
        self.api: list[tuple[str, str, int]] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("response", self._response)

    def _response(self, response: Any) -> None:
        url = str(response.url)
        if "/api/" in url:
            self.api.append((response.request.method, url.partition("?")[0], response.status))

    def statuses(self, method: str, path: str) -> list[int]:
        return [s for m, u, s in self.api if m == method and u.endswith(path)]

    def __str__(self) -> str:
        return "\n".join(self.console[-30:]) + f"\napi: {self.api}"


def _wait(page: Any, predicate: str, timeout_ms: float = 10_000) -> None:
    """Poll a JS predicate with page.evaluate.

    Playwright's wait_for_function evaluates its predicate with eval(), which the page's strict
    Content-Security-Policy forbids, and the test keeps that policy on rather than bypass it.
    """
    deadline = time.monotonic() + timeout_ms / 1000
    expression = predicate if predicate.lstrip().startswith("()") else f"() => ({predicate})"
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout_ms / 1000:.0f} s: {predicate}")
        page.wait_for_timeout(100)


def _jv(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(
        "() => JSON.parse(JSON.stringify(window.jetvoice, (k, v) => v === undefined ? null : v))"
    )
    return state


def _converse(page: Any, log: PageLog, screenshot: Path) -> None:
    """Press talk, speak the question, and check the page heard it and answered aloud."""
    page.click("#talk")
    _wait(
        page,
        "['listening', 'thinking', 'speaking'].includes(window.jetvoice.state)",
        CONNECT_BOUND_MS,
    )
    settings = _jv(page)["micSettings"] or {}
    assert settings.get("echoCancellation") is True, settings

    # The question, then a bot reply after it, both in the page's transcript.
    _wait(
        page,
        """() => {
            const t = window.jetvoice.transcript;
            const u = t.findIndex((e) => e.role === 'user' && e.text.trim());
            return u >= 0 && t.slice(u + 1).some((e) => e.role === 'bot' && e.text.trim());
        }""",
        ANSWER_BOUND_MS,
    )
    # ... and the reply's audio, audible after the question was heard.
    _wait(
        page,
        """() => {
            const jv = window.jetvoice;
            const user = jv.transcript.find((e) => e.role === 'user' && e.text.trim());
            return jv.botAudioStarts.some((t) => t >= user.t);
        }""",
        30_000,
    )
    # Mid-conversation, once the reply's spoken text (bot-output) replaced the LLM preview
    # and the server's latency breakdown for the turn is shown.
    with contextlib.suppress(TimeoutError):
        _wait(
            page,
            """() => {
                const jv = window.jetvoice;
                const last = jv.transcript[jv.transcript.length - 1];
                return jv.lastServerLatency !== null && last.role === 'bot' && last.final;
            }""",
            30_000,
        )
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(screenshot))

    state = _jv(page)
    notice = page.inner_text("#notice") if page.query_selector("#notice") else ""
    print(f"page error: {state['error']}; notice: {notice!r}; rtvi: {state['rtviCounts']}")
    user_index = next(i for i, e in enumerate(state["transcript"]) if e["role"] == "user")
    question = state["transcript"][user_index]["text"].lower()
    reply = next(e for e in state["transcript"][user_index + 1 :] if e["role"] == "bot")
    assert "weather" in question, state["transcript"]
    assert len(reply["text"].split()) >= 2, reply
    assert state["botPeakDb"] is not None and state["botPeakDb"] > -50, state["botPeakDb"]
    assert state["connectionState"] == "connected"
    assert log.statuses("POST", "/api/offer") == [200]
    # The bot's line only ever grows (the streamed text and the spoken text never alternate).
    assert state["botTextRegressions"] == 0, state["transcript"]
    for entry in (e for e in state["transcript"] if e["role"] == "bot"):
        lengths = [len(text) for text in entry["shown"]]
        assert lengths == sorted(lengths), entry["shown"]

    page.click("#talk")  # hang up
    _wait(page, "window.jetvoice.state === 'idle'")


@pytest.mark.timeout(240)
def test_paired_browser_gets_a_spoken_answer_over_https(
    browser: Any, secure_agent: AgentProcess
) -> None:
    started = time.monotonic()
    context = browser.new_context(viewport=PHONE, ignore_https_errors=False)
    page = context.new_page()
    log = PageLog(page)
    try:
        page.goto(f"{secure_agent.base_url}/?token={secure_agent.token}")
        assert page.url.startswith("https://127.0.0.1:")
        _wait(page, "window.jetvoice && window.jetvoice.pairing === 'paired'")
        assert "token" not in page.url, "the page must strip the token from the address bar"
        assert page.evaluate("window.isSecureContext")
        assert page.inner_text("#pair") == "paired"
        _converse(page, log, SCREENSHOT)
    except Exception as error:
        raise AssertionError(f"{error}\n--- page ---\n{log}") from error
    finally:
        context.close()
    print(f"browser call: {time.monotonic() - started:.1f} s, screenshot {SCREENSHOT}")


@pytest.mark.timeout(240)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_browser_on_this_machine_talks_to_the_default_bind(
    browser: Any, agent: AgentProcess, host: str
) -> None:
    """What a person gets from `just serve`: the page at http://127.0.0.1 or localhost."""
    started = time.monotonic()
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    log = PageLog(page)
    url = agent.base_url.replace("127.0.0.1", host)
    try:
        page.goto(f"{url}/")
        assert page.url.startswith(f"http://{host}:")
        # Loopback origins are secure contexts: the microphone is allowed over plain http.
        assert page.evaluate("window.isSecureContext")
        _wait(page, "window.jetvoice && window.jetvoice.pairing === 'local'")
        _converse(page, log, SCREENSHOT.with_name(f"call-{host}.png"))
    except Exception as error:
        raise AssertionError(f"{error}\n--- page ---\n{log}") from error
    finally:
        context.close()
    print(f"browser call at {url}: {time.monotonic() - started:.1f} s")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("query", "status"), [("", 401), ("?token=not-the-token", 403)], ids=["no-token", "wrong"]
)
def test_unpaired_browser_is_refused(
    browser: Any, secure_agent: AgentProcess, query: str, status: int
) -> None:
    context = browser.new_context(viewport=PHONE)  # fresh storage: no token from another test
    page = context.new_page()
    log = PageLog(page)
    try:
        page.goto(f"{secure_agent.base_url}/{query}")
        _wait(page, "window.jetvoice && window.jetvoice.pairing === 'not-paired'")
        assert page.inner_text("#pair") == "not paired"
        page.click("#talk")
        _wait(
            page,
            "window.jetvoice.error && window.jetvoice.error.kind === 'auth'",
            CONNECT_BOUND_MS,
        )
        notice = page.inner_text("#notice")
        assert f"Not paired with this server (HTTP {status})" in notice, notice
        assert "pairing link" in notice
        assert log.statuses("GET", "/api/pairing") == [status]
        assert log.statuses("POST", "/api/offer") == [status]
        assert _jv(page)["state"] == "error"
    except Exception as error:
        raise AssertionError(f"{error}\n--- page ---\n{log}") from error
    finally:
        context.close()
