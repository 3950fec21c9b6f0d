"""Dead letters: the operator's view of push deliveries that gave up, and the redrive that retries them.

Rule 1: every operation is the Cedar ``admin`` action on ``Cgw::Gateway::"gateway"`` (deny by default); a
        denial is recorded like every other refusal (``gateway.exchange.rejections``: a ``rejected`` leaf).
Rule 2: a redrive is a ledger event (``admin``: who, which cursors), written in
        the same durable step as the state change (``Store.redrive``); the worker is woken at once.
Rule 3: listings are bounded (:data:`MAX_PAGE`) and paged by cursor.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import Forbidden, LimitExceeded
from gateway.core.model import Caller
from gateway.core.policy import Decision
from gateway.core.policyrequests import GATEWAY_ID, AccessRequest
from gateway.exchange.rejections import Rejections
from gateway.exchange.state import GatewayState
from gateway.interfaces.protocols import Clock, DeliveryState, Store

# Dead letters per listing page, and cursors per redrive request.
MAX_PAGE = 500


class DeadLetters:
    def __init__(
        self,
        *,
        store: Store,
        state: GatewayState,
        clock: Clock,
        rejections: Rejections,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._rejections = rejections
        self._state = state
        self._clock = clock
        self._wake = wake

    async def authorize(self, caller: Caller) -> Decision:
        """Rule 1: the ``admin`` action, decided by Cedar; a denial is audited and raised as ``Forbidden``."""
        decision = self._state.require_authorizer().authorize(AccessRequest(caller.member.id, "admin", GATEWAY_ID))
        if not decision.allowed:
            exc = Forbidden(f"admin denied for {caller.member.id}")
            fields = {"policy": list(decision.policy_ids), "policy_digest": decision.digest}
            await self._rejections.record(
                exc, adapter="rest", action="admin", caller=caller.member.id, peer=None, fields=fields
            )
            raise exc
        return decision

    async def list(self, caller: Caller, *, recipient: str | None, after: int, limit: int) -> list[DeliveryState]:
        await self.authorize(caller)
        if limit > MAX_PAGE:
            raise LimitExceeded(f"limit {limit} > {MAX_PAGE}", field="limit")
        return await self._store.dead_letters(recipient, after, max(1, limit))

    async def redrive(self, caller: Caller, cursors: Sequence[int]) -> int:
        await self.authorize(caller)
        if len(cursors) > MAX_PAGE:
            raise LimitExceeded(f"{len(cursors)} cursors > {MAX_PAGE}", field="cursors")
        event = AuditEvent(
            EventKind.ADMIN,
            self._clock.now(),
            {"action": "redrive", "caller": caller.member.id, "cursors": list(cursors)},
        )
        count = await self._store.redrive(cursors, event)
        self._wake()
        return count
