"""The one peer-liveness rule, used for the host (PeerWatchdog) and for joined peers (Guest)."""

from __future__ import annotations

from pipeline.sessions.liveness import PeerLiveness


class _Connection:
    """pipecat's SmallWebRTCConnection as the rule reads it: pinged recently or not."""

    def __init__(self) -> None:
        self.pinging = False

    def is_connected(self) -> bool:
        return self.pinging


def _rule() -> PeerLiveness:
    return PeerLiveness(peer_timeout_secs=10, connect_timeout_secs=30, started=100.0)


def test_a_peer_that_never_shows_up_is_given_the_connect_timeout() -> None:
    rule, connection = _rule(), _Connection()
    assert rule.verdict(connection, 129.0) is None  # type: ignore[arg-type]
    assert rule.verdict(connection, 130.0) == "never connected in 30 s"  # type: ignore[arg-type]


def test_pings_or_audio_keep_a_peer_alive_and_silence_of_both_ends_it() -> None:
    rule, connection = _rule(), _Connection()
    connection.pinging = True
    assert rule.verdict(connection, 101.0) is None  # type: ignore[arg-type]
    connection.pinging = False
    rule.heard(105.0)  # audio, with the data channel quiet
    assert rule.verdict(connection, 114.0) is None  # type: ignore[arg-type]
    assert rule.verdict(connection, 115.0) == "no ping and no audio for 10 s"  # type: ignore[arg-type]
    rule.heard(103.0)  # a late report of older audio does not move it back
    assert rule.verdict(connection, 115.0) is not None  # type: ignore[arg-type]
