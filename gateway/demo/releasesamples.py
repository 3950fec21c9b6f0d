"""Sample payloads of the port release messages (issue 8): the demo, the tests and the docs use them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

BL = "COSU6123456780"
CONTAINERS = ("MSKU9070323", "CSQU3054383", "TGHU8792452")


def _time(at: datetime | None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def release_notice(
    decision: str,
    version: int,
    containers: tuple[str, ...] = (),
    *,
    bl: str = BL,
    port: str = "NLRTM",
    reason: str = "",
    at: datetime | None = None,
) -> dict[str, Any]:
    """A ``release.notice.v1``; no containers: the decision covers the whole B/L."""
    document: dict[str, Any] = {
        "transportDocumentNumber": bl,
        "decision": decision,
        "version": str(version),
        "port": port,
        "effectiveTime": _time(at),
    }
    if containers:
        document["containerNumbers"] = list(containers)
    if reason:
        document["reason"] = reason
    return document


def gate_out(container: str, *, bl: str = BL, port: str = "NLRTM", at: datetime | None = None) -> dict[str, Any]:
    """A ``port.gate-out.v1``: the port reports ``container`` leaving the terminal."""
    document: dict[str, Any] = {"port": port, "containerNumber": container, "gateOutTime": _time(at)}
    if bl:
        document["transportDocumentNumber"] = bl
    return document | {"terminal": "Euromax"}


def gate_out_alert(container: str, *, status: str = "HOLD", at: datetime | None = None) -> dict[str, Any]:
    """An ``alert.gate-out.v1`` as the gateway writes it."""
    return {
        "port": "NLRTM",
        "containerNumber": container,
        "transportDocumentNumber": BL,
        "status": status,
        "reason": f"container is {status}, not RELEASED",
        "gateOutSender": "PORT-NLRTM",
        "gateOutMessageId": "0b1c2d3e-0000-4000-8000-000000000002",
        "gateOutTime": _time(at),
    }


def stream_update(*, at: datetime | None = None) -> dict[str, Any]:
    """A ``port.stream.v1`` as the gateway writes it (two entries of PORT-NLRTM's stream)."""
    entry = {
        "port": "NLRTM",
        "transportDocumentNumber": BL,
        "status": "RELEASED",
        "previous": "HOLD",
        "version": "2",
        "effectiveTime": _time(at),
        "reason": "documentary check passed",
        "sender": "CN-GACC",
        "messageId": "0b1c2d3e-0000-4000-8000-000000000003",
    }
    return {
        "port": "NLRTM",
        "entries": [
            entry | {"seq": "7", "containerNumber": CONTAINERS[0]},
            entry | {"seq": "8", "containerNumber": ""},
        ],
    }
