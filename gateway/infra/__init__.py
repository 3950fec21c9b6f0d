"""Implementations of the interfaces in ``gateway.interfaces`` (SQLite store, files, outbound clients)."""
