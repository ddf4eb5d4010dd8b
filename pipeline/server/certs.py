"""A small local certificate authority and the server certificate it signs, for HTTPS on the LAN.

Phones give a page the microphone only in a secure context, so the agent serves HTTPS with a
certificate the phone trusts: each device trusts the local CA once, and the server certificate
(which names this machine's LAN addresses, ``<hostname>.local`` and ``localhost``) can then be
reissued freely, e.g. when DHCP hands out a new address, without touching the phones again.

Idempotent: the CA is reused while it is valid; the server certificate is reissued only when the
names it must cover changed, it was not signed by the current CA, or it expires within
:data:`RENEW_BEFORE`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import os
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipeline.server.lan_addresses import IPAddress, LocalNames

# Ten years: trusting a CA on every phone in the house is a chore worth doing once.
CA_VALIDITY = dt.timedelta(days=3650)
# Apple refuses TLS server certificates valid for more than 825 days, even under a user-trusted
# CA; 397 days also satisfies the stricter public-CA rule, should that ever extend.
SERVER_VALIDITY = dt.timedelta(days=397)
RENEW_BEFORE = dt.timedelta(days=30)
# Certificates are backdated a little so a phone whose clock runs slow still accepts them.
CLOCK_SKEW = dt.timedelta(hours=1)

CA_CERT_NAME = "ca.crt"
CA_KEY_NAME = "ca.key"
SERVER_CERT_NAME = "server.crt"
SERVER_KEY_NAME = "server.key"


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$JETVOICE_STATE_DIR``, else ``$XDG_DATA_HOME/jetvoice``, else ~/.local/share/jetvoice."""
    env = os.environ if environ is None else environ
    if env.get("JETVOICE_STATE_DIR"):
        return Path(env["JETVOICE_STATE_DIR"]).expanduser()
    data_home = env.get("XDG_DATA_HOME")
    base = Path(data_home).expanduser() if data_home else Path.home() / ".local" / "share"
    return base / "jetvoice"


@dataclass(frozen=True)
class CertPaths:
    """Where the CA and the server certificate live inside a certificate directory."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        """The CA certificate (public): what phones install and trust."""
        return self.directory / CA_CERT_NAME

    @property
    def ca_key(self) -> Path:
        """The CA's private key, mode 0600; it never leaves this machine."""
        return self.directory / CA_KEY_NAME

    @property
    def server_cert(self) -> Path:
        """The server certificate followed by the CA certificate (the chain uvicorn serves)."""
        return self.directory / SERVER_CERT_NAME

    @property
    def server_key(self) -> Path:
        """The server's private key, mode 0600."""
        return self.directory / SERVER_KEY_NAME


def cert_paths(state_dir: Path) -> CertPaths:
    """The certificate files under a jetvoice state directory."""
    return CertPaths(state_dir / "certs")


@dataclass(frozen=True)
class CertReport:
    """What :func:`ensure_certificates` did."""

    paths: CertPaths
    ca_created: bool
    server_issued: bool
    reason: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[IPAddress, ...]
    server_not_after: dt.datetime
    ca_fingerprint_sha256: str


def ensure_certificates(
    state_dir: Path, names: LocalNames, *, now: dt.datetime | None = None
) -> CertReport:
    """Create the CA if needed, and (re)issue the server certificate when it must change."""
    moment = now or dt.datetime.now(dt.UTC)
    paths = cert_paths(state_dir)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _private_dir(paths.directory)
    ca_created = False
    loaded = _load_ca(paths, moment)
    if loaded is None:
        loaded = _create_ca(paths, names.hostname, moment)
        ca_created = True
    ca_cert, ca_key = loaded
    dns_names = names.dns_names
    ip_addresses = names.ip_addresses
    reason = _reissue_reason(paths, ca_cert, dns_names, ip_addresses, moment)
    if ca_created:
        reason = "a new CA was created"
    if reason:
        server_cert = _issue_server(
            paths, ca_cert, ca_key, dns_names=dns_names, ip_addresses=ip_addresses, moment=moment
        )
    else:
        server_cert = x509.load_pem_x509_certificates(paths.server_cert.read_bytes())[0]
    return CertReport(
        paths=paths,
        ca_created=ca_created,
        server_issued=bool(reason),
        reason=reason or "up to date",
        dns_names=dns_names,
        ip_addresses=ip_addresses,
        server_not_after=server_cert.not_valid_after_utc,
        ca_fingerprint_sha256=fingerprint_sha256(ca_cert),
    )


