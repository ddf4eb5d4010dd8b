"""From ``serve``'s flags and environment to one ToolsConfig; Home Assistant stays off unless
configured, and only then may the network audit accept a LAN peer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.cli import build_parser
from pipeline.config import DEFAULT_TOOLS, ToolsConfig
from pipeline.ops import network_audit
from pipeline.tools.cli import HOME_ASSISTANT_TOKEN_ENV, tools_config


def _config(argv: list[str], environ: dict[str, str] | None = None) -> ToolsConfig:
    args = build_parser().parse_args(["serve", *argv])
    return tools_config(args, environ or {})


def test_defaults_offer_the_local_tools_only() -> None:
    config = _config([])
    assert config.enabled == DEFAULT_TOOLS
    assert not config.home_assistant
    assert config.home_assistant_url is None and config.home_assistant_token is None
    assert config.timeout_secs == 6.0


def test_the_small_managed_model_gets_no_tools_unless_asked() -> None:
    parser = build_parser()
    assert tools_config(parser.parse_args(["serve"]), {}, small_model=True).enabled == ()
    asked = parser.parse_args(["serve", "--tools"])
    assert tools_config(asked, {}, small_model=True).enabled == DEFAULT_TOOLS


def test_who_words_the_answer() -> None:
    args = build_parser().parse_args(["serve"])
    assert not tools_config(args, {}).speak_results
    # The cpu profile's small model on llama.cpp cannot answer from a tool's result.
    assert tools_config(args, {}, small_model=True).speak_results
    assert _config(["--tool-answers", "tool"]).speak_results
    args = build_parser().parse_args(["serve", "--tool-answers", "model"])
    assert not tools_config(args, {}, small_model=True).speak_results


def test_a_token_alone_enables_nothing() -> None:
    config = _config([], {HOME_ASSISTANT_TOKEN_ENV: "secret"})
    assert not config.home_assistant
    assert config.home_assistant_token is None


def test_no_tools_and_timeout() -> None:
    config = _config(["--no-tools", "--tool-timeout", "2.5"])
    assert config.enabled == ()
    assert config.timeout_secs == 2.5
    with pytest.raises(ValueError, match="--tool-timeout must be positive"):
        _config(["--tool-timeout", "0"])


def test_home_assistant_needs_its_token() -> None:
    with pytest.raises(ValueError, match=HOME_ASSISTANT_TOKEN_ENV):
        _config(["--home-assistant-url", "http://192.168.1.20:8123"])
    config = _config(
        ["--home-assistant-url", "http://192.168.1.20:8123/"], {HOME_ASSISTANT_TOKEN_ENV: " t0k "}
    )
    assert config.home_assistant
    assert config.home_assistant_url == "http://192.168.1.20:8123"
    assert config.home_assistant_token == "t0k"
    assert "t0k" not in repr(config)


def test_home_assistant_off_the_lan_is_refused() -> None:
    with pytest.raises(ValueError, match="not a LAN address"):
        _config(
            ["--home-assistant-url", "http://93.184.216.34:8123"], {HOME_ASSISTANT_TOKEN_ENV: "t"}
        )


@pytest.fixture
def lan_peers() -> Iterator[None]:
    """The audit's LAN-peer allowance is process-wide: restore it after the test."""
    saved = set(network_audit._lan_peers)
    network_audit._lan_peers.clear()
    yield
    network_audit._lan_peers.clear()
    network_audit._lan_peers.update(saved)


def test_the_audit_flags_the_lan_until_a_peer_is_configured(lan_peers: None) -> None:
    connect = ("socket.connect", (None, ("192.168.1.20", 8123)))
    resolve = ("socket.getaddrinfo", ("homeassistant.local", 8123, 0, 0, 0))
    assert network_audit.violation(*connect) == "socket.connect '192.168.1.20'"
    assert network_audit.violation(*resolve) is not None
    network_audit.allow_lan_peer("http://HomeAssistant.local:8123")
    assert network_audit.violation(*connect) is None
    assert network_audit.violation(*resolve) is None
    # The internet stays off limits, and so does listening on a LAN address.
    assert network_audit.violation("socket.connect", (None, ("8.8.8.8", 53))) is not None
    assert network_audit.violation("socket.getaddrinfo", ("example.com", 443, 0, 0, 0)) is not None
    assert network_audit.violation("socket.bind", (None, ("192.168.1.5", 0))) is not None
