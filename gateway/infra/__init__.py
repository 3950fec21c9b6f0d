"""Implementations of the ports in ``gateway.ports`` (SQLite store, files, outbound clients)."""
