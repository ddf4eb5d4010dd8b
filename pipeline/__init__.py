"""The voice loop, its server and web page.

At the top, the pipeline itself: ``cli`` (the ``jetvoice`` command), ``config`` and ``profiles``
(typed configuration), ``runtime`` (what all sessions share) and ``session`` (one session's
processor list). By concern: ``audio/`` (the microphone's path), ``webrtc/`` (aiortc, aioice and
the SmallWebRTC transport as adjusted here), ``server/`` (the LAN app, its security, web page),
``sessions/`` (who gets a session and how it ends), ``conversation/`` (history, context, the
LLM's text), ``ops/`` (metrics, doctor, audit, child processes), ``tools/`` and ``bench/``.

Its first import switches every dependency's telemetry off, before any of them loads.
"""

import services.telemetry  # noqa: F401 - first: sets ORT_DISABLE_TELEMETRY and the rest
