"""The local CA and the server certificate: contents, permissions, idempotence, renewal."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from pipeline.server.certs import (
    RENEW_BEFORE,
    SERVER_VALIDITY,
    default_state_dir,
    ensure_certificates,
    load_certificate,
    san_of,
    server_ssl_context,
    spki_sha256_base64,
)
from pipeline.server.lan_addresses import LocalNames

NAMES = LocalNames(
    hostname="kitchen-box.home.arpa",
    lan_addresses=(ipaddress.ip_address("192.168.1.23"), ipaddress.ip_address("fd00::23")),
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_server_certificate_names_every_address_and_name(tmp_path: Path) -> None:
    report = ensure_certificates(tmp_path, NAMES)
    cert = load_certificate(report.paths.server_cert)
    dns_names, addresses = san_of(cert)
    assert dns_names == {"localhost", "kitchen-box", "kitchen-box.local"}
    assert addresses == {
        ipaddress.ip_address("192.168.1.23"),
        ipaddress.ip_address("fd00::23"),
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    assert report.ca_created and report.server_issued

    ca = load_certificate(report.paths.ca_cert)
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    # Apple's limit for TLS server certificates, user-trusted CAs included, is 825 days.
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime <= dt.timedelta(days=398)
    ca_lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert ca_lifetime >= dt.timedelta(days=3000)
    # The chain file ends with the CA, so clients that lack it can still build the path.
    chain = x509.load_pem_x509_certificates(report.paths.server_cert.read_bytes())
    assert [c.subject for c in chain] == [cert.subject, ca.subject]


def test_private_keys_are_owner_only(tmp_path: Path) -> None:
    report = ensure_certificates(tmp_path / "state", NAMES)
    assert _mode(report.paths.ca_key) == 0o600
    assert _mode(report.paths.server_key) == 0o600
    assert _mode(report.paths.directory) == 0o700
    assert _mode(report.paths.ca_cert) == 0o644
    assert b"PRIVATE KEY" not in report.paths.ca_cert.read_bytes()
    assert b"PRIVATE KEY" not in report.paths.server_cert.read_bytes()


def test_a_loose_ca_key_is_tightened_on_reuse(tmp_path: Path) -> None:
    report = ensure_certificates(tmp_path, NAMES)
    report.paths.ca_key.chmod(0o644)
    ensure_certificates(tmp_path, NAMES)
    assert _mode(report.paths.ca_key) == 0o600


def test_second_run_changes_nothing(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path, NAMES)
    ca_bytes = first.paths.ca_cert.read_bytes()
    server_bytes = first.paths.server_cert.read_bytes()
    second = ensure_certificates(tmp_path, NAMES)
    assert not second.ca_created and not second.server_issued
    assert second.reason == "up to date"
    assert first.paths.ca_cert.read_bytes() == ca_bytes
    assert first.paths.server_cert.read_bytes() == server_bytes


def test_new_address_reissues_the_server_certificate_with_the_same_ca(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path, NAMES)
    ca_bytes = first.paths.ca_cert.read_bytes()
    moved = LocalNames(hostname=NAMES.hostname, lan_addresses=(ipaddress.ip_address("10.0.0.7"),))
    second = ensure_certificates(tmp_path, moved)
    assert not second.ca_created and second.server_issued
    assert second.reason == "this machine's names or addresses changed"
    assert first.paths.ca_cert.read_bytes() == ca_bytes  # the phones keep trusting it
    _, addresses = san_of(load_certificate(second.paths.server_cert))
    assert ipaddress.ip_address("10.0.0.7") in addresses
    assert ipaddress.ip_address("192.168.1.23") not in addresses


def test_server_certificate_is_renewed_near_expiry(tmp_path: Path) -> None:
    issued_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    ensure_certificates(tmp_path, NAMES, now=issued_at)
    still_fine = issued_at + SERVER_VALIDITY - RENEW_BEFORE - dt.timedelta(days=1)
    assert not ensure_certificates(tmp_path, NAMES, now=still_fine).server_issued
    near_expiry = issued_at + SERVER_VALIDITY - dt.timedelta(days=5)
    renewed = ensure_certificates(tmp_path, NAMES, now=near_expiry)
    assert renewed.server_issued and not renewed.ca_created
    assert renewed.reason == "the server certificate expires soon"


def test_a_server_certificate_from_another_ca_is_replaced(tmp_path: Path) -> None:
    ours = ensure_certificates(tmp_path / "ours", NAMES)
    theirs = ensure_certificates(tmp_path / "theirs", NAMES)
    ours.paths.server_cert.write_bytes(theirs.paths.server_cert.read_bytes())
    ours.paths.server_key.write_bytes(theirs.paths.server_key.read_bytes())
    again = ensure_certificates(tmp_path / "ours", NAMES)
    assert again.server_issued
    assert again.reason == "the server certificate was signed by another CA"
    load_certificate(again.paths.server_cert).verify_directly_issued_by(
        load_certificate(ours.paths.ca_cert)
    )


def test_a_corrupt_server_key_is_replaced(tmp_path: Path) -> None:
    report = ensure_certificates(tmp_path, NAMES)
    report.paths.server_key.write_text("garbage")
    assert ensure_certificates(tmp_path, NAMES).server_issued


def test_keys_are_p256(tmp_path: Path) -> None:
    report = ensure_certificates(tmp_path, NAMES)
    key = load_certificate(report.paths.server_cert).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def test_spki_pin_is_base64_sha256(tmp_path: Path) -> None:
    report = ensure_certificates(tmp_path, NAMES)
    pin = spki_sha256_base64(load_certificate(report.paths.server_cert))
    assert len(pin) == 44 and pin.endswith("=")


def test_server_tls_context_refuses_below_tls_1_2(tmp_path: Path) -> None:
    report = ensure_certificates(tmp_path, NAMES)
    context = server_ssl_context(report.paths.server_cert, report.paths.server_key)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_state_dir_comes_from_the_environment(tmp_path: Path) -> None:
    assert default_state_dir({"JETVOICE_STATE_DIR": str(tmp_path)}) == tmp_path
    assert default_state_dir({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "jetvoice"
    assert default_state_dir({}).parts[-3:] == (".local", "share", "jetvoice")


@pytest.mark.parametrize("hostname", ["localhost", "LAPTOP.example.org"])
def test_dns_names_from_the_hostname(hostname: str) -> None:
    names = LocalNames(hostname=hostname, lan_addresses=()).dns_names
    assert names[0] == "localhost"
    if hostname != "localhost":
        assert names == ("localhost", "laptop", "laptop.local")
