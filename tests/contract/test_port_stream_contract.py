"""PortStreamStore contract: the same assertions on SQLite and on Redis (issue 8)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.core.release import (
    GateOut,
    ReleaseNotice,
    Status,
    plan_gate_out,
    plan_notice,
)
from gateway.infra.redis_ports import RedisPortStreams
from gateway.infra.sqlite_ports import SqlitePortStreams
from gateway.ports import PortStreamStore

REDIS_URL = "redis://127.0.0.1:6379/0"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BL = "COSU6123456780"
A, B, C = "MSKU9070323", "CSQU3054383", "TGHU8792452"


@pytest.fixture(params=["sqlite", "redis"])
async def streams(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PortStreamStore]:
    if request.param == "sqlite":
        opened: PortStreamStore = await SqlitePortStreams.open(tmp_path / "ports.db")
        yield opened
        await opened.close()
        return
    redis_streams = await RedisPortStreams.open(REDIS_URL, key_prefix=f"cgw-test-{uuid.uuid4().hex[:12]}")
    try:
        yield redis_streams
    finally:
        await redis_streams.delete_all()
        await redis_streams.close()


def notice(decision: Status, version: int, *containers: str, port: str = "NLRTM") -> ReleaseNotice:
    return ReleaseNotice(BL, containers, decision, version, port, "", T0)


async def submit(streams: PortStreamStore, n: ReleaseNotice, mid: str | None = None) -> object:
    key = ("CN-GACC", mid or str(uuid.uuid4()))
    return await streams.apply(n.port, key, n.transport_document, n.containers, lambda cur: plan_notice(n, key, cur))


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
    plan = await streams.apply("NLRTM", key, "", (A,), lambda cur: plan_gate_out(gate, key, cur))
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


async def test_two_redis_processes_on_one_port_keep_it_dense() -> None:
    """Two RedisPortStreams on one prefix stand for two gateway processes: their applies race (WATCH/EXEC)."""
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    first = await RedisPortStreams.open(REDIS_URL, key_prefix=prefix)
    second = await RedisPortStreams.open(REDIS_URL, key_prefix=prefix)
    try:
        containers = [A, B, C]
        await asyncio.gather(
            *(submit(first if v % 2 else second, notice(Status.HOLD, v, containers[v % 3])) for v in range(1, 41))
        )
        entries = await first.notices("NLRTM", 0, 100)
        assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
        head, standings = await second.snapshot("NLRTM")
        assert head == len(entries) and {s.container for s in standings} == {A, B, C}
    finally:
        await first.delete_all()
        await first.close()
        await second.close()
