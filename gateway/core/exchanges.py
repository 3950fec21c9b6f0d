"""What the audit console reads out of ledger leaves: exchange search, one message's story, rejections by code.

Rule 1: a leaf is read as the JSON object it is (``gateway.core.audit``: leaves are canonical JSON objects); a
        leaf that is not one is skipped here (the ledger verifier, ``core.ledgercheck``, is where a malformed leaf is
        an error).
Rule 2: a search filter matches a leaf when EVERY given field matches: ``message_id`` (also a port update's
        ``id`` and a recall's recalled message), ``sender``, ``recipient`` (``to``, ``recipient``,
        ``withdrawn_from``), ``type``, ``container`` and ``bl`` (a port update's containers and transport
        document; the caller may also match a message's payload), and ``since <= at < until``.
Rule 3: a story is the leaves about ONE message (sender, id), in ledger order: its acceptance, the forwards of it,
        deliveries, acknowledgements (an ``acknowledged`` leaf names cursors; ``owners`` says whose they are),
        recalls, port updates and rejections that name it.
Rule 4: rejections are counted per (time bucket, code); buckets are aligned to the epoch.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gateway.core.errors import BadRequest, LimitExceeded

# A filter value longer than any member id, message id, type, container or B/L is refused, not searched.
MAX_FILTER_CHARS = 128
# Rejection buckets: from one minute to one week.
MIN_BUCKET_SECONDS = 60
MAX_BUCKET_SECONDS = 7 * 24 * 3600

FILTER_FIELDS = ("message_id", "sender", "recipient", "type", "container", "bl")


@dataclass(frozen=True, slots=True)
class ExchangeQuery:
    message_id: str | None = None
    sender: str | None = None
    recipient: str | None = None
    type: str | None = None
    container: str | None = None
    bl: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def payload_terms(self) -> tuple[str, ...]:
        """The terms a message's payload may satisfy instead of the leaf (Rule 2: container, B/L)."""
        return tuple(t for t in (self.container, self.bl) if t)


def parse_time(raw: str, field: str) -> datetime:
    """An RFC 3339 instant with an explicit offset (``Z`` or ``+hh:mm``)."""
    try:
        at = datetime.fromisoformat(raw.replace("z", "Z"))
        if at.tzinfo is None:
            raise BadRequest(f"{field} must carry a UTC offset (e.g. Z)", field=field)
        return at.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # OverflowError: year 1 or 9999 shifted out of range by its offset
        raise BadRequest(f"{field} must be an RFC 3339 time", field=field) from exc


def parse_query(params: Mapping[str, str]) -> ExchangeQuery:
    values: dict[str, Any] = {}
    for name in FILTER_FIELDS:
        raw = params.get(name, "").strip()
        if len(raw) > MAX_FILTER_CHARS:
            raise LimitExceeded(f"{name} longer than {MAX_FILTER_CHARS} characters", field=name)
        values[name] = raw or None
    for name in ("since", "until"):
        raw = params.get(name, "").strip()
        values[name] = parse_time(raw, name) if raw else None
    query = ExchangeQuery(**values)
    if query.since and query.until and query.until <= query.since:
        raise BadRequest("until must be after since", field="until")
    return query


