"""``jetvoice bench``: the latency benchmark over the real voice loop.

``corpus`` (what is said), ``driver`` (a real WebRTC caller against a real server),
``measurement`` (one turn's figures), ``stats`` and ``wer`` (summaries), ``report`` and ``plot``
(table, JSON, PNG), ``environment`` (device, models, versions) and ``cli`` (the flags).
``client/`` is the WebRTC caller the driver and the loopback tests use.
"""
