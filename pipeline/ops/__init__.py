"""Running and watching the agent: metrics and per-turn latency, what the user hears when a model
fails (fallback), memory and CPU priority, ``jetvoice doctor``, the network audit, and the child
process runners (audited_run, agent_process)."""
