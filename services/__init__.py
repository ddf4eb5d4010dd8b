"""The model services: STT, the LLM client and server, TTS.

Its first import switches every dependency's telemetry off, before onnxruntime loads.
"""

import pipeline.telemetry  # noqa: F401 - first: sets ORT_DISABLE_TELEMETRY and the rest
