"""The model catalog and its provisioning.

Its first import switches every dependency's telemetry off, before any of them loads.
"""

import services.telemetry  # noqa: F401 - first: sets HF_HUB_OFFLINE, ORT_DISABLE_TELEMETRY...
