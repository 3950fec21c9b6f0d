"""Messages the gateway itself sends as the home administration (CUSRES answers, gate-out alerts, port stream
updates): one writer for all of them.

Rule 1: a gateway message is signed with the gateway's own key (``GatewayState.identity``), sent by the home
        administration, and stored, ledgered and receipted like any accepted message; its ledger event names
        ``adapter: gateway`` and carries the caller's ``fields``.
Rule 2: its id is chosen by the caller and deterministic (the same cause, the same id), so it is stored once:
        emitting it again (a replay after a crash, a second process) stores nothing and returns None.
Rule 3: once stored, each recipient's long-polls in this process are woken (the ``wake`` given).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.envelope import payload_ref, sign_envelope
from gateway.core.errors import DuplicateConflict
from gateway.core.model import Header, Tlp
from gateway.core.receipt import make_receipt
from gateway.exchange.evidence import evidence_digest
from gateway.exchange.state import GatewayState
from gateway.interfaces.protocols import Clock, NewMessage, Store, StoredMessage

MEDIA_JSON = "application/json"


class GatewayOutbox:
    def __init__(self, *, store: Store, state: GatewayState, clock: Clock, wake: Callable[[str], None]) -> None:
        self._store = store
        self._state = state
        self._clock = clock
        self.wake = wake

    def compose(
        self,
        message_type: str,
        to: tuple[str, ...],
        payload: bytes,
        correlation: str,
        *,
        message_id: str,
        schema: str,
        media: str = MEDIA_JSON,
        tlp: Tlp = Tlp.AMBER,
        kind: EventKind = EventKind.ACCEPTED,
        fields: Mapping[str, object] | None = None,
        now: datetime | None = None,
    ) -> NewMessage:
        """Rule 1: the signed message, its ledger event and its receipt factory (not stored: a caller that must
        write it inside its own atomic step, a gate-out alert, takes this)."""
        now = self._clock.now() if now is None else now
        home, identity = self._state.member_id, self._state.identity
        header = Header(
            id=message_id,
            type=message_type,
            sender=home,
            to=to,
            tlp=tlp,
            created=now,
            expires=now + self._state.limits.max_message_lifetime,
            payload=payload_ref(media, schema, payload),
            correlation=correlation,
        )
        jws = sign_envelope(header, identity.private_key, identity.chain)
        message = StoredMessage(home, message_id, message_type, to, jws, payload, evidence_digest(jws, payload), now)
        record = {"adapter": "gateway", "message_id": message_id, "sender": home, "type": message_type, "to": list(to)}
        event = AuditEvent(kind, now, record | dict(fields or {}) | {"evidence_sha256": message.digest})
        signer = self._state.receipt_signer

        def receipt(leaf_index: int, received_at: datetime) -> bytes:
            return make_receipt(
                message_id=message_id,
                sender=home,
                recipients=to,
                message_type=message_type,
                evidence_sha256=message.digest,
                leaf_index=leaf_index,
                received_at=received_at,
                gateway=home,
                policy_digest="",
                signer=signer,
            )

        return NewMessage(message, event, receipt)

    async def emit(
        self,
        message_type: str,
        to: tuple[str, ...],
        payload: bytes,
        correlation: str,
        *,
        message_id: str,
        schema: str,
        media: str = MEDIA_JSON,
        tlp: Tlp = Tlp.AMBER,
        kind: EventKind = EventKind.ACCEPTED,
        fields: Mapping[str, object] | None = None,
        now: datetime | None = None,
    ) -> StoredMessage | None:
        """Compose, store and ledger a gateway message, and wake its recipients; None when it was stored before
        (Rule 2). Any other store refusal is raised to the caller."""
        made = self.compose(
            message_type,
            to,
            payload,
            correlation,
            message_id=message_id,
            schema=schema,
            media=media,
            tlp=tlp,
            kind=kind,
            fields=fields,
            now=now,
        )
        try:
            stored = await self._store.accept(made.message, made.event, made.make_receipt)
        except DuplicateConflict:
            return None  # Rule 2: stored before
        for member_id in to:  # Rule 3
            self.wake(member_id)
        return stored
