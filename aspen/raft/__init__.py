"""Sans-I/O Raft core: no trio, no sockets, no clock, no global randomness."""
