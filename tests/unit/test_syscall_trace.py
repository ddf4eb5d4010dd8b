"""Reading `strace -f` output: destinations, port 53 and the DNS names asked for (the parser of
tests/e2e/test_syscall_audit.py), on lines strace 6.1 wrote for onnxruntime's telemetry."""

from __future__ import annotations

from pathlib import Path

from tests.support.syscall_trace import (
    Destination,
    TraceReport,
    dns_question,
    leaves_this_machine,
    parse_trace,
    unescape,
)

TRACE = Path(__file__).resolve().parents[1] / "fixtures" / "strace" / "telemetry_lookups.strace"


def _own(address: str) -> bool:
    return address in ("127.0.0.1", "::1", "192.168.1.23")


def test_unescape_reads_strace_octal_hex_and_c_escapes() -> None:
    assert unescape(r"\0\1\377\tA\\\"\x41\0001") == b'\x00\x01\xff\tA\\"A\x001'


def test_a_dns_query_is_decoded_over_udp_and_tcp() -> None:
    query = unescape(r"K@\1\0\0\1\0\0\0\0\0\0\6mobile\6events\4data\tmicrosoft\3com\0\0\34\0\1")
    assert dns_question(query) == "mobile.events.data.microsoft.com AAAA"
    assert dns_question(len(query).to_bytes(2, "big") + query) == (
        "mobile.events.data.microsoft.com AAAA"
    )
    assert dns_question(b"GET / HTTP/1.1\r\n\r\n") is None


def test_the_telemetry_trace_is_caught_with_its_lookups() -> None:
    calls = parse_trace(TRACE.read_text().splitlines())
    report = TraceReport.of(calls, _own)
    assert report.lookups == {
        "mobile.events.data.microsoft.com A": 2,
        "mobile.events.data.microsoft.com AAAA": 2,
    }
    offending = {str(d) for c in report.offending for d in c.destinations}
    assert offending == {"10.255.255.53:53", "192.0.2.1:9", "20.42.73.25:443"}
    # Loopback (IPv4 and IPv6), the nscd socket and netlink are this machine.
    assert "[::1]:9999" in report.destinations and "127.0.0.1:9999" in report.destinations
    assert "unix:/var/run/nscd/socket" in report.destinations
    assert "mobile.events.data.microsoft.com A x2" in report.summary()


def test_port_53_is_a_lookup_even_on_loopback() -> None:
    assert leaves_this_machine(Destination("AF_INET", "127.0.0.53", 53), _own)
    assert leaves_this_machine(
        Destination("AF_UNIX", "/run/systemd/resolve/io.systemd.Resolve", None), _own
    )
    assert not leaves_this_machine(Destination("AF_INET6", "::1", 8430), _own)
    assert not leaves_this_machine(Destination("AF_INET", "192.168.1.23", 50000), _own)
