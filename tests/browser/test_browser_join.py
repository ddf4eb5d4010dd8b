"""The page's join link, in a real browser: a second paired page joins a running conversation.

Same set-up as test_browser_call (headless Debian Chromium, HTTPS, pairing token, a WAV file as
every page's microphone). Page A starts a call and shows its join link; page B, another browser
profile paired with the same server, opens the link, joins (no pipeline of its own on the
server), sees the conversation's transcript and hears the bot; it hangs up and A's call goes
on. A link to a conversation that has ended says so and falls back to starting a new one.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pipeline.ops.agent_process import AgentProcess
from tests.browser import test_browser_call as call_test
from tests.browser.test_browser_call import (
    ANSWER_BOUND_MS,
    CONNECT_BOUND_MS,
    PHONE,
    PageLog,
    _jv,
    _wait,
)

# The same Chromium set-up as the call test (its fixtures, used here by name).
chromium = call_test.chromium
browser = call_test.browser

IN_CALL = "['listening', 'thinking', 'speaking'].includes(window.jetvoice.state)"


def _sessions(agent: AgentProcess) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {agent.token}"}
    with httpx.Client(timeout=5.0, trust_env=False, verify=agent.verify()) as client:
        body: dict[str, Any] = client.get(f"{agent.base_url}/health", headers=headers).json()
    return dict(body["sessions"])


def _paired_page(browser: Any, agent: AgentProcess) -> tuple[Any, Any, PageLog]:
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    log = PageLog(page)
    page.goto(f"{agent.base_url}/?token={agent.token}")
    _wait(page, "window.jetvoice && window.jetvoice.pairing === 'paired'")
    return context, page, log


@pytest.mark.timeout(300)
def test_a_second_page_joins_from_the_link_hears_the_bot_and_leaves(
    browser: Any, secure_agent: AgentProcess
) -> None:
    host_context, host, host_log = _paired_page(browser, secure_agent)
    guest_context = None
    guest_log: PageLog | None = None
    try:
        host.click("#talk")
        _wait(host, IN_CALL, CONNECT_BOUND_MS)
        _wait(host, "window.jetvoice.sessionId !== null")
        session_id = _jv(host)["sessionId"]
        assert host.is_visible("#share")
        link = host.input_value("#join-link")
        assert link.endswith(f"/?join={session_id}") and "token" not in link, link
        assert not _jv(host)["joined"]

        guest_context, guest, guest_log = _paired_page(browser, secure_agent)
        guest.goto(link)
        assert guest.inner_text("#talk-label") == "Join"
        assert "join the conversation" in guest.inner_text("#state")
        guest.click("#talk")
        _wait(guest, IN_CALL, CONNECT_BOUND_MS)
        _wait(guest, "window.jetvoice.joined === true")
        assert _jv(guest)["sessionId"] == session_id
        assert guest.input_value("#join-link") == link
        sessions = _sessions(secure_agent)
        assert (sessions["active"], sessions["guests"]) == (1, 1), sessions

        # Both microphones play the question: the one conversation answers, and the joined
        # page gets its transcript and hears the reply too.
        _wait(
            guest,
            """() => {
                const jv = window.jetvoice;
                const u = jv.transcript.findIndex((e) => e.role === 'user' && e.text.trim());
                return u >= 0 && jv.transcript.slice(u + 1).some((e) => e.role === 'bot')
                    && jv.botAudioStarts.length > 0;
            }""",
            ANSWER_BOUND_MS,
        )
        assert "weather" in " ".join(
            e["text"].lower() for e in _jv(guest)["transcript"] if e["role"] == "user"
        )

        guest.click("#talk")  # the guest hangs up; the host's call goes on
        _wait(guest, "window.jetvoice.state === 'idle'")
        _wait(host, IN_CALL)
        assert guest_log.statuses("POST", "/api/offer") == [200]
        host.click("#talk")
        _wait(host, "window.jetvoice.state === 'idle'")
        assert not host.is_visible("#share")
    except Exception as error:
        logs = f"--- host ---\n{host_log}\n--- guest ---\n{guest_log}"
        raise AssertionError(f"{error}\n{logs}") from error
    finally:
        host_context.close()
        if guest_context is not None:
            guest_context.close()


@pytest.mark.timeout(120)
def test_a_link_to_an_ended_conversation_says_so_and_starts_afresh(
    browser: Any, secure_agent: AgentProcess
) -> None:
    context, page, log = _paired_page(browser, secure_agent)
    try:
        page.goto(f"{secure_agent.base_url}/?join=0123456789ab")
        page.click("#talk")
        _wait(page, "window.jetvoice.error && window.jetvoice.error.kind === 'join-ended'")
        assert "That conversation has ended" in page.inner_text("#notice")
        assert "join=" not in page.url
        assert log.statuses("POST", "/api/offer") == [404]
        assert page.inner_text("#talk-label") == "Start talking"
    except Exception as error:
        raise AssertionError(f"{error}\n--- page ---\n{log}") from error
    finally:
        context.close()
