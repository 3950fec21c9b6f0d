"""Cost of the port release streams (issue 8) at the store level, SQLite and Redis (no network but Redis's).

    python bench/port_bench.py [--notices 2000]

Applies ``--notices`` release notices to one port (each a 3-container B/L: HOLD, then RELEASED of one
container), sequentially and 16 at a time, then reads the whole stream in pages of 500 and takes a snapshot.
Prints applies per second and the read and snapshot times. Each apply also appends its ``port_update`` ledger
leaf in the same write (issue 17), so the streams run inside a message store: ``gateway.db`` on SQLite, the
store's sequencer on Redis. Redis at 127.0.0.1:6379 (skipped when absent).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import Unavailable
from gateway.core.identifiers import iso6346_check_digit
from gateway.core.release import ReleaseNotice, Status, plan_notice
from gateway.infra.redis_ports import RedisPortStreams
from gateway.infra.redis_store import RedisStore
from gateway.infra.sqlite import SqliteStore
from gateway.infra.sqlite_ports import SqlitePortStreams
from gateway.interfaces.protocols import PortLedger, PortStreamStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)
REDIS_URL = "redis://127.0.0.1:6379/0"


def container(n: int) -> str:
    body = f"MSKU{n:06d}"
    return body + str(iso6346_check_digit(body))


async def apply(streams: PortStreamStore, n: int, decision: Status, version: int, containers: tuple[str, ...]) -> None:
    notice = ReleaseNotice(f"BL{n:08d}", containers, decision, version, "NLRTM", "", T0)
    key = ("CN-GACC", str(uuid.uuid4()))
    await streams.apply(
        "NLRTM",
        key,
        notice.transport_document,
        containers,
        lambda cur: plan_notice(notice, key, cur),
        record=lambda plan: PortLedger(AuditEvent(EventKind.PORT_UPDATE, T0, plan.record())),
    )


async def run(name: str, streams: PortStreamStore, notices: int) -> None:
    started = time.perf_counter()
    for n in range(notices // 2):
        await apply(streams, n, Status.HOLD, 1, tuple(container(3 * n + i) for i in range(3)))
    sequential = time.perf_counter() - started
    started = time.perf_counter()
    sem = asyncio.Semaphore(16)

    async def one(n: int) -> None:
        async with sem:
            await apply(streams, n, Status.RELEASED, 2, (container(3 * n),))

    await asyncio.gather(*(one(n) for n in range(notices // 2)))
    concurrent = time.perf_counter() - started
    started = time.perf_counter()
    after, entries = 0, 0
    while page := await streams.notices("NLRTM", after, 500):
        after, entries = page[-1].seq, entries + len(page)
    read = time.perf_counter() - started
    started = time.perf_counter()
    seq, standings = await streams.snapshot("NLRTM")
    snap = time.perf_counter() - started
    print(
        f"{name:6} apply sequential {notices // 2 / sequential:7.0f}/s (3 containers each), 16 concurrent"
        f" {notices // 2 / concurrent:7.0f}/s; read {entries} entries {read * 1000:6.1f} ms;"
        f" snapshot of {len(standings)} standings at seq {seq} {snap * 1000:6.1f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--notices", type=int, default=2000)
    notices = parser.parse_args().notices
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqliteStore.open(Path(tmp) / "gateway.db")
        try:
            await run("sqlite", await SqlitePortStreams.open(store), notices)
        finally:
            await store.close()
    prefix = f"cgw-bench-{uuid.uuid4().hex[:8]}"
    try:
        shared = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
    except Unavailable as exc:
        print(f"redis  skipped: {exc.detail}")
        return
    redis = await RedisPortStreams.open(REDIS_URL, key_prefix=prefix, store=shared)
    try:
        await run("redis", redis, notices)
    finally:
        await shared.delete_all()
        await redis.close()
        await shared.close()


if __name__ == "__main__":
    asyncio.run(main())
