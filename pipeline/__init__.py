"""The voice loop, its server and web page.

Its first import switches every dependency's telemetry off, before any of them loads.
"""

import services.telemetry  # noqa: F401 - first: sets ORT_DISABLE_TELEMETRY and the rest
