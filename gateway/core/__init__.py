"""The pure core: no I/O, no asyncio, no clock, no environment, no logging (enforced by import-linter)."""
