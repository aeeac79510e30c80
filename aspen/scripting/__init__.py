"""Lua scripting (EVAL, EVALSHA, SCRIPT) and functions (FUNCTION, FCALL), Redis 7.0 style."""
