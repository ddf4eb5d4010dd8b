"""Where a traced process tree sent packets: `strace -f` output of connect/sendto/sendmsg/sendmmsg.

Reads what ``strace -f -e trace=connect,sendto,sendmsg,sendmmsg -s 300 -o FILE`` writes (one
line per call, prefixed by the thread id) and turns each call into the socket addresses it was
aimed at, with the DNS question decoded from any payload sent to port 53. Strict about what it
reports (every IPv4/IPv6 address and every port 53 counts), tolerant of lines it does not know
(signals, resumed calls, netlink): those carry no destination.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

DNS_PORT = 53
TRACED_CALLS = ("connect", "sendto", "sendmsg", "sendmmsg")
# systemd-resolved's lookup socket: a name lookup that never touches port 53 in this tree.
RESOLVED_SOCKET = "io.systemd.Resolve"

_CALL = re.compile(r"^(\d+)\s+(connect|sendto|sendmsg|sendmmsg)\((\d+)(?:<[^>]*>)?, (.*)$")
# A C string as strace prints it: quotes, backslash escapes inside.
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_INET = re.compile(r'sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("#(\d+)"\)')
_INET6 = re.compile(
    r'sa_family=AF_INET6, sin6_port=htons\((\d+)\),[^{}]*?inet_pton\(AF_INET6, "#(\d+)"'
)
_UNIX = re.compile(r'sa_family=AF_UNIX, sun_path=@?"#(\d+)"')
_SIMPLE_ESCAPES = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12, "a": 7, "b": 8, "\\": 92, '"': 34}
QUERY_TYPES = {1: "A", 5: "CNAME", 12: "PTR", 16: "TXT", 28: "AAAA", 33: "SRV", 65: "HTTPS"}


@dataclass(frozen=True)
class Destination:
    """Where one call sent to: an IP address and port, or a Unix socket path (port None)."""

    family: str  # "AF_INET", "AF_INET6" or "AF_UNIX"
    address: str
    port: int | None

    def __str__(self) -> str:
        if self.port is None:
            return f"unix:{self.address}"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class TracedCall:
    """One traced system call and where it went."""

    tid: int
    call: str
    fd: int
    # Explicit ones, else the peer its thread connect()ed the descriptor to; empty when unknown
    # (netlink, or a socket this tree accepted: its peer came to us).
    destinations: tuple[Destination, ...]
    lookups: tuple[str, ...]  # DNS questions in its payload ("example.com A")
    line: str


def unescape(text: str) -> bytes:
    """The bytes of a string strace printed (octal, ``\\xNN`` and C escapes)."""
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char != "\\" or i + 1 == len(text):
            out += char.encode("latin-1", errors="replace")
            i += 1
            continue
        follower = text[i + 1]
        if follower in "01234567":
            digits = re.match(r"[0-7]{1,3}", text[i + 1 :])
            assert digits is not None
            out.append(int(digits.group(), 8) & 0xFF)
            i += 1 + len(digits.group())
        elif follower == "x" and re.match(r"[0-9a-fA-F]{2}", text[i + 2 : i + 4]):
            out.append(int(text[i + 2 : i + 4], 16))
            i += 4
        else:
            out.append(_SIMPLE_ESCAPES.get(follower, ord(follower) & 0xFF))
            i += 2
    return bytes(out)


def dns_question(payload: bytes) -> str | None:
    """``"name TYPE"`` of a DNS query (over UDP, or TCP with its length prefix), else None."""
    for start in (0, 2):
        header = payload[start : start + 12]
        if len(header) < 12 or header[2] & 0x80 or int.from_bytes(header[4:6], "big") < 1:
            continue  # too short, a response, or no question
        labels, at = [], start + 12
        while at < len(payload) and 0 < payload[at] < 64:
            length = payload[at]
            labels.append(payload[at + 1 : at + 1 + length].decode("ascii", errors="replace"))
            at += 1 + length
        if not labels or at >= len(payload) or payload[at] != 0:
            continue
        qtype = int.from_bytes(payload[at + 1 : at + 3], "big")
        return f"{'.'.join(labels)} {QUERY_TYPES.get(qtype, str(qtype))}"
    return None


def _skeleton(arguments: str) -> tuple[str, list[str]]:
    """The arguments with each string literal replaced by ``"#i"``, and the literals: payloads
    never look like a socket address then."""
    strings: list[str] = []

    def number(match: re.Match[str]) -> str:
        strings.append(match.group(1))
        return f'"#{len(strings) - 1}"'

    return _STRING.sub(number, arguments), strings


def parse_trace(lines: Iterable[str]) -> list[TracedCall]:
    """Every traced call, in order; a send on a connected socket gets the peer its thread
    connect()ed that descriptor to."""
    peers: dict[tuple[int, int], Destination] = {}
    calls = []
    for raw in lines:
        match = _CALL.match(raw.rstrip("\n"))
        if match is None:
            continue  # a signal, an exit, a resumed call (its arguments were on the first line)
        tid, call, fd, rest = int(match[1]), match[2], int(match[3]), match[4]
        skeleton, strings = _skeleton(rest)
        found = [
            *(Destination("AF_INET", strings[int(i)], int(p)) for p, i in _INET.findall(skeleton)),
            *(
                Destination("AF_INET6", strings[int(i)], int(p))
                for p, i in _INET6.findall(skeleton)
            ),
            *(Destination("AF_UNIX", strings[int(i)], None) for i in _UNIX.findall(skeleton)),
        ]
        if call == "connect":
            if found:
                peers[(tid, fd)] = found[0]
            else:
                peers.pop((tid, fd), None)  # AF_UNSPEC: disconnected
        elif not found and (tid, fd) in peers:
            found = [peers[(tid, fd)]]
        lookups: list[str] = []
        if call != "connect" and any(d.port == DNS_PORT for d in found):
            questions = (dns_question(unescape(s)) for s in strings)
            lookups = [q for q in questions if q is not None]
        calls.append(TracedCall(tid, call, fd, tuple(found), tuple(lookups), raw.rstrip("\n")))
    return calls


def leaves_this_machine(destination: Destination, is_own: Callable[[str], bool]) -> bool:
    """Whether a destination is off this machine, or a name lookup (port 53 anywhere, or
    systemd-resolved's socket)."""
    if destination.family == "AF_UNIX":
        return RESOLVED_SOCKET in destination.address
    return destination.port == DNS_PORT or not is_own(destination.address)


@dataclass(frozen=True)
class TraceReport:
    """What a whole trace shows: every destination, the offending ones, the lookups."""

    calls: int
    threads: frozenset[int]
    destinations: Counter[str]
    offending: list[TracedCall]
    lookups: Counter[str]

    @classmethod
    def of(cls, calls: list[TracedCall], is_own: Callable[[str], bool]) -> TraceReport:
        """Sort ``calls`` into the report."""
        return cls(
            calls=len(calls),
            threads=frozenset(c.tid for c in calls),
            destinations=Counter(str(d) for c in calls for d in c.destinations),
            offending=[
                c for c in calls if any(leaves_this_machine(d, is_own) for d in c.destinations)
            ],
            lookups=Counter(q for c in calls for q in c.lookups),
        )

    def summary(self) -> str:
        """A few lines for the test's output and failure message."""
        lines = [
            f"{self.calls} calls from {len(self.threads)} threads",
            "destinations: " + ", ".join(f"{d} x{n}" for d, n in self.destinations.most_common(12)),
        ]
        if self.lookups:
            lines.append(
                "DNS lookups: " + ", ".join(f"{q} x{n}" for q, n in self.lookups.most_common())
            )
        if self.offending:
            lines.append(f"{len(self.offending)} calls leave this machine or look a name up:")
            lines += [f"  {c.line[:300]}" for c in self.offending[:10]]
        return "\n".join(lines)
