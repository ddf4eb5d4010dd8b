"""The loopback bind answers no other machine, even on the LAN address its WebRTC listens on.

To reach a browser on this machine, the agent bound to loopback gathers ICE on this machine's
own interface addresses too (pipeline/webrtc/ice_policy.py), so during a call a UDP socket of the
agent is open on the LAN address. A datagram from another machine must get no answer. The other
machine here is real as far as the kernel is concerned: a network namespace of the test's own,
joined to this one by a veth pair, with its own address. It sends a STUN binding request to the
agent's LAN candidate; the same request sent from this machine gets the agent's error response
(it carries no credentials), which proves the port is live and the request is one it answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from pipeline.bench.client.loopback_caller import LoopbackCaller
from pipeline.ops.agent_process import AgentProcess
from pipeline.webrtc.ice_policy import loopback_only_ice
from pipeline.webrtc.own_addresses import parse_ip
from tests.support.conversation import wait_out_greeting

# RFC 5737 documentation ranges: nobody's real network.
HOST_SIDE = "198.51.100.1"
STRANGER = "198.51.100.2"
REPLY_WAIT_S = 3.0  # the same request from this machine is answered in milliseconds

# One STUN binding request without credentials, and a wait for any reply: printed as "reply" or
# "none". Plain sockets, so it runs in the namespace with nothing else loaded.
PROBE = """
import os, socket, sys
host, port, source, wait = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
request = bytes.fromhex("0001 0000 2112a442".replace(" ", "")) + os.urandom(12)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((source, 0))
s.settimeout(wait)
s.sendto(request, (host, port))
try:
    data, peer = s.recvfrom(2048)
    print("reply", data[:2].hex(), peer[0])
except TimeoutError:
    print("none")
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


@pytest.fixture
def stranger() -> Iterator[str]:
    """A network namespace standing for another machine on the LAN; yields its name."""
    if shutil.which("ip") is None or os.geteuid() != 0:
        pytest.skip("needs root and iproute2's `ip` to make a namespace standing for a stranger")
    suffix = str(os.getpid() % 100000)
    name, host_link, ns_link = f"jv-stranger-{suffix}", f"jvh{suffix}", f"jvn{suffix}"
    made = _ip("netns", "add", name, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    try:
        _ip("link", "add", host_link, "type", "veth", "peer", "name", ns_link)
        _ip("link", "set", ns_link, "netns", name)
        _ip("addr", "add", f"{HOST_SIDE}/24", "dev", host_link)
        _ip("link", "set", host_link, "up")
        for command in (
            ("addr", "add", f"{STRANGER}/24", "dev", ns_link),
            ("link", "set", ns_link, "up"),
            ("link", "set", "lo", "up"),
            ("route", "add", "default", "via", HOST_SIDE),
        ):
            _ip("netns", "exec", name, "ip", *command)
        yield name
    finally:
        _ip("link", "del", host_link, check=False)
        _ip("netns", "del", name, check=False)


def _probe(target: tuple[str, int], source: str, namespace: str | None) -> str:
    command = [sys.executable, "-c", PROBE, target[0], str(target[1]), source, str(REPLY_WAIT_S)]
    if namespace is not None:
        command = ["ip", "netns", "exec", namespace, *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    return done.stdout.strip()


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_a_datagram_from_another_machine_gets_no_answer(
    agent: AgentProcess, stranger: str
) -> None:
    with loopback_only_ice():
        async with LoopbackCaller(agent.base_url) as caller:
            await wait_out_greeting(caller, time.monotonic())
            assert caller.answer_sdp is not None
            lan_candidates = []
            for line in caller.answer_sdp.splitlines():
                if line.startswith("a=candidate:"):
                    fields = line.split()
                    address = parse_ip(fields[4])
                    if address is not None and address.version == 4 and not address.is_loopback:
                        lan_candidates.append((fields[4], int(fields[5])))
            if not lan_candidates:
                pytest.skip("this machine has no IPv4 address but loopback: nothing to reach")
            target = lan_candidates[0]

            from_here = _probe(target, target[0], None)
            from_stranger = _probe(target, STRANGER, stranger)
            from_here_again = _probe(target, target[0], None)

    # 0111 is a STUN binding error response: the agent answers this machine's bad request.
    assert from_here.startswith("reply 0111"), from_here
    assert from_here_again.startswith("reply 0111"), from_here_again
    assert from_stranger == "none", f"the agent answered another machine: {from_stranger}"
