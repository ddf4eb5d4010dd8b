"""The pairing token: what a phone must present to start a session, and how it gets it.

One random token per installation, kept in the state directory (mode 0600) so a paired phone
stays paired across restarts; ``jetvoice serve --new-token`` rotates it. A phone receives it once
as a link ending in ``?token=...`` (printed, shown as a QR code in the terminal and on the
loopback-only ``/pair`` page); the talk page moves it into the browser's ``localStorage`` (the
phone stays paired after the tab is closed) and sends it as an ``Authorization: Bearer`` header
from then on.
"""

from __future__ import annotations

import hmac
import io
import os
import secrets
from pathlib import Path
from urllib.parse import quote

import segno

TOKEN_FILE_NAME = "pairing-token"
# 32 bytes of randomness: not guessable, short enough for a QR code a phone reads at a glance.
TOKEN_BYTES = 32
_MIN_TOKEN_LENGTH = 16


def token_path(state_dir: Path) -> Path:
    """Where the pairing token is kept."""
    return state_dir / TOKEN_FILE_NAME


def load_or_create_token(state_dir: Path, *, rotate: bool = False) -> str:
    """The persisted token; a new one when there is none, it is unusable, or ``rotate``."""
    path = token_path(state_dir)
    if not rotate and path.exists():
        token = path.read_text(encoding="ascii", errors="replace").strip()
        if len(token) >= _MIN_TOKEN_LENGTH and token.isascii() and token.isprintable():
            path.chmod(0o600)
            return token
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    os.replace(tmp, path)
    return token


def token_matches(presented: str, expected: str) -> bool:
    """Constant-time comparison, so response timing says nothing about the token."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def pairing_url(base_url: str, token: str) -> str:
    """The talk page's URL with the token as ``?token=`` (the page strips it from the bar)."""
    return f"{base_url.rstrip('/')}/?token={quote(token, safe='')}"


def qr_terminal(text: str) -> str:
    """``text`` as a QR code drawn with block characters (two rows per line)."""
    out = io.StringIO()
    segno.make(text, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def qr_svg(text: str) -> str:
    """``text`` as an inline SVG QR code (no XML declaration, scalable)."""
    svg: str = segno.make(text, error="m").svg_inline(
        scale=6, border=3, dark="#000", light="#fff", omitsize=True
    )
    return svg
