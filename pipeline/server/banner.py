"""What ``jetvoice serve`` and ``jetvoice certs`` print: the addresses, the pairing link, the CA.

The pairing link carries the token, so it (and its QR code) is printed only to a terminal: when
the output goes to a file or a service journal, the banner says where to find it instead.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pipeline.config import ServerConfig
from pipeline.server.access import is_loopback_host
from pipeline.server.certs import CertReport
from pipeline.server.pairing import pairing_url, qr_terminal, token_path


def certs_summary(report: CertReport) -> str:
    """What ``ensure_certificates`` did, the names covered and the next steps."""
    paths = report.paths
    lines = []
    if report.ca_created:
        lines.append(f"jetvoice: created a local certificate authority in {paths.directory}")
    lines.append(
        f"jetvoice: server certificate {'issued' if report.server_issued else 'kept'} "
        f"({report.reason}), valid until {report.server_not_after:%Y-%m-%d}"
    )
    lines.append("  names:     " + ", ".join(report.dns_names))
    lines.append("  addresses: " + ", ".join(str(a) for a in report.ip_addresses))
    lines.append(f"  CA:        {paths.ca_cert} (key {paths.ca_key}, mode 0600)")
    lines.append(f"  CA SHA-256 fingerprint: {report.ca_fingerprint_sha256}")
    if report.ca_created:
        lines.append(
            "  Each phone or computer trusts this CA once: start `jetvoice serve --tls`, open "
            "https://<address>:<port>/ca.crt on the device and follow the README "
            "(Trust the certificate)."
        )
    return "\n".join(lines)


def serve_banner(server: ServerConfig, *, state_dir: Path, show_token: bool) -> str:
    """The start-up banner: URLs to open, the CA download, the pairing link and QR code."""
    urls = server.public_urls or (f"{server.scheme}://{server.host}:{server.port}/",)
    on_loopback = is_loopback_host(server.host)
    where = (
        "in a browser on this machine" if on_loopback else "on a phone or computer on this network"
    )
    lines = ["", f"jetvoice is ready. Open {where}:"]
    lines += [f"  {url}" for url in urls]
    if on_loopback:
        lines.append(
            "Other devices cannot reach a loopback bind: for a phone, start it with "
            "--host 0.0.0.0 --tls (README: Talk to it from a phone)."
        )
    if server.tls_ca_certfile is not None:
        lines.append(
            f"First time on a device: install and trust {urls[0].rstrip('/')}/ca.crt "
            "(README: Trust the certificate)."
        )
    if server.pairing_token is None:
        return "\n".join(lines)
    local_page = _local_pair_page(server)
    if not server.require_token:
        lines.append(
            "Bound to loopback: the pairing token is optional here (--require-token makes it "
            "mandatory)."
        )
        return "\n".join(lines)
    if show_token:
        link = pairing_url(urls[0], server.pairing_token)
        lines += [
            "Pair a device (the link contains the token: share it only with your own devices):",
            f"  {link}",
            qr_terminal(link),
        ]
    else:
        where = f"open {local_page} on this machine, or read" if local_page else "read"
        lines.append(
            "The pairing link is not printed because this output is not a terminal (it would "
            f"end up in a log): {where} {token_path(state_dir)}."
        )
    if local_page:
        lines.append(f"Pairing page on this machine: {local_page}")
    return "\n".join(lines)


def _local_pair_page(server: ServerConfig) -> str | None:
    """/pair answers loopback clients only, so it needs a server listening on loopback."""
    try:
        bound = ipaddress.ip_address(server.host.strip("[]"))
    except ValueError:
        bound = None
    if server.host != "localhost" and not (bound and (bound.is_loopback or bound.is_unspecified)):
        return None
    ipv6_loopback = bound is not None and bound.version == 6 and bound.is_loopback
    host = "[::1]" if ipv6_loopback else "127.0.0.1"
    return f"{server.scheme}://{host}:{server.port}/pair"
