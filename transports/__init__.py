"""Peer transports behind one interface: zmq (default), memory (tests), websocket."""
