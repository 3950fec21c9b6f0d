"""Seaport release sync: release / hold / inspect / do-not-load decisions streamed to ports."""
