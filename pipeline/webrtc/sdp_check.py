"""Validation of an SDP offer before any WebRTC object is created for it.

pipecat's request handler builds an ``RTCPeerConnection`` first and parses the offer second,
so a malformed offer can fail halfway through with whatever aiortc raises (AssertionError,
KeyError, IndexError, ValueError...), after objects were made for it. :func:`check_offer` reads
the text line by line first and refuses, with an exact message, anything that is not a WebRTC
offer this server can answer: too large, control characters, broken line syntax, no audio
section first, no ICE credentials, no DTLS fingerprint or setup role, no codec in common. An
offer that passes is then parsed by aiortc's own parser and codec negotiation, so that nothing
that reaches pipecat fails there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from aiortc.codecs import CODECS
from aiortc.rtcpeerconnection import find_common_codecs
from aiortc.sdp import SessionDescription

# A real offer (audio, video, data channel, a few candidates) is 3-10 KB and 60-200 lines.
MAX_OFFER_CHARS = 32 * 1024
MAX_LINES = 600
MAX_LINE_CHARS = 2048
# pipecat's client offers microphone, camera, optionally screen, and the data channel.
MAX_MEDIA_SECTIONS = 8
MAX_CANDIDATES = 64

SUPPORTED_MEDIA = ("audio", "video", "application")
RTP_PROTOCOLS = ("UDP/TLS/RTP/SAVPF", "TCP/TLS/RTP/SAVPF", "RTP/SAVPF")
SCTP_PROTOCOLS = ("UDP/DTLS/SCTP", "TCP/DTLS/SCTP", "DTLS/SCTP")
# Digest sizes aiortc can verify a DTLS certificate against (browsers send sha-256).
FINGERPRINT_BYTES = {"sha-256": 32, "sha-384": 48, "sha-512": 64}
SETUP_ROLES = ("actpass", "active", "passive")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# Attributes a section (or the session) may carry once: parsers disagree on which copy wins.
SINGLE_ATTRIBUTES = ("mid", "ice-ufrag", "ice-pwd", "setup", "sctp-port")

# C0 controls other than tab (a lone CR included), DEL, C1 controls, the Unicode line and
# paragraph separators (Python's splitlines would cut a line there) and lone surrogates.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_LINE = re.compile(r"[a-z]=")
_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]+")
_HEX_PAIRS = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2})*")
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")
_CANDIDATE = re.compile(
    r"candidate:\S{1,32} \d{1,3} (?i:udp|tcp) \d{1,10} \S{1,255} \d{1,5} typ "
    r"(?:host|srflx|prflx|relay)(?: \S+ \S+)*"
)


class SDPError(ValueError):
    """The offer is not one this server can answer; the message says why, for the client."""


@dataclass(frozen=True)
class MediaSection:
    """One ``m=`` section: its kind, port, protocol and formats, and its ``a=`` attributes."""

    number: int
    kind: str
    port: int
    protocol: str
    formats: tuple[str, ...]
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def attribute(self, name: str, session: dict[str, list[str]]) -> str | None:
        """The section's value of ``a=name``, else the session-level one."""
        values = self.attributes.get(name) or session.get(name)
        return values[0] if values else None


@dataclass(frozen=True)
class Offer:
    """What :func:`check_offer` read: the session attributes and the media sections."""

    session: dict[str, list[str]]
    media: tuple[MediaSection, ...]


def check_offer(sdp: str) -> Offer:
    """Validate an SDP offer; raises :class:`SDPError` with an exact message."""
    if len(sdp) > MAX_OFFER_CHARS:
        raise SDPError(f"the offer is too large ({len(sdp)} characters, at most {MAX_OFFER_CHARS})")
    lines = _split_lines(sdp)
    if lines[0] != "v=0":
        raise SDPError("the offer must start with v=0")
    first_media = next((i for i, line in enumerate(lines) if line.startswith("m=")), None)
    if first_media is None:
        raise SDPError("the offer has no media section (m=)")
    session_lines = lines[:first_media]
    for kind in ("o", "s", "t"):
        if not any(line.startswith(f"{kind}=") for line in session_lines):
            raise SDPError(f"the offer has no {kind}= line")
    session = _attributes(session_lines, 0)
    media = _media_sections(lines, first_media)
    for section in media:
        _check_section(section, session)
    _check_bundle(session, media)
    _check_with_aiortc(sdp)
    return Offer(session=session, media=media)


