"""The model services: STT, the LLM client and server, TTS, and what they share with the pipeline
(the clause chunker, the voice-level gate, the telemetry switches).

Its first import switches every dependency's telemetry off, before onnxruntime loads. Nothing here
imports ``pipeline`` except its config types (``pipeline.config``).
"""

import services.telemetry  # noqa: F401 - first: sets ORT_DISABLE_TELEMETRY and the rest
