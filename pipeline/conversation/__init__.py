"""What is said: the history (store), one session's memory and LLM context (keeper, context window),
``jetvoice history`` (history_cli), and the processors on the LLM's text between LLM and TTS (think
filter, empty answer, device requests)."""
