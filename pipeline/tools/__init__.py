"""Local tools the LLM may call: clock, timers, calculator, unit conversion, Home Assistant.

Each concept has its own module with no pipecat in it; :mod:`pipeline.tools.registry` turns the
configured ones into pipecat function schemas and handlers for one session;
:mod:`pipeline.tools.cli` turns ``jetvoice serve``'s tool flags into a ``ToolsConfig``.
"""
