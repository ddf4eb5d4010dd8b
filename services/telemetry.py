"""Every dependency's switch for calling home, forced off before any dependency loads.

onnxruntime (Kokoro, Silero VAD, Smart Turn; onnxruntime-gpu on a Jetson too) carries Microsoft's
1DS telemetry client: unless ``ORT_DISABLE_TELEMETRY=1`` is in the environment when its native
library initialises, it looks up ``mobile.events.data.microsoft.com`` (a DNS query to the system
resolver, from native code that Python's audit hooks never see) and would send events once the
name resolves. ``onnxruntime.disable_telemetry_events()`` does not stop the lookup; the variable
does. The other switches are the equivalents of the rest of the stack: Hugging Face (hub
look-ups and usage pings), vLLM's usage stats, OpenTelemetry exporters (fastapi can add one from
``OTEL_*`` variables). pipecat 1.14 and llama-cpp-python send nothing by themselves (their
tracing and Sentry hooks are opt-in in code) and read no such variable.

This module is the first import of the ``pipeline``, ``services`` and ``models`` packages, so
every entry point (the ``jetvoice`` console script, ``python -m`` modules, the LLM server child,
the benchmark, the tests) has the switches set before any library reads them, and every child
process inherits them through the environment.

Forced, not defaulted: privacy comes first, so a user's environment cannot turn one back on (a
shell profile's ``DO_NOT_TRACK=0``, a systemd drop-in's ``ORT_DISABLE_TELEMETRY=0``). What the
environment held is kept in :data:`INHERITED`, and ``jetvoice doctor`` reports a switch it tried
to turn on. ``tests/e2e/test_syscall_audit.py`` proves the result at the system-call level.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from types import MappingProxyType

# What huggingface_hub takes for true (its ``_is_true``).
_HF_TRUE = frozenset({"1", "on", "yes", "true"})


@dataclass(frozen=True)
class Switch:
    """One environment variable that keeps a dependency from calling home."""

    name: str
    value: str  # what this module sets
    library: str  # who reads it
    off_values: frozenset[str]  # every value (lower case) that library takes for "off"

    def is_off(self, value: str | None) -> bool:
        """Whether ``value`` (None: unset) keeps the library quiet."""
        return value is not None and value.strip().lower() in self.off_values


SWITCHES: tuple[Switch, ...] = (
    # Read by the native library when it initialises: only "1" was measured to stop it.
    Switch("ORT_DISABLE_TELEMETRY", "1", "onnxruntime (1DS telemetry)", frozenset({"1"})),
    Switch("HF_HUB_OFFLINE", "1", "huggingface_hub, faster-whisper (hub look-ups)", _HF_TRUE),
    Switch("TRANSFORMERS_OFFLINE", "1", "transformers (hub look-ups)", _HF_TRUE),
    Switch("HF_DATASETS_OFFLINE", "1", "datasets (hub look-ups)", _HF_TRUE),
    Switch("HF_HUB_DISABLE_TELEMETRY", "1", "huggingface_hub (usage pings)", _HF_TRUE),
    # The cross-tool convention; vLLM compares it with "1" exactly.
    Switch("DO_NOT_TRACK", "1", "huggingface_hub, vLLM and others", frozenset({"1"})),
    Switch("VLLM_NO_USAGE_STATS", "1", "vLLM (usage stats)", frozenset({"1"})),
    Switch("VLLM_DO_NOT_TRACK", "1", "vLLM (usage stats)", frozenset({"1"})),
    # No exporter even when OTEL_EXPORTER_OTLP_* points somewhere (fastapi's auto-configure).
    Switch(
        "OTEL_SDK_DISABLED", "true", "OpenTelemetry (fastapi, pipecat tracing)", frozenset({"true"})
    ),
)

SWITCH_NAMES: frozenset[str] = frozenset(s.name for s in SWITCHES)


def force_off(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Set every switch to its off value in ``environ`` (default: this process's environment,
    which children inherit); return the values it held before, for the switches that were set."""
    env = os.environ if environ is None else environ
    before = {s.name: env[s.name] for s in SWITCHES if s.name in env}
    env.update({s.name: s.value for s in SWITCHES})
    return before


def turned_on(environ: Mapping[str, str], *, unset_is_on: bool = False) -> list[tuple[Switch, str]]:
    """The switches ``environ`` leaves on, with the value found ("<unset>" when missing).

    Unset is off for an environment this code runs in (it forces them), and on for one it does
    not run in (``unset_is_on``: vLLM's container).
    """
    found = []
    for switch in SWITCHES:
        value = environ.get(switch.name)
        if value is None and not unset_is_on:
            continue
        if not switch.is_off(value):
            found.append((switch, "<unset>" if value is None else value))
    return found


# The switches' values in the environment this process was started with (set ones only).
INHERITED: Mapping[str, str] = MappingProxyType(force_off())
