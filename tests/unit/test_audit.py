"""gateway/core/audit.py: the one RFC 3339 spelling of a leaf's time, and the leaf bytes of an event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from gateway.core.audit import AuditEvent, EventKind, rfc3339


def test_one_spelling_per_instant_whatever_the_zone() -> None:
    at = datetime(2026, 11, 29, 3, 4, 5, 6, tzinfo=UTC)
    same = at.astimezone(timezone(timedelta(hours=8)))  # equal instant, another zone (remembered answers agree)
    assert rfc3339(at) == rfc3339(same) == "2026-11-29T03:04:05.000006Z"
    assert rfc3339(same) == rfc3339(same.replace(tzinfo=timezone(timedelta(hours=8))))
    for n in range(20):  # more instants than the function remembers: each still its own text
        later = at + timedelta(microseconds=n)
        assert rfc3339(later) == f"2026-11-29T03:04:05.{6 + n:06d}Z"
    assert rfc3339(datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5)))) == "2026-01-01T05:00:00.000000Z"


def test_a_leaf_is_the_canonical_json_of_the_event() -> None:
    event = AuditEvent(EventKind.ADMIN, datetime(2026, 11, 29, tzinfo=UTC), {"b": [1, "x"], "a": None})
    leaf = event.canonical()
    assert leaf == b'{"a":null,"at":"2026-11-29T00:00:00.000000Z","b":[1,"x"],"event":"admin"}'
    assert json.loads(leaf)["event"] == "admin"
