"""Redis RDB files: read the ones redis-server 6.2/7.0/7.2 writes, write ones 7.0 loads."""

from aspen.rdb.reader import RdbError, RdbParser, Record, read_rdb
from aspen.rdb.values import Unsupported
from aspen.rdb.writer import write_rdb, write_rdb_stream

__all__ = ["RdbError", "RdbParser", "Record", "Unsupported", "read_rdb", "write_rdb",
           "write_rdb_stream"]
