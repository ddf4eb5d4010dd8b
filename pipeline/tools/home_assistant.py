"""The optional Home Assistant tool: a spoken command handed to Home Assistant's own Assist.

``POST /api/conversation/process`` (Home Assistant's REST API) understands "turn on the living
room lamp" or "is the front door locked" against the user's own device names and answers a
sentence, which suits a small LLM far better than entity ids and service calls. Off unless a URL
and a token are configured; every request has a timeout, no proxy from the environment, and the
token never appears in a log line or an error message.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

import httpx

MAX_COMMAND_CHARS = 300


class HomeAssistantError(RuntimeError):
    """Home Assistant could not be reached or refused the request; the message is speakable."""


def check_url(url: str) -> str:
    """The base URL without a trailing slash, if it is one jetvoice will talk to.

    Only http(s) to a loopback, private (RFC 1918 / ULA) or link-local address, or to a host
    name (``homeassistant.local``), which is assumed to be on the LAN.

    Raises:
        ValueError: with the reason.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"the Home Assistant URL must be http(s)://HOST[:PORT], not {url!r}")
    try:
        address = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return url.rstrip("/")
    if not (address.is_loopback or address.is_private or address.is_link_local):
        raise ValueError(
            f"the Home Assistant URL {url!r} is not a LAN address: jetvoice stays in the house"
        )
    return url.rstrip("/")


def speech_of(answer: Any) -> str:
    """The sentence in a ``/api/conversation/process`` answer.

    Raises:
        HomeAssistantError: the answer has no speech.
    """
    try:
        speech = answer["response"]["speech"]["plain"]["speech"]
    except (KeyError, TypeError) as error:
        raise HomeAssistantError("Home Assistant gave an answer without speech") from error
    if not isinstance(speech, str) or not speech.strip():
        raise HomeAssistantError("Home Assistant gave an empty answer")
    return speech.strip()


class HomeAssistant:
    """A client of one Home Assistant instance; a short-lived connection per request."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout_secs: float = 4.0,
        language: str = "en",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = check_url(url)
        self._token = token
        self._timeout = httpx.Timeout(timeout_secs, connect=min(2.0, timeout_secs))
        self._timeout_secs = timeout_secs
        self._language = language
        self._transport = transport

    async def converse(self, command: str) -> str:
        """Have Home Assistant carry out (or answer) ``command``; its spoken reply.

        Raises:
            HomeAssistantError: unreachable, too slow, refused, or a malformed answer.
            ValueError: an empty or overlong command.
        """
        text = " ".join(command.split())
        if not text:
            raise ValueError("the command is empty")
        if len(text) > MAX_COMMAND_CHARS:
            raise ValueError(f"the command is longer than {MAX_COMMAND_CHARS} characters")
        body = {"text": text, "language": self._language}
        return speech_of(await self._post("/api/conversation/process", body))

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {self._token}"}
        try:
            async with httpx.AsyncClient(
                base_url=self.url,
                timeout=self._timeout,
                trust_env=False,
                follow_redirects=False,
                transport=self._transport,
            ) as client:
                response = await client.post(path, json=body, headers=headers)
        except httpx.TimeoutException as error:
            raise HomeAssistantError(
                f"Home Assistant did not answer within {self._timeout_secs:g} seconds"
            ) from error
        except httpx.HTTPError as error:
            raise HomeAssistantError("Home Assistant cannot be reached") from error
        if response.status_code == 401:
            raise HomeAssistantError("Home Assistant refused the access token")
        if response.status_code != 200:
            raise HomeAssistantError(f"Home Assistant answered HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError as error:
            raise HomeAssistantError("Home Assistant gave an answer that is not JSON") from error
