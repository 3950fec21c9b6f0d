"""The one place that decides how a rejection is written to the ledger.

Every refusal the gateway answers is recorded, whichever adapter received it and whichever step refused it:
the pipeline's steps report here with what they know (the caller, the message, the policy), and each adapter's
error boundary reports every error that reached it (REST problem middleware, SOAP endpoint, gRPC interceptor).

Rule 1: an authenticated caller's rejection is ONE ``rejected`` leaf: adapter, action, code, detail (never
        secrets or payload bodies: ``GatewayError`` Rule 2), field, the caller and what the step added.
Rule 2: a rejection without an authenticated caller (no or invalid credentials, or a refusal before
        authentication that the credentials presented could not authenticate) is counted per (code, adapter,
        peer network) and leaves as ONE ``rejected_summary`` leaf per interval (``core/tally.py``): anonymous
        traffic cannot grow the ledger faster than one leaf per interval. The distinguishing detail of a counted
        refusal (which check failed) goes to the log, one line each, never to the ledger.
Rule 3: refusals for capacity (RATE_LIMITED) are always counted, never one leaf each: recording must not add a
        durable write per request while the gateway is short of capacity. A leaf or summary the store cannot
        write (``Unavailable``: a full disk, a Redis at maxmemory) is kept by ``gateway/exchange/deferredaudit.py`` and
        written once the store takes writes again.
Rule 4: an error is recorded once: a boundary that reports an error a pipeline step already recorded adds
        nothing.
Rule 5: the summary is written ``interval`` seconds after the first count of an interval, and by ``close``
        (a clean stop) so nothing counted is lost.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from typing import Any, Final

import structlog

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import ErrorKind, GatewayError, Unavailable
from gateway.core.tally import MAX_SUMMARY_KEYS, RejectionTally, peer_network
from gateway.exchange.deferredaudit import DeferredAudit
from gateway.interfaces.protocols import Clock, Store

log = structlog.get_logger("gateway.audit")

ALWAYS_COUNTED: Final = frozenset({ErrorKind.OVERLOADED})  # Rule 3
# What a step may add to a ``rejected`` leaf besides the error (ids, decision; never payload content).
LEAF_FIELDS: Final = ("message_id", "sender", "type", "policy", "policy_digest", "policy_errors", "relayed_by")
MAX_DETAIL_CHARS: Final = 500
DEFAULT_INTERVAL_SECONDS: Final = 60.0


class Rejections:
    def __init__(
        self,
        *,
        store: Store,
        clock: Clock,
        interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
        max_keys: int = MAX_SUMMARY_KEYS,
        deferred: DeferredAudit | None = None,
    ) -> None:
        self._store = store
        self._deferred = deferred
        self._clock = clock
        self._interval = interval_seconds
        self._tally = RejectionTally(max_keys)
        self._recorded: weakref.WeakSet[GatewayError] = weakref.WeakSet()
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def recorded(self, exc: GatewayError) -> bool:
        return exc in self._recorded

    async def record(
        self,
        exc: GatewayError,
        *,
        adapter: str,
        action: str,
        caller: str | None,
        peer: str | None,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        """Rules 1-4 for one refusal; a ledger that cannot be written is logged, the refusal stands."""
        if exc in self._recorded:
            return
        self._recorded.add(exc)
        if caller is None or exc.kind in ALWAYS_COUNTED:
            network = peer_network(peer)
            log.info(
                "rejection counted",
                code=exc.code,
                adapter=adapter,
                action=action,
                network=network,
                caller=caller,
                detail=exc.detail[:MAX_DETAIL_CHARS],
            )
            self._count(exc.code, adapter, network)
            return
        record: dict[str, Any] = {
            "adapter": adapter,
            "action": action,
            "code": exc.code,
            "detail": exc.detail[:MAX_DETAIL_CHARS],
            "caller": caller,
        }
        if exc.field:
            record["field"] = exc.field
        for key in LEAF_FIELDS:
            if fields and key in fields:
                record[key] = fields[key]
        await self._write(AuditEvent(EventKind.REJECTED, self._clock.now(), record), code=exc.code)

    async def _write(self, event: AuditEvent, *, code: str) -> None:
        """Rule 3: write ``event``; one the store cannot take now is kept for later, then what was kept goes."""
        try:
            await self._store.record(event)
        except Unavailable as audit_exc:  # the rejection stands; it is audited once the store writes again
            deferred = self._deferred.keep(event) if self._deferred is not None else False
            log.error("rejection not audited", code=code, audit_error=audit_exc.code, deferred=deferred)
            return
        except GatewayError as audit_exc:  # the rejection stands; the operator must see the audit gap
            log.error("rejection not audited", code=code, audit_error=audit_exc.code)
            return
        if self._deferred is not None:
            await self._deferred.flush()  # the store writes again: what an outage kept goes too

    def _count(self, code: str, adapter: str, network: str) -> None:
        self._tally.add(code, adapter, network, self._clock.now())
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._due)

    def _due(self) -> None:
        task = asyncio.get_running_loop().create_task(self.flush(), name="cgw-rejected-summary")
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def flush(self) -> None:
        """Write the interval's ``rejected_summary`` leaf now (nothing when nothing was counted)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        summary = self._tally.drain(self._clock.now())
        if summary is None:
            return
        await self._write(AuditEvent(EventKind.REJECTED_SUMMARY, self._clock.now(), summary), code="summary")

    async def close(self) -> None:
        """Rule 5: the last interval's summary is written before the store closes."""
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        await self.flush()