def _split_lines(sdp: str) -> list[str]:
    lines = sdp.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final line ending
    if not lines:
        raise SDPError("the offer is empty")
    if len(lines) > MAX_LINES:
        raise SDPError(f"the offer has too many lines ({len(lines)}, at most {MAX_LINES})")
    checked = []
    for number, raw in enumerate(lines, start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        bad = _FORBIDDEN.search(line)
        if bad is not None:
            char = bad.group()
            name = "a NUL byte" if char == "\x00" else f"control character U+{ord(char):04X}"
            raise SDPError(f"line {number} contains {name}")
        if len(line) > MAX_LINE_CHARS:
            raise SDPError(
                f"line {number} is too long ({len(line)} characters, at most {MAX_LINE_CHARS})"
            )
        if not line:
            raise SDPError(f"line {number} is empty")
        if not _LINE.match(line):
            raise SDPError(f"line {number} is not of the form <letter>=<value>")
        checked.append(line)
    return checked


def _attributes(lines: list[str], first_number: int) -> dict[str, list[str]]:
    attributes: dict[str, list[str]] = {}
    for offset, line in enumerate(lines):
        if not line.startswith("a="):
            continue
        name, _, value = line[2:].partition(":")
        if not name:
            raise SDPError(f"line {first_number + offset + 1} has an empty attribute name")
        attributes.setdefault(name, []).append(value)
    return attributes


def _media_sections(lines: list[str], first: int) -> tuple[MediaSection, ...]:
    starts = [i for i in range(first, len(lines)) if lines[i].startswith("m=")]
    if len(starts) > MAX_MEDIA_SECTIONS:
        raise SDPError(f"the offer has {len(starts)} media sections (at most {MAX_MEDIA_SECTIONS})")
    sections = []
    for number, (start, end) in enumerate(
        zip(starts, [*starts[1:], len(lines)], strict=True), start=1
    ):
        kind, port, protocol, formats = _media_line(lines[start], number)
        sections.append(
            MediaSection(
                number=number,
                kind=kind,
                port=port,
                protocol=protocol,
                formats=formats,
                attributes=_attributes(lines[start + 1 : end], start + 1),
            )
        )
    if sections[0].kind != "audio":
        raise SDPError(
            f"the first media section must be audio (the microphone), not {sections[0].kind}"
        )
    return tuple(sections)


def _media_line(line: str, number: int) -> tuple[str, int, str, tuple[str, ...]]:
    parts = line[2:].split(" ")
    if len(parts) < 4 or not all(parts):
        raise SDPError(f"m-line {number} is not <media> <port> <protocol> <formats...>")
    kind, port_text, protocol, *formats = parts
    if kind not in SUPPORTED_MEDIA:
        raise SDPError(f"m-line {number}: unsupported media {kind[:20]!r}")
    if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
        raise SDPError(f"m-line {number}: bad port {port_text[:20]!r}")
    if kind == "application":
        if protocol not in SCTP_PROTOCOLS:
            raise SDPError(f"m-line {number}: unsupported data channel protocol {protocol[:30]!r}")
        if protocol == "DTLS/SCTP" and not formats[0].isdigit():
            raise SDPError(f"m-line {number}: bad SCTP port {formats[0][:20]!r}")
    else:
        if protocol not in RTP_PROTOCOLS:
            raise SDPError(
                f"m-line {number}: unsupported protocol {protocol[:30]!r} (WebRTC needs DTLS-SRTP)"
            )
        for fmt in formats:
            if not fmt.isdigit() or len(fmt) > 3 or int(fmt) > 127:
                raise SDPError(f"m-line {number}: bad payload type {fmt[:20]!r}")
    return kind, int(port_text), protocol, tuple(formats)


def _check_section(section: MediaSection, session: dict[str, list[str]]) -> None:
    where = f"media section {section.number} ({section.kind})"
    for name in SINGLE_ATTRIBUTES:
        if len(section.attributes.get(name, ())) > 1 or len(session.get(name, ())) > 1:
            raise SDPError(f"{where}: a={name} appears more than once")
    _check_ice(section, session, where)
    _check_dtls(section, session, where)
    _check_media_attributes(section, where)


def _check_ice(section: MediaSection, session: dict[str, list[str]], where: str) -> None:
    ufrag = section.attribute("ice-ufrag", session)
    if ufrag is None:
        raise SDPError(f"{where} has no a=ice-ufrag")
    if not 4 <= len(ufrag) <= 256 or not _ICE_CHARS.fullmatch(ufrag):
        raise SDPError(f"{where}: a=ice-ufrag must be 4-256 letters, digits, '+' or '/'")
    password = section.attribute("ice-pwd", session)
    if password is None:
        raise SDPError(f"{where} has no a=ice-pwd")
    if not 22 <= len(password) <= 256 or not _ICE_CHARS.fullmatch(password):
        raise SDPError(f"{where}: a=ice-pwd must be 22-256 letters, digits, '+' or '/'")
    candidates = section.attributes.get("candidate", [])
    if len(candidates) > MAX_CANDIDATES:
        raise SDPError(f"{where} has {len(candidates)} candidates (at most {MAX_CANDIDATES})")
    for candidate in candidates:
        if not _CANDIDATE.fullmatch(f"candidate:{candidate}"):
            raise SDPError(f"{where} has a malformed a=candidate")


def _check_dtls(section: MediaSection, session: dict[str, list[str]], where: str) -> None:
    fingerprint = section.attribute("fingerprint", session)
    if fingerprint is None:
        raise SDPError(f"{where} has no a=fingerprint (DTLS)")
    _check_fingerprint(fingerprint, where)
    setup = section.attribute("setup", session)
    if setup is None:
        raise SDPError(f"{where} has no a=setup")
    if setup not in SETUP_ROLES:
        raise SDPError(f"{where}: a=setup must be actpass, active or passive, not {setup[:20]!r}")


def _check_media_attributes(section: MediaSection, where: str) -> None:
    # aiortc names the answer's sections after the offer's mids; without one it makes its own
    # and then refuses its own answer.
    mid = section.attribute("mid", {})
    if mid is None:
        raise SDPError(f"{where} has no a=mid")
    if not _TOKEN.fullmatch(mid):
        raise SDPError(f"{where}: bad a=mid {mid[:20]!r}")
    if section.kind != "application":
        if "rtcp-mux" not in section.attributes:
            raise SDPError(f"{where} lacks a=rtcp-mux (WebRTC requires it)")
        # RFC 4566 would read a missing direction as sendrecv; aiortc cannot answer without one.
        directions = [d for d in DIRECTIONS if d in section.attributes]
        if len(directions) != 1:
            raise SDPError(f"{where} needs exactly one of a=sendrecv, sendonly, recvonly, inactive")


def _check_fingerprint(value: str, where: str) -> None:
    algorithm, _, digest = value.partition(" ")
    size = FINGERPRINT_BYTES.get(algorithm.lower())
    if size is None:
        raise SDPError(
            f"{where}: unsupported fingerprint hash {algorithm[:20]!r} "
            "(sha-256, sha-384 or sha-512)"
        )
    if not _HEX_PAIRS.fullmatch(digest) or len(digest) != 3 * size - 1:
        raise SDPError(f"{where}: malformed {algorithm.lower()} fingerprint")


def _check_bundle(session: dict[str, list[str]], media: tuple[MediaSection, ...]) -> None:
    named = [m.attribute("mid", {}) for m in media]
    if len(set(named)) != len(named):
        raise SDPError("two media sections share one a=mid")
    for group in session.get("group", []):
        semantic, *items = group.split(" ")
        if semantic != "BUNDLE":
            continue
        for item in items:
            if item not in named:
                raise SDPError(f"the BUNDLE group names mid {item[:20]!r}, which no section has")


def _check_with_aiortc(sdp: str) -> None:
    """Parse as aiortc will, and negotiate codecs as it will, so neither fails later."""
    try:
        description = SessionDescription.parse(sdp)
    # aiortc's parser raises whatever its string handling hits on input it does not expect.
    except Exception as error:  # noqa: BLE001 - turned into an exact refusal
        raise SDPError(f"the offer could not be parsed ({type(error).__name__})") from None
    for number, media in enumerate(description.media, start=1):
        if media.kind in ("audio", "video"):
            if not find_common_codecs(CODECS[media.kind], media.rtp.codecs):
                names = ", ".join(sorted({c.mimeType.split("/")[1] for c in CODECS[media.kind]}))
                raise SDPError(
                    f"media section {number} ({media.kind}) offers no codec this server "
                    f"supports ({names})"
                )
        elif media.kind == "application" and media.sctp_port is None and not media.fmt:
            raise SDPError(f"media section {number} (application) has no SCTP port")
