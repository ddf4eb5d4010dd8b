"""Peers and their sessions: who gets a pipeline and when it ends (manager), the people who joined
a session besides its host (party), and the end of a peer that vanished (liveness)."""
