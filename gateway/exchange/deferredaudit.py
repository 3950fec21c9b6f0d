"""Rejections the store could not audit when they happened (a full disk, a Redis at maxmemory or down).

Rule 1: a rejection whose ledger write failed with ``Unavailable`` is kept in memory, its record marked
        ``"deferred": true`` and its time the time of the rejection, up to :data:`DEFERRED_MAX`; beyond that it
        is only counted (``cgw_audit_dropped_total``) and logged, so memory stays bounded however long the
        outage lasts. ``cgw_audit_deferred`` is how many wait now.
Rule 2: the kept rejections are written, oldest first, as soon as the store takes writes again: after the next
        rejection that was audited, at each checkpoint tick (``gateway/app/main.py``) and at shutdown. A write that
        fails again keeps it and the rest for the next chance. One flush runs at a time.
Rule 3: they are not durable before that write: a crash during the outage loses them (they stay counted in
        ``cgw_rejections_total`` and logged as ``rejection not audited``). On Redis a write whose reply was
        lost may still have happened, so a deferred leaf can repeat one already written; the mark says so.
"""

from __future__ import annotations

import asyncio
from collections import deque

import structlog

from gateway.core.audit import AuditEvent
from gateway.core.errors import GatewayError
from gateway.exchange.metrics import Metrics
from gateway.interfaces.protocols import Store

log = structlog.get_logger("gateway.exchange.deferredaudit")

# Rejections kept while the store refuses writes: ~1 KB each, so at most ~10 MB however long the outage.
DEFERRED_MAX = 10_000


class DeferredAudit:
    def __init__(self, store: Store, metrics: Metrics | None = None) -> None:
        self._store = store
        self._metrics = metrics
        self._waiting: deque[AuditEvent] = deque()
        self._flushing = asyncio.Lock()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def keep(self, event: AuditEvent) -> bool:
        """Rule 1: keep ``event`` for a later write; False when the queue is full (it is then only counted)."""
        if len(self._waiting) >= DEFERRED_MAX:
            if self._metrics is not None:
                self._metrics.audit_dropped.inc()
            return False
        self._waiting.append(AuditEvent(event.kind, event.at, {**event.fields, "deferred": True}))
        self._observe()
        return True

    async def flush(self) -> int:
        """Rule 2: write what waits, oldest first, until done or the store refuses again; how many were written."""
        if not self._waiting or self._flushing.locked():
            return 0
        written = 0
        async with self._flushing:
            while self._waiting:
                try:
                    await self._store.record(self._waiting[0])
                except GatewayError as exc:
                    log.warning("deferred rejections still not audited", waiting=len(self._waiting), code=exc.code)
                    break
                self._waiting.popleft()
                written += 1
        self._observe()
        if written:
            log.info("deferred rejections audited", written=written, waiting=len(self._waiting))
        return written

    def _observe(self) -> None:
        if self._metrics is not None:
            self._metrics.audit_deferred.set(len(self._waiting))
