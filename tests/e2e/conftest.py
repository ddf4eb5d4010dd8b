"""The e2e layer's fixtures (``agent``, ``cpu_models``) live in tests/conftest.py: the browser
tests call the same loopback agent, so its models load once per run."""
