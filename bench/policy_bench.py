"""Cost of the issue-3 access decisions and of the forward lookup on pull (in-process, no network).

    python bench/policy_bench.py

Prints microseconds per Cedar decision for an SSTL submit (repeated, so remembered by the authorizer, and
distinct, so evaluated), a forward, the receive check for two recipients, the authorizer build time, and the
milliseconds of a 100-item SQLite pull with the batched ``forwards_of`` lookup versus one lookup per item.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.payloads import MESSAGE_TYPES
from gateway.core.policy import Authorizer
from gateway.core.policyrequests import AccessRequest, forward_request, receive_request, submit_request
from gateway.infra.policyfiles import bundle_programs, load_bundle, load_sample_registry
from gateway.infra.sqlite import SqliteStore
from gateway.interfaces.protocols import StoredMessage

POLICIES = Path(__file__).resolve().parents[1] / "policies"
DECISIONS = 5_000


def decisions() -> None:
    bundle = load_bundle(POLICIES)
    registry = load_sample_registry(POLICIES)
    started = time.perf_counter()
    authorizer = Authorizer(bundle, registry, MESSAGE_TYPES, programs=bundle_programs(bundle, MESSAGE_TYPES))
    built = time.perf_counter() - started
    m = registry.members

    def run(label: str, make: Callable[[int], AccessRequest]) -> None:
        requests = [make(i) for i in range(DECISIONS)]
        started = time.perf_counter()
        for request in requests:
            authorizer.authorize(request)
        print(f"{label}: {(time.perf_counter() - started) / DECISIONS * 1e6:.1f} us/decision")

    gacc, douane, cbp, port = m["CN-GACC"], m["NL-DOUANE"], m["US-CBP"], m["PORT-NLRTM"]
    run(
        "SSTL submit, repeated (remembered)",
        lambda i: submit_request(gacc, "sstl.security-data.v1", "SSTL", "AMBER", [douane], lane="CNYTN-NLRTM"),
    )
    run(
        "SSTL submit, distinct (evaluated)",
        lambda i: submit_request(gacc, "sstl.security-data.v1", "SSTL", "AMBER", [douane], lane=f"L{i}"),
    )
    run(
        "forward, distinct (evaluated)",
        lambda i: forward_request(cbp, "megaport.rpm-alarm.v1", "MEGAPORT", "AMBER", [douane], original_sender=f"P{i}"),
    )
    batches = [
        [receive_request(r, "megaport.rpm-alarm.v1", port, "MEGAPORT", f"T{i}") for r in (cbp, douane)]
        for i in range(DECISIONS)
    ]
    started = time.perf_counter()
    for batch in batches:
        authorizer.authorize_many(batch)
    print(
        f"receive check, 2 recipients (evaluated): {(time.perf_counter() - started) / DECISIONS * 1e6:.1f} us/message"
    )
    print(f"authorizer build (compile + entities): {built * 1000:.1f} ms")


async def pulls() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = await SqliteStore.open(Path(tmp) / "bench.db")
        try:
            for i in range(100):
                message = StoredMessage(
                    "CARRIER-COSCO",
                    f"m{i}",
                    "manifest.cargo.v1",
                    ("CN-GACC",),
                    f"h.p{i}.s",
                    b"{}",
                    f"{i:064x}",
                    datetime.now(UTC),
                )
                event = AuditEvent(EventKind.ACCEPTED, message.received_at, {"id": message.message_id})
                await store.accept(message, event, lambda index, at: b"receipt")
            for label, mode in (("pull", 0), ("pull + forwards_of (one batch)", 1), ("pull + forward_of per item", 2)):
                started = time.perf_counter()
                for _ in range(100):
                    items = await store.pull("CN-GACC", 0, 100)
                    if mode == 1:
                        await store.forwards_of([(i.message.sender, i.message.message_id) for i in items])
                    elif mode == 2:
                        for item in items:
                            await store.forward_of(item.message.sender, item.message.message_id)
                print(f"{label}, 100 items: {(time.perf_counter() - started) * 10:.2f} ms")
        finally:
            await store.close()


if __name__ == "__main__":
    decisions()
    asyncio.run(pulls())
