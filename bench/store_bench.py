"""Store benchmark: accepted messages per second and latency percentiles, batch size 1 vs group commit.

Usage: ``python bench/store_bench.py [--messages 3000] [--concurrency 256] [--batch 1 --batch 256]``

Each run opens a fresh SQLite store in a temporary directory (on the same file system as the system temp dir;
pass ``--dir`` to measure another disk), then runs ``concurrency`` tasks that accept messages as fast as they
can. Every accept is durable (WAL, synchronous=FULL) before its latency is taken.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from gateway.core.audit import AuditEvent, EventKind
from gateway.infra.sqlite import SqliteStore
from gateway.interfaces.protocols import StoredMessage

PAYLOAD = b'{"vessel":{"imo":"IMO9321483"},"voyage":"042E","consignments":[]}' * 8


def _message(n: int) -> StoredMessage:
    mid = f"bench-{n:08d}"
    jws = "eyJhbGciOiJFUzI1NiJ9." + "A" * 600 + "." + "B" * 86
    digest = hashlib.sha256(jws.encode() + b"." + PAYLOAD).hexdigest()
    return StoredMessage(
        "CARRIER-COSCO", mid, "manifest.cargo.v1", ("CN-GACC",), jws, PAYLOAD, digest, datetime.now(UTC)
    )


def _receipt(leaf_index: int, received_at: datetime) -> bytes:
    return b"R" * 96  # the size of a small signed receipt; signing cost is measured elsewhere


async def run(directory: Path, batch_max: int, messages: int, concurrency: int) -> dict[str, float]:
    store = await SqliteStore.open(directory / f"bench-{batch_max}.db", batch_max=batch_max)
    latencies: list[float] = []
    counter = iter(range(messages))

    async def worker() -> None:
        for n in counter:
            m = _message(n)
            event = AuditEvent(EventKind.ACCEPTED, m.received_at, {"id": m.message_id, "digest": m.digest})
            began = time.perf_counter()
            await store.accept(m, event, _receipt)
            latencies.append(time.perf_counter() - began)

    try:
        started = time.perf_counter()
        commits_before = store.commits
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        commits = store.commits - commits_before
    finally:
        await store.close()
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "msgs_per_s": messages / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "per_commit": messages / max(commits, 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--batch", type=int, action="append", help="batch_max values (default: 1 and 256)")
    parser.add_argument("--dir", type=Path, default=None, help="directory for the database files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for batch_max in args.batch or [1, 256]:
            result = await run(Path(tmp), batch_max, args.messages, args.concurrency)
            print(
                f"batch_max={batch_max:<5} {result['msgs_per_s']:>8.0f} msgs/s  "
                f"p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms  "
                f"{result['per_commit']:.1f} msgs/commit"
            )


if __name__ == "__main__":
    asyncio.run(main())
