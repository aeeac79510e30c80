"""RESP2/RESP3: a sans-I/O codec and the client-facing trio server."""