def server_ssl_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """The server's TLS settings: TLS 1.2 at least, whatever the system OpenSSL allows."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION
    context.load_cert_chain(certfile, keyfile)
    return context


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """The colon-separated SHA-256 fingerprint phones show in their certificate details."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def spki_sha256_base64(cert: x509.Certificate) -> str:
    """Base64 SHA-256 of the certificate's public key (Chromium's SPKI pin format)."""
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate of a PEM file."""
    return x509.load_pem_x509_certificates(path.read_bytes())[0]


def public_ca_pem(path: Path) -> bytes:
    """The CA certificate re-encoded from its parsed form: never anything else in that file."""
    return load_certificate(path).public_bytes(serialization.Encoding.PEM)


def san_of(cert: x509.Certificate) -> tuple[set[str], set[IPAddress]]:
    """The DNS names and IP addresses of a certificate's subjectAltName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    addresses = {
        a
        for a in san.get_values_for_type(x509.IPAddress)
        if isinstance(a, ipaddress.IPv4Address | ipaddress.IPv6Address)
    }
    return set(san.get_values_for_type(x509.DNSName)), addresses


# --- internals --------------------------------------------------------------------------------


def _private_dir(path: Path) -> None:
    """Create a directory only this user can enter (it holds private keys)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _write_private(path: Path, data: bytes) -> None:
    """Write a key file that is 0600 from its first byte (no window with default permissions)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_ca(
    paths: CertPaths, moment: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The existing CA, or None when it is missing, unreadable, mismatched or expiring."""
    if not (paths.ca_cert.exists() and paths.ca_key.exists()):
        return None
    try:
        cert = load_certificate(paths.ca_cert)
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except (ValueError, TypeError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.public_key() != key.public_key():
        return None
    # A CA about to expire is replaced (the phones must trust the new one).
    if cert.not_valid_after_utc - moment < SERVER_VALIDITY:
        return None
    paths.ca_key.chmod(0o600)
    return cert, key


def _create_ca(
    paths: CertPaths, hostname: str, moment: dt.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    # A random serial in the name too: two households' CAs never look alike in a trust list.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "jetvoice"),
            x509.NameAttribute(
                NameOID.COMMON_NAME,
                f"jetvoice local CA ({hostname.split('.', maxsplit=1)[0]}, {os.urandom(3).hex()})",
            ),
        ]
    )
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - CLOCK_SKEW)
        .not_valid_after(moment + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    # Key first: a CA certificate without its key on disk would be useless.
    _write_private(paths.ca_key, _key_pem(key))
    _write_public(paths.ca_cert, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _reissue_reason(
    paths: CertPaths,
    ca_cert: x509.Certificate,
    dns_names: Iterable[str],
    ip_addresses: Iterable[IPAddress],
    moment: dt.datetime,
) -> str:
    """Why the server certificate must be (re)issued; empty when it is fine as it is."""
    if not (paths.server_cert.exists() and paths.server_key.exists()):
        return "no server certificate yet"
    try:
        cert = load_certificate(paths.server_cert)
        key = serialization.load_pem_private_key(paths.server_key.read_bytes(), password=None)
    except (ValueError, TypeError, IndexError):
        return "the server certificate or key is unreadable"
    names, addresses = san_of(cert)
    checks = (
        (cert.public_key() != key.public_key(), "the server key does not match its certificate"),
        (not _issued_by(cert, ca_cert), "the server certificate was signed by another CA"),
        (cert.not_valid_after_utc - moment < RENEW_BEFORE, "the server certificate expires soon"),
        (
            names != {n.lower() for n in dns_names} or addresses != set(ip_addresses),
            "this machine's names or addresses changed",
        ),
    )
    return next((reason for failed, reason in checks if failed), "")


def _issued_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    if cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _issue_server(
    paths: CertPaths,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    dns_names: Iterable[str],
    ip_addresses: Iterable[IPAddress],
    moment: dt.datetime,
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    names = list(dns_names)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names += [x509.IPAddress(a) for a in ip_addresses]
    public = key.public_key()
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "jetvoice"),
                    x509.NameAttribute(NameOID.COMMON_NAME, names[-1] if names else "localhost"),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - CLOCK_SKEW)
        .not_valid_after(moment + SERVER_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        # Apple requires the serverAuth purpose on every TLS server certificate.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(paths.server_key, _key_pem(key))
    chain = cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(
        serialization.Encoding.PEM
    )
    _write_public(paths.server_cert, chain)
    return cert