def read_leaf(data: bytes) -> dict[str, Any] | None:
    """Rule 1."""
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def leaf_time(event: Mapping[str, Any]) -> datetime | None:
    at = event.get("at")
    if not isinstance(at, str):
        return None
    try:
        return parse_time(at, "at")
    except BadRequest:
        return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def message_key(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (sender, id) a leaf is about, when it names one."""
    sender = event.get("sender")
    message_id = event.get("message_id", event.get("id"))
    if isinstance(sender, str) and isinstance(message_id, str):
        return sender, message_id
    return None


def _ids(event: Mapping[str, Any]) -> list[str]:
    ids = _strings(event.get("message_id")) + _strings(event.get("id"))
    for nested in ("recall", "forward_of", "parent"):
        inner = event.get(nested)
        if isinstance(inner, Mapping):
            ids += _strings(inner.get("message_id"))
    return ids


def _recipients(event: Mapping[str, Any]) -> list[str]:
    return _strings(event.get("to")) + _strings(event.get("recipient")) + _strings(event.get("withdrawn_from"))


def _containers(event: Mapping[str, Any]) -> list[str]:
    outcomes = event.get("outcomes")
    found = [o["container"] for o in outcomes if isinstance(o, Mapping)] if isinstance(outcomes, list) else []
    return [c for c in found if isinstance(c, str)] + _strings(event.get("container"))


def _bls(event: Mapping[str, Any]) -> list[str]:
    return _strings(event.get("transport_document")) + _strings(event.get("bl"))


def matches(event: Mapping[str, Any], query: ExchangeQuery, *, payload_matched: bool = False) -> bool:
    """Rule 2. ``payload_matched``: the caller found every container / B/L term in the message's payload."""
    checks: list[tuple[str | None, list[str]]] = [
        (query.message_id, _ids(event)),
        (query.sender, _strings(event.get("sender"))),
        (query.recipient, _recipients(event)),
        (query.type, _strings(event.get("type"))),
    ]
    if not payload_matched:
        checks += [(query.container, _containers(event)), (query.bl, _bls(event))]
    if any(wanted is not None and wanted not in have for wanted, have in checks):
        return False
    if query.since is not None or query.until is not None:
        at = leaf_time(event)
        if at is None or (query.since is not None and at < query.since):
            return False
        if query.until is not None and at >= query.until:
            return False
    return True


def summary(index: int, event: Mapping[str, Any]) -> dict[str, Any]:
    """One search hit: the fields a table shows, and the leaf itself."""
    key = message_key(event)
    return {
        "index": index,
        "at": event.get("at"),
        "event": event.get("event"),
        "sender": key[0] if key else event.get("sender"),
        "message_id": key[1] if key else None,
        "type": event.get("type"),
        "recipients": _recipients(event),
        "code": event.get("code"),
        "entry": dict(event),
    }


# -- Rule 3: one message's story -------------------------------------------------------------------------


def story_step(
    event: Mapping[str, Any], key: tuple[str, str], owners: Mapping[int, tuple[str, str, str]]
) -> str | None:
    """The step this leaf is in the story of ``key``, or None when it is not about that message."""
    kind = event.get("event")
    for nested in ("forward_of", "parent"):
        inner = event.get(nested)
        if kind == "accepted" and isinstance(inner, Mapping) and (inner.get("sender"), inner.get("message_id")) == key:
            return "forwarded"
    if kind == "acknowledged":
        recipient = event.get("recipient")
        cursors = event.get("cursors")
        if isinstance(cursors, list):
            for cursor in cursors:
                owner = owners.get(cursor) if isinstance(cursor, int) else None
                if owner is not None and owner == (recipient, *key):
                    return "acknowledged"
        return None
    if message_key(event) != key:
        return None
    steps = {"accepted": "accepted", "delivered": "delivered", "delivery_failed": "delivery_failed"}
    steps |= {"recalled": "recalled", "port_update": "port_update", "rejected": "rejected"}
    return steps.get(kind) if isinstance(kind, str) else None


def ack_cursors(event: Mapping[str, Any], recipients: Iterable[str]) -> list[int]:
    """The cursors of an ``acknowledged`` leaf by one of ``recipients`` (to look up their owners)."""
    if event.get("event") != "acknowledged" or event.get("recipient") not in set(recipients):
        return []
    cursors = event.get("cursors")
    return [c for c in cursors if isinstance(c, int) and not isinstance(c, bool)] if isinstance(cursors, list) else []


# -- Rule 4: rejections by code per time bucket ----------------------------------------------------------


def parse_bucket(raw: str | None, default: int) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise BadRequest("bucket must be a number of seconds", field="bucket")
    value = int(raw)
    if not MIN_BUCKET_SECONDS <= value <= MAX_BUCKET_SECONDS:
        raise BadRequest(f"bucket must be {MIN_BUCKET_SECONDS}..{MAX_BUCKET_SECONDS} seconds", field="bucket")
    return value


@dataclass
class RejectionCounts:
    bucket_seconds: int
    counts: dict[int, dict[str, int]]

    def add(self, event: Mapping[str, Any]) -> None:
        at = leaf_time(event)
        if event.get("event") != "rejected" or at is None:
            return
        code = event.get("code")
        start = int(at.timestamp()) // self.bucket_seconds * self.bucket_seconds
        bucket = self.counts.setdefault(start, {})
        name = code if isinstance(code, str) else "UNKNOWN"
        bucket[name] = bucket.get(name, 0) + 1

    def record(self) -> dict[str, Any]:
        codes = sorted({code for bucket in self.counts.values() for code in bucket})
        return {
            "bucket_seconds": self.bucket_seconds,
            "codes": codes,
            "buckets": [
                {
                    "start": datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z"),
                    "counts": dict(sorted(self.counts[start].items())),
                }
                for start in sorted(self.counts)
            ],
        }
