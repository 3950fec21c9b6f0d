"""REST adapter (aiohttp)."""
