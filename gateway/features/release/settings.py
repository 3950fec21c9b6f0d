"""``[ports]`` settings: port release synchronisation (gateway/features/release/portstream.py).

Rule 1: ``subscriptions`` maps a port member id to the UN/LOCODEs whose streams it reads, each checked as a port
        UN/LOCODE; a port member not listed is subscribed by the id convention ``PORT-<LOCODE>``.
Rule 2: ``push_streams`` (default false) also pushes every batch of stream entries to the subscribers that have
        a push endpoint, as gateway-signed ``port.stream.v1`` messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from gateway.core import identifiers as ids
from gateway.core.errors import GatewayError, Unavailable
from gateway.core.registry import MEMBER_ID

# UN/LOCODEs one port member may subscribe to (a port authority runs a handful of terminals at most).
MAX_SUBSCRIPTIONS_PER_MEMBER = 32
KEYS = frozenset({"push_streams", "subscriptions"})


@dataclass(frozen=True, slots=True)
class PortSettings:
    push_streams: bool = False
    subscriptions: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


def parse_port_settings(raw: Mapping[str, Any]) -> PortSettings:
    push = raw.get("push_streams", False)
    if not isinstance(push, bool):
        raise Unavailable("config: [ports] push_streams must be true or false", field="ports.push_streams")
    table = raw.get("subscriptions", {})
    if not isinstance(table, Mapping):
        raise Unavailable("config: [ports] subscriptions must be a table", field="ports.subscriptions")
    subscriptions: dict[str, tuple[str, ...]] = {}
    for member, locodes in table.items():
        where = f"ports.subscriptions.{member}"
        if not isinstance(member, str) or not MEMBER_ID.fullmatch(member):
            raise Unavailable("config: [ports] subscriptions: not a member id", field=where)
        if not isinstance(locodes, list) or not 0 < len(locodes) <= MAX_SUBSCRIPTIONS_PER_MEMBER:
            raise Unavailable(f"config: 1 to {MAX_SUBSCRIPTIONS_PER_MEMBER} UN/LOCODEs", field=where)
        try:
            subscriptions[member] = tuple(
                ids.check_port_locode(str(code), f"{where}[{i}]") for i, code in enumerate(locodes)
            )
        except GatewayError as exc:
            raise Unavailable(f"config: {exc.detail}", field=exc.field) from None
    return PortSettings(push_streams=push, subscriptions=MappingProxyType(subscriptions))
