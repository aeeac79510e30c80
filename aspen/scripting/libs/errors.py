"""The error a library function raises: Lua sees the exception as the error object and the
bootstrap's error handler prefixes the script's position (as luaL_error does in Redis)."""

from __future__ import annotations


class LibError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lib_message = message.encode()
