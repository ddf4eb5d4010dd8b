"""The Home Assistant tool against a fake Home Assistant on 127.0.0.1: the command and the token
go out, the speech comes back, and every failure (slow, down, refused, broken) becomes a short
speakable error within the timeout."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from pipeline.config import ToolsConfig
from pipeline.tools.home_assistant import HomeAssistant, HomeAssistantError, check_url, speech_of
from pipeline.tools.registry import SessionTools
from services.llm_server import free_loopback_port
from tests.support.fake_home_assistant import TOKEN, create_app
from tests.support.local_server import serve
from tests.support.tool_calls import Call


@pytest_asyncio.fixture
async def fake_ha() -> AsyncIterator[tuple[str, Any]]:
    """The fake on a free loopback port: its URL and its app (mode and commands)."""
    app = create_app()
    async with serve(app) as url:
        yield url, app


@pytest.mark.asyncio
async def test_a_command_is_carried_out(fake_ha: tuple[str, Any]) -> None:
    url, app = fake_ha
    ha = HomeAssistant(url, TOKEN, timeout_secs=2)
    reply = await ha.converse("  turn on the\nliving room lamp ")
    assert reply == "Done: turn on the living room lamp"
    assert app.state.commands == [{"text": "turn on the living room lamp", "language": "en"}]


@pytest.mark.asyncio
async def test_a_wrong_token_is_refused(fake_ha: tuple[str, Any]) -> None:
    url, _app = fake_ha
    with pytest.raises(HomeAssistantError, match="refused the access token") as caught:
        await HomeAssistant(url, "wrong-token", timeout_secs=2).converse("lights on")
    assert "wrong-token" not in str(caught.value)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("mode", "message"),
    [("error", "answered HTTP 500"), ("not_json", "not JSON")],
)
async def test_a_broken_answer_is_an_error(
    fake_ha: tuple[str, Any], mode: str, message: str
) -> None:
    url, app = fake_ha
    app.state.mode = mode
    with pytest.raises(HomeAssistantError, match=message):
        await HomeAssistant(url, TOKEN, timeout_secs=2).converse("lights on")


@pytest.mark.asyncio
async def test_a_hanging_home_assistant_times_out(fake_ha: tuple[str, Any]) -> None:
    url, app = fake_ha
    app.state.mode = "hang"
    started = time.monotonic()
    with pytest.raises(HomeAssistantError, match=r"did not answer within 0\.3 seconds"):
        await HomeAssistant(url, TOKEN, timeout_secs=0.3).converse("lights on")
    assert time.monotonic() - started < 1.5


@pytest.mark.asyncio
async def test_an_unreachable_home_assistant_is_an_error() -> None:
    url = f"http://127.0.0.1:{free_loopback_port()}"  # nothing listens there
    with pytest.raises(HomeAssistantError, match="Home Assistant cannot be reached"):
        await HomeAssistant(url, TOKEN, timeout_secs=1).converse("lights on")


@pytest.mark.asyncio
async def test_empty_and_overlong_commands_are_refused() -> None:
    ha = HomeAssistant("http://127.0.0.1:9", TOKEN)
    with pytest.raises(ValueError, match="empty"):
        await ha.converse("  ")
    with pytest.raises(ValueError, match="longer than 300"):
        await ha.converse("a" * 301)


def test_speech_of_a_malformed_answer() -> None:
    assert speech_of({"response": {"speech": {"plain": {"speech": " Done. "}}}}) == "Done."
    for answer in ({}, {"response": None}, {"response": {"speech": {"plain": {"speech": ""}}}}):
        with pytest.raises(HomeAssistantError):
            speech_of(answer)


@pytest.mark.parametrize(
    "url",
    [
        "http://homeassistant.local:8123/",
        "http://192.168.1.20:8123",
        "https://10.0.0.5",
        "http://127.0.0.1:8123",
        "http://[fd00::5]:8123",
        "http://169.254.10.10:8123",
    ],
)
def test_lan_urls_are_accepted(url: str) -> None:
    assert check_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://8.8.8.8:8123", "not a LAN address"),
        ("http://[2001:4860::8888]", "not a LAN address"),
        ("ftp://192.168.1.20", "must be http"),
        ("192.168.1.20:8123", "must be http"),
        ("http://", "must be http"),
    ],
)
def test_other_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        check_url(url)


@pytest.mark.asyncio
async def test_the_tool_reports_home_assistant_s_reply_and_errors(
    fake_ha: tuple[str, Any],
) -> None:
    url, app = fake_ha
    config = ToolsConfig(
        enabled=("home_assistant",), home_assistant_url=url, home_assistant_token=TOKEN
    )
    tools = SessionTools(config)
    [tool] = tools.tools
    call = Call("home_assistant", {"command": "turn on the living room lamp"})
    await tools.call(tool, call.params)
    reply = "Done: turn on the living room lamp"
    assert call.result == {"reply": reply, "answer": reply}
    app.state.mode = "error"
    call = Call("home_assistant", {"command": "lock the door"})
    await tools.call(tool, call.params)
    assert call.result == {"error": "Home Assistant answered HTTP 500"}
    await tools.close()


@pytest.mark.asyncio
async def test_a_hanging_home_assistant_gets_the_tool_s_apology(
    fake_ha: tuple[str, Any],
) -> None:
    url, app = fake_ha
    app.state.mode = "hang"
    config = ToolsConfig(
        enabled=("home_assistant",),
        timeout_secs=0.3,
        home_assistant_url=url,
        home_assistant_token=TOKEN,
    )
    tools = SessionTools(config)
    call = Call("home_assistant", {"command": "open the garage"})
    started = time.monotonic()
    await tools.call(tools.tools[0], call.params)
    assert time.monotonic() - started < 1.0
    [(result, properties)] = call.results
    assert "did not finish in time" in result["error"]
    assert properties is not None and properties.run_llm is False
    assert [getattr(f, "text", None) for f in call.llm.pushed] == [config.timeout_apology]
    await tools.close()
