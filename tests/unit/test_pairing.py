"""The pairing token's store, comparison and QR codes; the start-up banner never leaks it."""

from __future__ import annotations

import stat
from pathlib import Path

from pipeline.config import ServerConfig
from pipeline.server.banner import serve_banner
from pipeline.server.pairing import (
    load_or_create_token,
    pairing_url,
    qr_svg,
    qr_terminal,
    token_matches,
    token_path,
)


def test_token_persists_across_restarts_and_rotates_on_request(tmp_path: Path) -> None:
    first = load_or_create_token(tmp_path)
    assert len(first) >= 40
    assert load_or_create_token(tmp_path) == first
    rotated = load_or_create_token(tmp_path, rotate=True)
    assert rotated != first
    assert load_or_create_token(tmp_path) == rotated


def test_token_file_is_owner_only(tmp_path: Path) -> None:
    load_or_create_token(tmp_path / "state")
    assert stat.S_IMODE(token_path(tmp_path / "state").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700


def test_an_unusable_token_file_is_replaced(tmp_path: Path) -> None:
    token_path(tmp_path).write_text("short\n")
    token = load_or_create_token(tmp_path)
    assert token != "short" and len(token) >= 40


def test_token_comparison() -> None:
    assert token_matches("abc", "abc")
    assert not token_matches("abc", "abd")
    assert not token_matches("ab", "abc")
    assert not token_matches("é", "e")


def test_pairing_url_and_qr_codes() -> None:
    url = pairing_url("https://192.168.1.23:8430/", "tok-en_1")
    assert url == "https://192.168.1.23:8430/?token=tok-en_1"
    assert "█" in qr_terminal(url) or "▀" in qr_terminal(url)
    svg = qr_svg(url)
    assert svg.startswith("<svg") and "viewBox" in svg and "<script" not in svg


def _lan(token: str) -> ServerConfig:
    return ServerConfig(
        host="0.0.0.0",
        port=8430,
        tls_certfile=Path("s.crt"),
        tls_keyfile=Path("s.key"),
        tls_ca_certfile=Path("ca.crt"),
        pairing_token=token,
        require_token=True,
        public_urls=("https://192.168.1.23:8430/", "https://box.local:8430/"),
    )


def test_banner_shows_the_pairing_link_on_a_terminal_only(tmp_path: Path) -> None:
    token = "a-secret-pairing-token-0123456789"
    on_terminal = serve_banner(_lan(token), state_dir=tmp_path, show_token=True)
    assert f"https://192.168.1.23:8430/?token={token}" in on_terminal
    assert "https://box.local:8430/" in on_terminal
    assert "https://192.168.1.23:8430/ca.crt" in on_terminal
    assert "https://127.0.0.1:8430/pair" in on_terminal

    to_a_log = serve_banner(_lan(token), state_dir=tmp_path, show_token=False)
    assert token not in to_a_log
    assert str(token_path(tmp_path)) in to_a_log and "/pair" in to_a_log


def test_banner_on_loopback_says_the_token_is_optional(tmp_path: Path) -> None:
    server = ServerConfig(pairing_token="a-secret-pairing-token-0123456789")
    banner = serve_banner(server, state_dir=tmp_path, show_token=True)
    assert "http://127.0.0.1:8430/" in banner and "optional" in banner
    assert "a-secret" not in banner
    # A first-time user is told where the page works, and how to reach it from a phone.
    assert "in a browser on this machine" in banner and "--host 0.0.0.0 --tls" in banner
