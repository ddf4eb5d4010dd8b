"""Local address discovery from the interface table (no packets, no process, no resolver)."""

from __future__ import annotations

import ipaddress

import ifaddr
import pytest

from pipeline.server.lan_addresses import LocalNames, is_lan_address, local_names, url_host

ADAPTERS = [
    ifaddr.Adapter(
        "lo", "lo", [ifaddr.IP("127.0.0.1", 8, "lo"), ifaddr.IP(("::1", 0, 0), 128, "lo")]
    ),
    ifaddr.Adapter(
        "wlan0",
        "wlan0",
        [
            ifaddr.IP("192.168.1.23", 24, "wlan0"),
            ifaddr.IP(("fd00::23", 0, 0), 64, "wlan0"),
            ifaddr.IP(("fe80::1", 0, 3), 64, "wlan0"),
            ifaddr.IP("169.254.3.4", 16, "wlan0"),
        ],
    ),
    ifaddr.Adapter("eth0", "eth0", [ifaddr.IP("10.0.0.5", 8, "eth0")]),
]


def test_lan_addresses_come_from_the_interface_table_private_ipv4_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ifaddr, "get_adapters", lambda: ADAPTERS)
    names = local_names("box")
    assert [str(a) for a in names.lan_addresses] == ["10.0.0.5", "192.168.1.23", "fd00::23"]


def test_an_empty_interface_table_falls_back_to_the_resolver(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ifaddr, "get_adapters", lambda: [])
    assert [str(a) for a in local_names("localhost").lan_addresses] == []


def test_lan_addresses_exclude_loopback_and_link_local() -> None:
    assert not is_lan_address(ipaddress.ip_address("169.254.3.4"))
    assert not is_lan_address(ipaddress.ip_address("fe80::1"))
    assert not is_lan_address(ipaddress.ip_address("::1"))
    assert is_lan_address(ipaddress.ip_address("192.168.1.23"))


def test_certificate_addresses_put_the_lan_first_and_always_include_loopback() -> None:
    names = LocalNames("box", (ipaddress.ip_address("192.168.1.23"),))
    assert [str(a) for a in names.ip_addresses] == ["192.168.1.23", "127.0.0.1", "::1"]


def test_url_host_brackets_ipv6() -> None:
    assert url_host(ipaddress.ip_address("fd00::1")) == "[fd00::1]"
    assert url_host("192.168.1.2") == "192.168.1.2"
