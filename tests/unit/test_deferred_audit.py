"""Rejections a store outage kept from the ledger (gateway/exchange/deferredaudit.py), on a real SQLite store: kept in
order with their own time and a ``deferred`` mark, bounded, and written oldest first once the store writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.payloads import MESSAGE_TYPES
from gateway.exchange.deferredaudit import DEFERRED_MAX, DeferredAudit
from gateway.exchange.metrics import Metrics
from gateway.infra.sqlite import SqliteStore

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def rejection(n: int) -> AuditEvent:
    return AuditEvent(EventKind.REJECTED, T0 + timedelta(seconds=n), {"code": "UNAVAILABLE", "n": n})


async def test_kept_rejections_are_bounded_counted_and_written_in_order_once_the_store_writes(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "gateway.db")
    metrics = Metrics(MESSAGE_TYPES)
    deferred = DeferredAudit(store, metrics)
    try:
        assert all(deferred.keep(rejection(n)) for n in range(DEFERRED_MAX))
        assert deferred.keep(rejection(DEFERRED_MAX)) is False  # full: counted, not kept
        assert metrics.registry.get_sample_value("cgw_audit_dropped_total") == 1
        assert metrics.registry.get_sample_value("cgw_audit_deferred") == DEFERRED_MAX
        assert await deferred.flush() == DEFERRED_MAX
        assert (deferred.waiting, await store.ledger_size()) == (0, DEFERRED_MAX)
        first, second = await store.ledger_entries(0, 2)
        assert json.loads(first.data) == {
            "event": "rejected",
            "at": "2026-03-01T08:00:00.000000Z",  # the time of the rejection, not of the write
            "code": "UNAVAILABLE",
            "n": 0,
            "deferred": True,
        }
        assert json.loads(second.data)["n"] == 1
        assert metrics.registry.get_sample_value("cgw_audit_deferred") == 0
    finally:
        await store.close()
    assert deferred.keep(rejection(0))
    assert await deferred.flush() == 0  # the store refuses (closed): kept for the next chance
    assert deferred.waiting == 1
