"""Local address discovery from `ip -j addr` output (no packets, no resolver)."""

from __future__ import annotations

import ipaddress
import json

from pipeline.server.lan_addresses import LocalNames, is_lan_address, parse_ip_json, url_host

IP_JSON = json.loads(
    """[
  {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1"},
                                 {"family": "inet6", "local": "::1"}]},
  {"ifname": "wlan0", "addr_info": [{"family": "inet", "local": "192.168.1.23"},
                                    {"family": "inet6", "local": "fd00::23"},
                                    {"family": "inet6", "local": "fe80::1%wlan0"}]},
  {"ifname": "odd", "addr_info": [{"local": 5}, "x", {"local": "not-an-ip"}]},
  "garbage"
]"""
)


def test_parse_ip_json_skips_what_it_cannot_read() -> None:
    found = list(parse_ip_json(IP_JSON))
    assert [str(a) for a in found] == ["127.0.0.1", "::1", "192.168.1.23", "fd00::23", "fe80::1"]
    assert list(parse_ip_json({"not": "a list"})) == []


def test_lan_addresses_exclude_loopback_and_link_local() -> None:
    kept = [str(a) for a in parse_ip_json(IP_JSON) if is_lan_address(a)]
    assert kept == ["192.168.1.23", "fd00::23"]
    assert not is_lan_address(ipaddress.ip_address("169.254.3.4"))


def test_certificate_addresses_put_the_lan_first_and_always_include_loopback() -> None:
    names = LocalNames("box", (ipaddress.ip_address("192.168.1.23"),))
    assert [str(a) for a in names.ip_addresses] == ["192.168.1.23", "127.0.0.1", "::1"]


def test_url_host_brackets_ipv6() -> None:
    assert url_host(ipaddress.ip_address("fd00::1")) == "[fd00::1]"
    assert url_host("192.168.1.2") == "192.168.1.2"
