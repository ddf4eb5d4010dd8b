"""The LAN server: the FastAPI app (app.py) and its web page (web/), who may use it (access, rate
limit, pairing token), HTTPS certificates, the machine's LAN addresses and the start-up banner."""
