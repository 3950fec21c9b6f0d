"""Counting the rejections of unauthenticated callers, so a flood costs bounded ledger space.

A caller the gateway could not authenticate is not accountable: one ledger leaf per refused request would let
anyone grow the ledger without bound. Their rejections are counted here instead and leave as ONE
``rejected_summary`` leaf per interval (``gateway/exchange/rejections.py`` decides which rejection goes where and when).

Rule 1: a count is kept per (code, adapter, peer network): the peer's /24 for IPv4 and /64 for IPv6 (an
        IPv4-mapped IPv6 address counts as its IPv4 address); a peer that is not an IP address is ``unknown``.
Rule 2: at most ``max_keys`` (code, adapter, network) keys per interval; a new network beyond that is counted
        under (code, adapter, ``*``), so the keys are bounded by ``max_keys`` + codes x adapters (both fixed
        sets defined by the code), and no rejection goes uncounted.
Rule 3: ``drain`` returns the summary's fields (the interval, the total and every count, sorted) and starts a new
        interval; an interval without rejections has no summary.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any, Final

from gateway.core.audit import rfc3339

# A summary leaf holds ~95 bytes per key: 256 keys plus every overflow key (each code x each adapter) stay well
# below the 64 KiB an offline audit accepts for one entry (ledgercheck.MAX_ENTRY_BYTES).
MAX_SUMMARY_KEYS: Final = 256
OVERFLOW_NETWORK: Final = "*"
UNKNOWN_NETWORK: Final = "unknown"

Key = tuple[str, str, str]  # (code, adapter, network)


def peer_network(address: str | None) -> str:
    """The network a peer address is counted under (Rule 1)."""
    if not address:
        return UNKNOWN_NETWORK
    try:
        ip = ipaddress.ip_address(address.partition("%")[0])  # an IPv6 zone id is not part of the address
    except ValueError:
        return UNKNOWN_NETWORK
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


class RejectionTally:
    """Counts of one interval (Rules 2-3). Time comes in as an argument."""

    def __init__(self, max_keys: int = MAX_SUMMARY_KEYS) -> None:
        self._max_keys = max(1, min(max_keys, MAX_SUMMARY_KEYS))
        self._counts: dict[Key, int] = {}
        self._networks = 0  # keys with a real network (the overflow keys are not bounded by max_keys)
        self._since: datetime | None = None

    def __len__(self) -> int:
        return sum(self._counts.values())

    def add(self, code: str, adapter: str, network: str, at: datetime) -> None:
        key = (code, adapter, network)
        if key not in self._counts:
            if self._networks >= self._max_keys:
                key = (code, adapter, OVERFLOW_NETWORK)
            else:
                self._networks += 1
        if self._since is None:
            self._since = at
        self._counts[key] = self._counts.get(key, 0) + 1

    def drain(self, at: datetime) -> dict[str, Any] | None:
        """The ``rejected_summary`` fields for the interval that ends ``at``; None when nothing was counted."""
        if self._since is None:
            return None
        counts = [
            {"code": code, "adapter": adapter, "network": network, "count": count}
            for (code, adapter, network), count in sorted(self._counts.items())
        ]
        fields = {"since": rfc3339(self._since), "total": len(self), "counts": counts}
        self._counts, self._networks, self._since = {}, 0, None
        return fields
