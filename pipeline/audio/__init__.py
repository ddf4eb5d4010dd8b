"""The microphone's audio path inside a session: repair and denoise, the end-of-speech VAD,
early Smart Turn, mixing joined peers, resampling, and where the input audio stops."""
