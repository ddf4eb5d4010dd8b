"""A WebRTC client that calls the agent as the browser page does: the loopback caller, its fake
microphone, the recorder of what it hears and the audio clips it speaks. Used by the benchmark and
the tests."""
