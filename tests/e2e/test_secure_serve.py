"""The real agent over HTTPS with a required pairing token, called by a real WebRTC peer.

What a second device on the LAN gets, on loopback: the certificate verifies against the local
CA for 127.0.0.1, the call works with the token and is refused without it, TLS below 1.2 is
refused, and the CA download is the CA's certificate.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time

import httpx
import pytest
from cryptography import x509

from pipeline.bench.client.loopback_caller import CallerConfig, LoopbackCaller
from pipeline.ops.agent_process import AgentProcess
from pipeline.server.certs import load_certificate, san_of
from pipeline.webrtc.ice_policy import loopback_only_ice

GREETING_BOUND_S = 30.0


def _caller(agent: AgentProcess, headers: dict[str, str] | None = None) -> LoopbackCaller:
    return LoopbackCaller(
        agent.base_url, headers=headers, config=CallerConfig(ca_file=str(agent.ca_file))
    )


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_paired_caller_over_https_hears_the_bot(secure_agent: AgentProcess) -> None:
    headers = {"Authorization": f"Bearer {secure_agent.token}"}
    with loopback_only_ice():
        async with _caller(secure_agent, headers) as caller:
            connected = time.monotonic()
            greeting = await caller.wait_for_voice(connected, timeout=GREETING_BOUND_S)
    assert greeting >= connected


@pytest.mark.asyncio
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("headers", "status"),
    [(None, 401), ({"Authorization": "Bearer not-the-token"}, 403)],
    ids=["no-token", "wrong-token"],
)
async def test_unpaired_caller_is_refused(
    secure_agent: AgentProcess, headers: dict[str, str] | None, status: int
) -> None:
    with loopback_only_ice():
        caller = _caller(secure_agent, headers)
        with pytest.raises(ConnectionError, match=f"HTTP {status}"):
            await asyncio.wait_for(caller.connect(), 30)


def test_certificate_verifies_for_loopback_names(secure_agent: AgentProcess) -> None:
    context = ssl.create_default_context(cafile=str(secure_agent.ca_file))
    served: list[bytes] = []
    for name in ("127.0.0.1", "localhost"):
        with (
            socket.create_connection(("127.0.0.1", secure_agent.port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            served.append(der)
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    names, addresses = san_of(x509.load_der_x509_certificate(served[0]))
    assert "localhost" in names and any(a.is_loopback for a in addresses)


def test_tls_below_1_2_is_refused(secure_agent: AgentProcess) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError) as error:
        pytest.skip(f"this OpenSSL cannot even offer TLS 1.1: {error}")
    with (
        socket.create_connection(("127.0.0.1", secure_agent.port), timeout=10) as raw,
        pytest.raises(ssl.SSLError) as refused,
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.1")
    if refused.value.reason == "NO_PROTOCOLS_AVAILABLE":
        pytest.skip("this OpenSSL cannot offer TLS 1.1 (the minimum is asserted in test_certs)")
    # asyncio's TLS server drops the handshake without an alert; an alert would do as well.
    assert refused.value.reason in (
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "UNSUPPORTED_PROTOCOL",
        "UNEXPECTED_EOF_WHILE_READING",
    ), refused.value
    # The same port and client settings, at TLS 1.2: the refusal was about the version.
    context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", secure_agent.port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.2"


def test_ca_download_is_the_ca_certificate(secure_agent: AgentProcess) -> None:
    with httpx.Client(verify=secure_agent.verify(), trust_env=False, timeout=10) as client:
        response = client.get(f"{secure_agent.base_url}/ca.crt")
        unauthenticated_offer = client.post(
            f"{secure_agent.base_url}/api/offer", json={"sdp": "v=0", "type": "offer"}
        )
    assert response.status_code == 200
    assert x509.load_pem_x509_certificate(response.content) == load_certificate(
        secure_agent.ca_file
    )
    assert b"PRIVATE KEY" not in response.content
    assert unauthenticated_offer.status_code == 401
