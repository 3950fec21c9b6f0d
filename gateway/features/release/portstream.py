"""Port release synchronisation (issue 8): what the pipeline does with release notices and gate-outs, and what
ports read. The rules of the lifecycle are pure (``gateway.core.release``); this module wires them to the
stores, the ledger, the gateway's signing key and the authorisation of readers.

Rule 1: a ``release.notice.v1`` from a customs member is applied to its port's standings right after the
        message is durable, once per message (``PortStreamStore.apply`` is idempotent per message key); a
        notice without a transport document number is accepted but not sequenced (the ledger says so).
Rule 2: every applied message writes one ``port_update`` ledger event with the plan: the sequence numbers it
        appended and an outcome per container (applied, reinstated, stale, duplicate, refused, unknown), in the
        SAME atomic write as the plan (``PortStreamStore.apply``'s ``record``; issue 17): no stream entry exists
        without its ledger event, whatever crashes when.
Rule 3: a ``port.gate-out.v1`` must come from a port member subscribed to its UN/LOCODE and be addressed to the
        home administration only. A gate-out of a container that is not RELEASED changes nothing and raises an
        ``alert.gate-out.v1`` to the home administration: signed with the gateway's key, deterministic id, stored
        with its home inbox entry and its own ``gate_out_alert`` ledger leaf, in that same atomic write.
Rule 4: a DO_NOT_LOAD notice must be addressed to at least one carrier (the loading port gets it on its stream).
        Who may take a release decision for a port is Cedar's ``decide_release`` (``policies/ports.cedar``): in the
        baseline the home administration and the customs of the port's country (the first two letters of its
        UN/LOCODE) take any, and a peer gateway's own administration, relaying its notice (issue 19), may stop a
        box (hold, inspect, do not load) at a port served here; anyone else is refused (``POLICY_DENIED``).
Rule 5: a port's stream and snapshot are read by its subscribed port members and by the home administration
        (Cedar ``read_port``); subscriptions are ``[ports] subscriptions`` in the configuration, else the member id
        convention ``PORT-<LOCODE>``.
Rule 6: an accepted notice or gate-out is never lost between the durable accept and ``apply``: the recovery
        loop (``gateway.exchange.recovery``, through ``gateway.features.release.handler``) re-applies, at
        start-up, every one the ledger names (since the last start's scan, or all of it for a new port store)
        that the port store has not applied.
Rule 7: a follower (gRPC ``PortStream/Notices`` with ``follow``) waits for its port's stream to grow: woken by
        this process's applies, and re-reading every :data:`FOLLOW_REPOLL_SECONDS` for other processes'.
Rule 8: with ``[ports] push_streams``, subscribers with a push endpoint also get every appended batch of
        entries as a ``port.stream.v1`` message signed by the gateway (deterministic id per port and first seq;
        ``gateway.exchange.outbox``), delivered by the ordinary push delivery (CloudEvents webhook, gRPC, SOAP)
        with its retries and dead letters.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime

import structlog

from gateway.core import identifiers as ids
from gateway.core.audit import AuditEvent, EventKind, rfc3339
from gateway.core.errors import Forbidden, GatewayError, HeaderInvalid
from gateway.core.model import Header, Member, MemberKind, Registry
from gateway.core.policyrequests import port_read_request, release_decision_request
from gateway.core.release import (
    GATE_OUT_TYPE,
    NOTICE_TYPE,
    GateOut,
    Plan,
    PortNotice,
    Standing,
    Status,
    parse_gate_out,
    parse_notice,
    plan_gate_out,
    plan_notice,
    stream_update_payload,
)
from gateway.exchange.faults import NO_CRASH, CrashPoint
from gateway.exchange.outbox import GatewayOutbox
from gateway.exchange.state import GatewayState
from gateway.interfaces.protocols import Clock, NewMessage, PortLedger, PortStreamStore, StoredMessage

log = structlog.get_logger("gateway.features.release.portstream")

ALERT_TYPE = "alert.gate-out.v1"
ALERT_SCHEMA = "cgw.v1.GateOutAlert"
# Namespace of the deterministic alert ids (uuid5 over the gate-out's sender and message id).
ALERT_NAMESPACE = uuid.UUID("8c7d1f1e-52a4-4e0b-9a3f-3d1e5b0c7a21")
STREAM_TYPE = "port.stream.v1"
STREAM_SCHEMA = "cgw.v1.PortStreamUpdate"
# Namespace of the deterministic port.stream.v1 ids (uuid5 over the port and the first seq it carries).
STREAM_NAMESPACE = uuid.UUID("1f6b0e8a-7c35-4f51-b1d2-6a9e0c4d8e13")
# Endpoint kinds the push delivery serves (gateway/delivery/worker.py): a pull-only port reads the stream itself.
PUSH_KINDS = frozenset({"webhook", "grpc", "soap"})
PORT_MEMBER = re.compile(r"PORT-([A-Z]{2}[A-Z2-9]{3})")
# A follower re-reads its port's stream at least this often (another process may have appended to it).
FOLLOW_REPOLL_SECONDS = 1.0


class PortStreams:
    def __init__(
        self,
        streams: PortStreamStore,
        *,
        outbox: GatewayOutbox,
        state: GatewayState,
        clock: Clock,
        subscriptions: Mapping[str, Sequence[str]] | None = None,
        push_streams: bool = False,
        crash: CrashPoint = NO_CRASH,
    ) -> None:
        self.streams = streams
        self._outbox = outbox
        self._state = state
        self._clock = clock
        self._subscriptions = {k: frozenset(v) for k, v in (subscriptions or {}).items()}
        self._push_streams = push_streams
        self._crash = crash
        self._changed: dict[str, asyncio.Event] = {}  # per port: set when its stream grew (followers wake up)

    # -- subscriptions and readers ----------------------------------------------------------------------

    def subscriptions(self, member: Member) -> frozenset[str]:
        if member.kind is not MemberKind.PORT:
            return frozenset()
        if member.id in self._subscriptions:
            return self._subscriptions[member.id]
        match = PORT_MEMBER.fullmatch(member.id)
        return frozenset({match.group(1)}) if match else frozenset()

    def subscribers(self, registry: Registry, port: str) -> list[str]:
        return sorted(m.id for m in registry.members.values() if port in self.subscriptions(m))

    def authorize_read(self, member: Member, port: str) -> str:
        """Rule 5: the checked UN/LOCODE, or ``Forbidden``."""
        locode = ids.check_port_locode(port, "locode")
        request = port_read_request(member, locode, self.subscriptions(member))
        if not self._state.require_authorizer().authorize(request).allowed:
            raise Forbidden(f"{member.id} may not read the stream of port {locode}")
        return locode

    async def notices(self, member: Member, port: str, after: int, limit: int) -> tuple[str, list[PortNotice]]:
        locode = self.authorize_read(member, port)
        return locode, await self.streams.notices(locode, after, limit)

    async def follow(
        self, member: Member, port: str, after: int, limit: int, wait: float
    ) -> tuple[str, list[PortNotice]]:
        """``notices``; when there are none, wait up to ``wait`` seconds for the stream to grow (Rule 7)."""
        locode = self.authorize_read(member, port)
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            signal = self._changed.setdefault(locode, asyncio.Event())
            entries = await self.streams.notices(locode, after, limit)
            remaining = deadline - time.monotonic()
            if entries or remaining <= 0:
                return locode, entries
            # another gateway process on a shared store wakes no event here: re-read at least every second
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), timeout=min(remaining, FOLLOW_REPOLL_SECONDS))

    async def snapshot(self, member: Member, port: str) -> tuple[str, int, list[Standing]]:
        locode = self.authorize_read(member, port)
        seq, standings = await self.streams.snapshot(locode)
        return locode, seq, standings

    # -- the pipeline's hooks ---------------------------------------------------------------------------

    def check(
        self, header: Header, sender: Member, payload: bytes, registry: Registry, *, relayed_by: str = ""
    ) -> None:
        """Before the accept: Rules 3 and 4 (raises; nothing is stored). ``relayed_by``: the peer gateway that
        relayed the message ("" for one submitted here)."""
        if header.type == NOTICE_TYPE and sender.kind is MemberKind.CUSTOMS:
            notice = parse_notice(header.payload.media, payload)
            request = release_decision_request(sender, notice.port, str(notice.decision), relayed_by)
            decision = self._state.require_authorizer().authorize(request)
            if not decision.allowed:
                via = f" relayed by {relayed_by}" if relayed_by else ""
                raise Forbidden(
                    f"{sender.id}{via} may not decide {notice.decision} for port {notice.port}: denied by"
                    f" {list(decision.policy_ids) or 'default deny'} (policy set {decision.digest[:12]})"
                )
            if notice.decision is Status.DO_NOT_LOAD and not any(
                (m := registry.get(r)) is not None and m.kind is MemberKind.CARRIER for r in header.to
            ):
                raise HeaderInvalid("a DO_NOT_LOAD notice must be addressed to the carrier", field="to")
        elif header.type == GATE_OUT_TYPE:
            gate = parse_gate_out(header.payload.media, payload)
            if gate.port not in self.subscriptions(sender):
                raise Forbidden(f"{sender.id} is not subscribed to port {gate.port}")
            if header.to != (self._state.member_id,):
                raise HeaderInvalid("a gate-out is addressed to the home administration only", field="to")

    async def accepted(self, stored: StoredMessage, media: str, sender: Member) -> Plan | None:
        """After the durable accept: Rules 1-3. Errors are logged, never undo the accept (recover retries)."""
        try:
            return await self._apply(stored, media, sender)
        except GatewayError as exc:
            log.error("port stream not updated", message_id=stored.message_id, code=exc.code, detail=exc.detail)
            return None

    async def _apply(self, stored: StoredMessage, media: str, sender: Member) -> Plan | None:
        key = (stored.sender, stored.message_id)
        now = self._clock.now()
        gate: GateOut | None = None
        if stored.type == NOTICE_TYPE and sender.kind is MemberKind.CUSTOMS:
            notice = parse_notice(media, stored.payload)
            if not notice.transport_document:  # Rule 1: accepted, not sequenced (the stream is per B/L)
                log.warning("release notice without a transport document is not sequenced", message_id=key[1])
                return None
            port, transport_document, containers = notice.port, notice.transport_document, notice.containers

            def decide(current: Sequence[Standing]) -> Plan:
                return plan_notice(notice, key, current)

        elif stored.type == GATE_OUT_TYPE:
            gate = gate_out = parse_gate_out(media, stored.payload)
            port, transport_document, containers = gate.port, gate.transport_document, (gate.container,)

            def decide(current: Sequence[Standing]) -> Plan:
                return plan_gate_out(gate_out, key, current)

        else:
            return None

        def ledger(plan: Plan) -> PortLedger:
            """Rules 2 and 3, written in the same atomic step as the plan (issue 17)."""
            update = {"sender": key[0], "id": key[1], "type": stored.type} | plan.record()
            alert = self._alert(stored, gate, plan, now) if gate is not None and plan.alert else None
            return PortLedger(AuditEvent(EventKind.PORT_UPDATE, now, update), alert)

        plan = await self.streams.apply(port, key, transport_document, containers, decide, record=ledger)
        if plan is None:
            return None  # applied before (a recovery pass or another process)
        self._crash.hit("after-port-apply")
        if plan.alert:
            self._outbox.wake(self._state.member_id)  # the alert is in the home inbox
            outcome = plan.outcomes[0]
            log.warning("gate-out alert", port=plan.port, container=outcome.container, status=str(outcome.before))
        if plan.changes:
            self._changed.pop(plan.port, asyncio.Event()).set()
            await self._push_stream(plan)
        log.info("port stream", message_id=key[1], **plan.record())
        return plan

    def _alert(self, gate_out: StoredMessage, gate: GateOut, plan: Plan, now: datetime) -> NewMessage:
        """Rule 3: the signed alert to the home administration, with its ``gate_out_alert`` ledger event."""
        outcome, home = plan.outcomes[0], self._state.member_id
        body = {
            "port": gate.port,
            "containerNumber": outcome.container,
            "transportDocumentNumber": gate.transport_document,
            "status": str(outcome.before),
            "reason": plan.alert,
            "gateOutSender": gate_out.sender,
            "gateOutMessageId": gate_out.message_id,
            "gateOutTime": rfc3339(gate.at),
        }
        payload = json.dumps({k: v for k, v in body.items() if v}, separators=(",", ":")).encode()
        alert_id = str(uuid.uuid5(ALERT_NAMESPACE, f"{gate_out.sender}\x00{gate_out.message_id}"))
        fields = {
            "port": gate.port,
            "container": outcome.container,
            "status": str(outcome.before),
            "gate_out": f"{gate_out.sender}/{gate_out.message_id}",
        }
        return self._outbox.compose(
            ALERT_TYPE,
            (home,),
            payload,
            gate_out.message_id,
            message_id=alert_id,
            schema=ALERT_SCHEMA,
            kind=EventKind.GATE_OUT_ALERT,
            fields=fields,
            now=now,
        )

    async def _push_stream(self, plan: Plan) -> None:
        """Rule 8: the new entries, as a gateway-signed ``port.stream.v1``, to the subscribers with a push endpoint."""
        registry = self._state.require_trust().registry
        to = tuple(
            m
            for m in self.subscribers(registry, plan.port)
            if any(e.kind in PUSH_KINDS for e in registry.members[m].endpoints)
        )
        if not self._push_streams or not plan.changes or not to:
            return
        first = plan.changes[0].seq
        update_id = str(uuid.uuid5(STREAM_NAMESPACE, f"{plan.port}\x00{first}"))
        fields = {"port": plan.port, "seqs": [c.seq for c in plan.changes]}
        payload = stream_update_payload(plan.port, plan.changes)
        await self._outbox.emit(
            STREAM_TYPE,
            to,
            payload,
            plan.changes[0].message_id,
            message_id=update_id,
            schema=STREAM_SCHEMA,
            fields=fields,
        )

    async def applied(self, key: tuple[str, str]) -> bool:
        """Whether the port store applied the message ``key`` (sender, id) before (Rule 6)."""
        return await self.streams.applied(key)
