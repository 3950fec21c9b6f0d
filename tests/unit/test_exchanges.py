"""The audit console's ledger reading rules (gateway/core/exchanges.py): filters, story steps, rejection counts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import BadRequest, LimitExceeded
from gateway.core.exchanges import (
    ExchangeQuery,
    RejectionCounts,
    ack_cursors,
    matches,
    parse_bucket,
    parse_query,
    read_leaf,
    story_step,
)

AT = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
KEY = ("CARRIER-COSCO", "m-1")


def leaf(kind: EventKind, at: datetime = AT, **fields: object) -> dict[str, object]:
    event = read_leaf(AuditEvent(kind, at, fields).canonical())
    assert event is not None
    return event


ACCEPTED = leaf(EventKind.ACCEPTED, sender="CARRIER-COSCO", message_id="m-1", type="manifest.cargo.v1", to=["CN-GACC"])
PORT = leaf(
    EventKind.PORT_UPDATE,
    sender="CN-GACC",
    id="r-1",
    type="release.notice.v1",
    port="NLRTM",
    outcomes=[{"container": "MSKU9070323", "effect": "applied", "after": "HOLD"}],
)


def test_every_given_filter_must_match() -> None:
    assert matches(ACCEPTED, ExchangeQuery(sender="CARRIER-COSCO", recipient="CN-GACC", type="manifest.cargo.v1"))
    assert not matches(ACCEPTED, ExchangeQuery(sender="CARRIER-COSCO", recipient="NL-DOUANE"))
    assert matches(PORT, ExchangeQuery(message_id="r-1", container="MSKU9070323"))
    assert not matches(PORT, ExchangeQuery(container="CSQU3054383"))
    # container / B/L on an accepted leaf: only when the caller matched them in the payload
    assert not matches(ACCEPTED, ExchangeQuery(container="MSKU9070323"))
    assert matches(ACCEPTED, ExchangeQuery(container="MSKU9070323"), payload_matched=True)
    assert not matches(ACCEPTED, ExchangeQuery(container="MSKU9070323", sender="X"), payload_matched=True)


def test_time_window_is_half_open() -> None:
    assert matches(ACCEPTED, ExchangeQuery(since=AT, until=datetime(2026, 12, 6, tzinfo=UTC)))
    assert not matches(ACCEPTED, ExchangeQuery(until=AT))
    assert not matches({"event": "accepted"}, ExchangeQuery(since=AT))  # no time: outside any window


def test_query_parsing_names_the_field() -> None:
    query = parse_query({"sender": " CN-GACC ", "since": "2026-12-05T10:00:00+02:00", "bl": ""})
    assert query.sender == "CN-GACC" and query.bl is None and query.since == datetime(2026, 12, 5, 8, tzinfo=UTC)
    for params, field in (
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-12-05T10:00:00"}, "until"),  # no offset
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),  # out of range once in UTC
        ({"since": "2026-12-05T10:00:00Z", "until": "2026-12-05T09:00:00Z"}, "until"),
    ):
        with pytest.raises(BadRequest) as err:
            parse_query(params)
        assert err.value.field == field
    with pytest.raises(LimitExceeded):
        parse_query({"type": "x" * 200})


def test_story_steps_of_one_message() -> None:
    owners = {7: ("CN-GACC", *KEY), 8: ("CN-GACC", "CARRIER-COSCO", "m-2")}
    forward = leaf(
        EventKind.ACCEPTED,
        sender="US-CBP",
        message_id="f-1",
        forward_of={"sender": KEY[0], "message_id": KEY[1]},
    )
    cases = [
        (ACCEPTED, "accepted"),
        (forward, "forwarded"),
        (leaf(EventKind.DELIVERED, sender=KEY[0], message_id=KEY[1], recipient="CN-GACC", cursor=7), "delivered"),
        (leaf(EventKind.ACKNOWLEDGED, recipient="CN-GACC", cursors=[8, 7]), "acknowledged"),
        (leaf(EventKind.ACKNOWLEDGED, recipient="CN-GACC", cursors=[8]), None),  # another message's cursor
        (leaf(EventKind.ACKNOWLEDGED, recipient="NL-DOUANE", cursors=[7]), None),  # not that cursor's owner
        (leaf(EventKind.RECALLED, sender=KEY[0], message_id=KEY[1], withdrawn_from=["CN-GACC"]), "recalled"),
        (leaf(EventKind.REJECTED, sender=KEY[0], message_id=KEY[1], code="DUPLICATE_CONFLICT"), "rejected"),
        (leaf(EventKind.ACCEPTED, sender=KEY[0], message_id="m-2"), None),
    ]
    assert [story_step(event, KEY, owners) for event, _ in cases] == [step for _, step in cases]
    assert ack_cursors(leaf(EventKind.ACKNOWLEDGED, recipient="CN-GACC", cursors=[3, True]), ["CN-GACC"]) == [3]
    assert ack_cursors(leaf(EventKind.ACKNOWLEDGED, recipient="X", cursors=[3]), ["CN-GACC"]) == []


def test_rejections_are_counted_per_epoch_aligned_bucket_and_code() -> None:
    counts = RejectionCounts(3600, {})
    for hour, minute, code in ((10, 1, "POLICY_DENIED"), (10, 59, "POLICY_DENIED"), (11, 1, "SIGNATURE_INVALID")):
        counts.add(leaf(EventKind.REJECTED, datetime(2026, 12, 5, hour, minute, tzinfo=UTC), code=code))
    counts.add(ACCEPTED)  # not a rejection
    assert counts.record() == {
        "bucket_seconds": 3600,
        "codes": ["POLICY_DENIED", "SIGNATURE_INVALID"],
        "buckets": [
            {"start": "2026-12-05T10:00:00Z", "counts": {"POLICY_DENIED": 2}},
            {"start": "2026-12-05T11:00:00Z", "counts": {"SIGNATURE_INVALID": 1}},
        ],
    }
    assert parse_bucket(None, 3600) == 3600
    for bad in ("59", "x", str(8 * 24 * 3600)):
        with pytest.raises(BadRequest):
            parse_bucket(bad, 3600)


def test_a_leaf_that_is_not_a_json_object_is_skipped() -> None:
    assert read_leaf(b"[1]") is None and read_leaf(b"\xff") is None
