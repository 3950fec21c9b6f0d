"""PortStreamStore contract: the same assertions on SQLite and on Redis (issue 8), including that a decision,
its ``port_update`` ledger leaf and a gate-out's alert are one atomic write of the message store (issue 17)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import Internal
from gateway.core.release import (
    GateOut,
    Plan,
    ReleaseNotice,
    Status,
    plan_gate_out,
    plan_notice,
)
from gateway.infra.redis_ports import RedisPortStreams
from gateway.infra.redis_store import RedisStore
from gateway.infra.sqlite import SqliteStore
from gateway.infra.sqlite_ports import SqlitePortStreams
from gateway.interfaces.protocols import NewMessage, PortLedger, PortStreamStore, Store
from tests.contract.conftest import Kit
from tests.redisenv import REDIS_PARAM, REDIS_URL

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BL = "COSU6123456780"
A, B, C = "MSKU9070323", "CSQU3054383", "TGHU8792452"


@pytest.fixture(params=["sqlite", REDIS_PARAM])
async def both(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[PortStreamStore, Store]]:
    """The port streams and the message store they live in (the same database or Redis prefix)."""
    if request.param == "sqlite":
        store = await SqliteStore.open(tmp_path / "gateway.db")
        opened: PortStreamStore = await SqlitePortStreams.open(store)
        yield opened, store
        await opened.close()
        await store.close()
        return
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    redis_store = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
    redis_streams = await RedisPortStreams.open(REDIS_URL, key_prefix=prefix, store=redis_store)
    try:
        yield redis_streams, redis_store
    finally:
        await redis_store.delete_all()
        await redis_streams.close()
        await redis_store.close()


@pytest.fixture
def streams(both: tuple[PortStreamStore, Store]) -> PortStreamStore:
    return both[0]


def ledgered(plan: Plan) -> PortLedger:
    return PortLedger(AuditEvent(EventKind.PORT_UPDATE, T0, plan.record()))


async def leaves(store: Store) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in await store.ledger_entries(0, await store.ledger_size())]


def notice(decision: Status, version: int, *containers: str, port: str = "NLRTM") -> ReleaseNotice:
    return ReleaseNotice(BL, containers, decision, version, port, "", T0)


async def submit(streams: PortStreamStore, n: ReleaseNotice, mid: str | None = None) -> object:
    key = ("CN-GACC", mid or str(uuid.uuid4()))
    return await streams.apply(
        n.port, key, n.transport_document, n.containers, lambda cur: plan_notice(n, key, cur), record=ledgered
    )


async def test_sequences_are_dense_per_port_and_resumable(streams: PortStreamStore) -> None:
    await submit(streams, notice(Status.HOLD, 1, A, B))
    await submit(streams, notice(Status.HOLD, 1, C, port="BEANR"))
    await submit(streams, notice(Status.RELEASED, 2, A))
    entries = await streams.notices("NLRTM", 0, 100)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert [(e.container, e.status) for e in entries] == [(A, Status.HOLD), (B, Status.HOLD), (A, Status.RELEASED)]
    assert [e.seq for e in await streams.notices("NLRTM", 2, 100)] == [3]
    assert [e.seq for e in await streams.notices("NLRTM", 0, 1)] == [1]
    assert [e.seq for e in await streams.notices("BEANR", 0, 100)] == [1]
    head, standings = await streams.snapshot("NLRTM")
    assert head == 3
    assert {(s.container, s.status, s.version, s.seq) for s in standings} == {
        (A, Status.RELEASED, 2, 3),
        (B, Status.HOLD, 1, 2),
    }


async def test_a_message_applies_once(streams: PortStreamStore) -> None:
    first = await submit(streams, notice(Status.HOLD, 1, A), mid="m-1")
    assert first is not None
    assert await submit(streams, notice(Status.HOLD, 1, A), mid="m-1") is None
    assert await streams.applied(("CN-GACC", "m-1"))
    assert not await streams.applied(("CN-GACC", "m-2"))
    assert len(await streams.notices("NLRTM", 0, 100)) == 1


async def test_late_older_version_is_recorded_and_ignored(streams: PortStreamStore) -> None:
    await submit(streams, notice(Status.RELEASED, 3, A))
    plan = await submit(streams, notice(Status.HOLD, 2, A))
    assert plan is not None and not plan.changes  # type: ignore[attr-defined]
    head, standings = await streams.snapshot("NLRTM")
    assert head == 1 and [(s.status, s.version) for s in standings] == [(Status.RELEASED, 3)]


async def test_cancelled_and_gated_out_leave_the_snapshot(streams: PortStreamStore) -> None:
    await submit(streams, notice(Status.RELEASED, 1, A, B))
    await submit(streams, notice(Status.CANCELLED, 2, B))
    gate = GateOut("NLRTM", A, BL, T0)
    key = ("PORT-NLRTM", "g-1")
    plan = await streams.apply("NLRTM", key, "", (A,), lambda cur: plan_gate_out(gate, key, cur), record=ledgered)
    assert plan is not None and plan.changes[0].status is Status.GATED_OUT and plan.changes[0].seq == 4
    head, standings = await streams.snapshot("NLRTM")
    assert head == 4 and standings == []


async def test_concurrent_applies_keep_the_sequence_dense(streams: PortStreamStore) -> None:
    containers = [A, B, C]
    await asyncio.gather(*(submit(streams, notice(Status.HOLD, v, containers[v % 3])) for v in range(1, 13)))
    entries = await streams.notices("NLRTM", 0, 100)
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    head, _ = await streams.snapshot("NLRTM")
    assert head == len(entries)


async def test_the_recovery_scan_mark_is_kept(streams: PortStreamStore) -> None:
    assert await streams.ledger_scanned() == 0
    await streams.set_ledger_scanned(42)
    assert await streams.ledger_scanned() == 42


async def test_every_decision_is_ledgered_in_the_same_write(both: tuple[PortStreamStore, Store]) -> None:
    streams, store = both
    await submit(streams, notice(Status.HOLD, 1, A, B), mid="m-1")
    await submit(streams, notice(Status.HOLD, 1, A), mid="m-1")  # applied before: no second leaf
    await submit(streams, notice(Status.RELEASED, 2, A), mid="m-2")
    await submit(streams, notice(Status.HOLD, 1, A), mid="m-3")  # stale: no entry, still ledgered
    events = await leaves(store)
    assert [e["event"] for e in events] == ["port_update"] * 3
    assert [e["seqs"] for e in events] == [[1, 2], [3], []]
    assert [e.seq for e in await streams.notices("NLRTM", 0, 100)] == [1, 2, 3]


async def test_a_failing_ledger_write_leaves_the_port_untouched(both: tuple[PortStreamStore, Store]) -> None:
    streams, store = both
    n, key = notice(Status.HOLD, 1, A), ("CN-GACC", "m-1")

    def broken(plan: Plan) -> PortLedger:
        raise Internal("the ledger event cannot be built")

    with pytest.raises(Internal):
        await streams.apply(n.port, key, BL, n.containers, lambda cur: plan_notice(n, key, cur), record=broken)
    assert await streams.notices("NLRTM", 0, 100) == []
    assert not await streams.applied(key)
    assert await store.ledger_size() == 0
    assert await submit(streams, n, mid="m-1") is not None  # nothing half-done stands in the way


async def test_a_refused_gate_out_and_its_alert_are_one_write(both: tuple[PortStreamStore, Store], kit: Kit) -> None:
    streams, store = both
    await submit(streams, notice(Status.HOLD, 1, A))
    gate, key = GateOut("NLRTM", A, BL, T0), ("PORT-NLRTM", "g-1")
    alert = kit.message("CN-GACC", ("CN-GACC",), message_id="alert-g-1")

    def with_alert(plan: Plan) -> PortLedger:
        assert plan.alert  # A is on HOLD
        event = AuditEvent(EventKind.GATE_OUT_ALERT, T0, {"message_id": alert.message_id})
        return PortLedger(ledgered(plan).event, NewMessage(alert, event, kit.make_receipt))

    plan = await streams.apply("NLRTM", key, BL, (A,), lambda cur: plan_gate_out(gate, key, cur), record=with_alert)
    assert plan is not None and not plan.changes
    assert [e["event"] for e in await leaves(store)] == ["port_update", "gate_out_alert", "port_update"]
    stored = await store.find_message("CN-GACC", "alert-g-1")
    assert stored is not None and stored.leaf_index == 1
    assert kit.receipt_valid(stored.receipt, 1, stored.received_at)
    [item] = await store.pull("CN-GACC", 0, 10)
    assert item.message.message_id == "alert-g-1"
    again = await streams.apply("NLRTM", key, BL, (A,), lambda cur: plan_gate_out(gate, key, cur), record=with_alert)
    assert again is None and await store.ledger_size() == 3


@pytest.mark.redis
async def test_two_redis_processes_on_one_port_keep_it_dense_and_ledgered() -> None:
    """Two message stores (two sequencers) and their port streams on one prefix stand for two gateway
    processes: their applies race; the stream stays dense and every entry is in exactly one ledger event."""
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    stores = [await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True) for _ in range(2)]
    first, second = [await RedisPortStreams.open(REDIS_URL, key_prefix=prefix, store=s) for s in stores]
    try:
        containers = [A, B, C]
        await asyncio.gather(
            *(submit(first if v % 2 else second, notice(Status.HOLD, v, containers[v % 3])) for v in range(1, 41))
        )
        entries = await first.notices("NLRTM", 0, 100)
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        head, standings = await second.snapshot("NLRTM")
        assert head == len(entries) and {s.container for s in standings} == {A, B, C}
        events = await leaves(stores[0])
        assert len(events) == 40
        assert sorted(seq for e in events for seq in e["seqs"]) == [e.seq for e in entries]
    finally:
        await stores[0].delete_all()
        for opened in (first, second, *stores):
            await opened.close()
