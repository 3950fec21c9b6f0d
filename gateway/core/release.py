"""Release lifecycle of transport documents (B/L) and containers at a port, and the port's ordered stream.

A *standing* is the decision in force for one (port, B/L, container); ``container == ""`` is the B/L as a
whole. Customs changes standings with ``release.notice.v1``; the port reports ``port.gate-out.v1``. Every
change is appended to the port's stream with the next dense sequence number (the store assigns it).

Rule 1: the lifecycle is the table :data:`TRANSITIONS` (status in force x decision -> effect), never if-chains.
        A pair that is not in the table is refused (recorded, not applied).
Rule 2: versions are monotonic per standing: a notice whose version is lower than the one in force (or equal,
        with another decision) is STALE, the same version and decision again is a DUPLICATE; both are
        recorded and ignored, never applied.
Rule 3: a notice naming containers changes only those (partial release: some containers of a B/L released,
        others held); a notice naming no container changes the B/L and every open container known under it.
Rule 4: CANCELLED withdraws the decision in force; a later version reinstates (REINSTATED). CANCELLED and
        GATED_OUT standings are closed: a snapshot lists only open ones, and a port view drops them.
Rule 5: a cancellation of a container the port never had a decision for is UNKNOWN (reported, not ignored).
Rule 6: a gate-out is allowed only for a container RELEASED at that port; anything else raises an alert.
Rule 7: a consumer applies stream entries in sequence order; a missing number is a gap (:class:`StreamGap`).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from gateway.core import identifiers as ids
from gateway.core.errors import Invalid
from gateway.core.payloads import spelled_as_sent
from gateway.wire.cgw.v1 import port_pb2, release_pb2

NOTICE_TYPE = "release.notice.v1"
GATE_OUT_TYPE = "port.gate-out.v1"
BL_WIDE = ""  # the container of a standing that is the B/L as a whole
# A B/L-wide notice touches every open container known under the B/L; a B/L gets at most this many (the
# proto's own bound on container_numbers), so one notice never writes an unbounded number of entries. A
# container beyond it is REFUSED (recorded), never silently dropped.
MAX_CONTAINERS_PER_BL = 999


class Status(enum.StrEnum):
    PENDING = "PENDING"  # no decision yet (never stored: the absence of a standing)
    HOLD = "HOLD"
    INSPECT = "INSPECT"
    RELEASED = "RELEASED"
    DO_NOT_LOAD = "DO_NOT_LOAD"
    CANCELLED = "CANCELLED"
    GATED_OUT = "GATED_OUT"


CLOSED = frozenset({Status.CANCELLED, Status.GATED_OUT})
DECISIONS = frozenset({Status.HOLD, Status.INSPECT, Status.RELEASED, Status.DO_NOT_LOAD, Status.CANCELLED})


class Effect(enum.StrEnum):
    APPLIED = "applied"
    REINSTATED = "reinstated"  # a decision after a cancellation
    STALE = "stale"  # an older version (or a different decision under the same version): ignored
    DUPLICATE = "duplicate"  # the same version and decision again: ignored
    REFUSED = "refused"  # the table does not allow it (e.g. any decision after gate-out)
    UNKNOWN = "unknown"  # cancellation of a container the port has no decision for

    @property
    def changes(self) -> bool:
        return self in (Effect.APPLIED, Effect.REINSTATED)


_OPEN = (Status.PENDING, Status.HOLD, Status.INSPECT, Status.RELEASED, Status.DO_NOT_LOAD)
_DECIDE = (Status.HOLD, Status.INSPECT, Status.RELEASED, Status.DO_NOT_LOAD)


def _table() -> Mapping[tuple[Status, Status], Effect]:
    rows: dict[tuple[Status, Status], Effect] = {}
    for before in _OPEN:
        for decision in _DECIDE:
            rows[(before, decision)] = Effect.APPLIED
    for before in _OPEN[1:]:
        rows[(before, Status.CANCELLED)] = Effect.APPLIED
    rows[(Status.PENDING, Status.CANCELLED)] = Effect.UNKNOWN
    for decision in _DECIDE:
        rows[(Status.CANCELLED, decision)] = Effect.REINSTATED
    rows[(Status.RELEASED, Status.GATED_OUT)] = Effect.APPLIED  # Rule 6: only a released container leaves
    # (CANCELLED, CANCELLED) and (GATED_OUT, *) are absent: refused. The container left the terminal.
    return MappingProxyType(rows)


TRANSITIONS: Mapping[tuple[Status, Status], Effect] = _table()


@dataclass(frozen=True, slots=True)
class ReleaseNotice:
    transport_document: str
    containers: tuple[str, ...]
    decision: Status
    version: int
    port: str
    reason: str
    effective: datetime


@dataclass(frozen=True, slots=True)
class Standing:
    """The decision in force for one (port, B/L, container) and the stream entry that set it."""

    port: str
    transport_document: str
    container: str  # BL_WIDE for the B/L as a whole
    status: Status
    version: int
    seq: int  # the port stream entry that set it
    effective: datetime
    sender: str
    message_id: str

    @property
    def open(self) -> bool:
        return self.status not in CLOSED


@dataclass(frozen=True, slots=True)
class PortNotice:
    """One entry of a port's stream: ``container`` of ``transport_document`` now stands at ``status``."""

    seq: int  # dense per port from 1; 0 until the store assigns it
    port: str
    transport_document: str
    container: str
    status: Status
    previous: Status
    version: int
    effective: datetime
    reason: str
    sender: str
    message_id: str

    def standing(self) -> Standing:
        return Standing(
            self.port,
            self.transport_document,
            self.container,
            self.status,
            self.version,
            self.seq,
            self.effective,
            self.sender,
            self.message_id,
        )


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    container: str
    effect: Effect
    before: Status
    after: Status  # what is in force afterwards


@dataclass(frozen=True, slots=True)
class Plan:
    """What one message does to a port: the entries to append (seq 0) and an outcome per target."""

    port: str
    changes: tuple[PortNotice, ...]
    outcomes: tuple[ItemOutcome, ...]
    alert: str = ""  # gate-out only: why the gate-out is not allowed ("" = allowed)

    def numbered(self, first_seq: int) -> Plan:
        return replace(self, changes=tuple(replace(c, seq=first_seq + i) for i, c in enumerate(self.changes)))

    def record(self) -> dict[str, Any]:
        """The ledger's account of the plan (bounded by the notice's own bound on containers)."""
        return {
            "port": self.port,
            "seqs": [c.seq for c in self.changes],
            "outcomes": [
                {"container": o.container, "effect": str(o.effect), "after": str(o.after)} for o in self.outcomes
            ],
        } | ({"alert": self.alert} if self.alert else {})


# -- parsing ------------------------------------------------------------------------------------------------


@spelled_as_sent(release_pb2.ReleaseNotice)
def parse_notice(media: str, data: bytes) -> ReleaseNotice:
    """The notice of a ``release.notice.v1`` payload that ``validate_payload`` already accepted."""
    message = release_pb2.ReleaseNotice()
    _parse(media, data, message, NOTICE_TYPE)
    decision = Status(release_pb2.ReleaseNotice.Decision.Name(message.decision))
    if decision not in DECISIONS:
        raise Invalid("not a release decision", field="payload.decision")
    bl = message.transport_document_number
    transport_document = ids.check_transport_document(bl, "payload.transport_document_number") if bl else ""
    containers = tuple(
        ids.check_container_number(c, f"payload.container_numbers[{i}]")
        for i, c in enumerate(message.container_numbers)
    )
    if len(set(containers)) != len(containers):
        raise Invalid("a container number is repeated", field="payload.container_numbers")
    if message.version < 1:
        raise Invalid("version starts at 1", field="payload.version")
    return ReleaseNotice(
        transport_document,
        containers,
        decision,
        int(message.version),
        ids.check_port_locode(message.port, "payload.port"),
        message.reason,
        message.effective_time.ToDatetime(tzinfo=UTC),
    )


def _parse(media: str, data: bytes, message: Any, type_: str) -> None:
    try:
        if media.split(";", 1)[0].strip().lower() == "application/json":
            json_format.Parse(data, message, ignore_unknown_fields=False)
        else:
            message.ParseFromString(data)
    except (json_format.ParseError, DecodeError, ValueError) as exc:  # validate_payload accepted it: a bug
        raise Invalid(f"{type_} payload does not parse: {str(exc)[:120]}", field="payload") from None


# -- planning -----------------------------------------------------------------------------------------------


def plan_notice(notice: ReleaseNotice, key: tuple[str, str], current: Iterable[Standing]) -> Plan:
    """Rules 1-5: what ``notice`` (message ``key``) does to the B/L's standings ``current`` at its port."""
    by_container = {s.container: s for s in current if s.transport_document == notice.transport_document}
    if notice.containers:
        targets: tuple[str, ...] = notice.containers
    else:  # Rule 3: the B/L and every open container known under it
        targets = (BL_WIDE, *sorted(c for c, s in by_container.items() if c != BL_WIDE and s.open))
    changes: list[PortNotice] = []
    outcomes: list[ItemOutcome] = []
    known = sum(1 for c in by_container if c != BL_WIDE)
    for container in targets:
        # a container without its own decision stands at the B/L's (a late older notice never overrides it)
        standing = by_container.get(container) or by_container.get(BL_WIDE)
        before = standing.status if standing else Status.PENDING
        effect = _effect(standing, notice)
        if effect.changes and container != BL_WIDE and container not in by_container:
            known += 1
            effect = effect if known <= MAX_CONTAINERS_PER_BL else Effect.REFUSED
        after = notice.decision if effect.changes else before
        outcomes.append(ItemOutcome(container, effect, before, after))
        if effect.changes:
            changes.append(
                PortNotice(
                    0,
                    notice.port,
                    notice.transport_document,
                    container,
                    notice.decision,
                    before,
                    notice.version,
                    notice.effective,
                    notice.reason,
                    key[0],
                    key[1],
                )
            )
    return Plan(notice.port, tuple(changes), tuple(outcomes))


def _effect(standing: Standing | None, notice: ReleaseNotice) -> Effect:
    if standing is not None:
        if notice.version < standing.version:
            return Effect.STALE
        if notice.version == standing.version:
            return Effect.DUPLICATE if notice.decision is standing.status else Effect.STALE
    before = standing.status if standing else Status.PENDING
    return TRANSITIONS.get((before, notice.decision), Effect.REFUSED)


@dataclass(frozen=True, slots=True)
class GateOut:
    port: str
    container: str
    transport_document: str  # "" when the port did not say
    at: datetime


@spelled_as_sent(port_pb2.GateOut)
def parse_gate_out(media: str, data: bytes) -> GateOut:
    """The gate-out of a ``port.gate-out.v1`` payload that ``validate_payload`` already accepted."""
    message = port_pb2.GateOut()
    _parse(media, data, message, GATE_OUT_TYPE)
    bl = message.transport_document_number
    return GateOut(
        ids.check_port_locode(message.port, "payload.port"),
        ids.check_container_number(message.container_number, "payload.container_number"),
        ids.check_transport_document(bl, "payload.transport_document_number") if bl else "",
        message.gate_out_time.ToDatetime(tzinfo=UTC),
    )


def plan_gate_out(gate_out: GateOut, key: tuple[str, str], current: Iterable[Standing]) -> Plan:
    """Rule 6: a RELEASED container leaves (GATED_OUT entry); anything else is an alert and changes nothing."""
    found = [
        s
        for s in current
        if s.container == gate_out.container
        and s.status is not Status.GATED_OUT
        and (not gate_out.transport_document or s.transport_document == gate_out.transport_document)
    ]
    if not found and gate_out.transport_document:  # the container stands at its B/L's decision
        found = [s for s in current if s.transport_document == gate_out.transport_document and s.container == BL_WIDE]
    if not found:
        outcome = ItemOutcome(gate_out.container, Effect.UNKNOWN, Status.PENDING, Status.PENDING)
        return Plan(gate_out.port, (), (outcome,), alert="no release decision for this container at this port")
    standing = max(found, key=lambda s: s.seq)
    effect = TRANSITIONS.get((standing.status, Status.GATED_OUT), Effect.REFUSED)
    if not effect.changes:
        outcome = ItemOutcome(gate_out.container, effect, standing.status, standing.status)
        return Plan(gate_out.port, (), (outcome,), alert=f"container is {standing.status}, not RELEASED")
    change = PortNotice(
        0,
        gate_out.port,
        standing.transport_document,
        gate_out.container,
        Status.GATED_OUT,
        standing.status,
        standing.version,
        gate_out.at,
        "gate-out",
        key[0],
        key[1],
    )
    outcome = ItemOutcome(gate_out.container, Effect.APPLIED, standing.status, Status.GATED_OUT)
    return Plan(gate_out.port, (change,), (outcome,))


# -- the consumer's side ------------------------------------------------------------------------------------


class StreamGap(Invalid):
    """A port view was offered an entry that does not follow the last one it applied."""


@dataclass(frozen=True, slots=True)
class PortView:
    """A port's copy of the decisions in force (what a port system keeps): a snapshot, then the stream."""

    port: str
    seq: int = 0
    standings: Mapping[tuple[str, str], Standing] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_snapshot(cls, port: str, seq: int, standings: Iterable[Standing]) -> PortView:
        return cls(port, seq, MappingProxyType({(s.transport_document, s.container): s for s in standings}))

    def apply(self, entry: PortNotice) -> PortView:
        """Rule 7: the next entry only (an entry at or before ``seq`` was applied already: ignored)."""
        if entry.seq <= self.seq:
            return self
        if entry.seq != self.seq + 1:
            raise StreamGap(f"port {self.port}: expected seq {self.seq + 1}, got {entry.seq}", field="seq")
        standings = dict(self.standings)
        key = (entry.transport_document, entry.container)
        if entry.status in CLOSED:
            standings.pop(key, None)
        else:
            standings[key] = entry.standing()
        return PortView(self.port, entry.seq, MappingProxyType(standings))

    def apply_all(self, entries: Iterable[PortNotice]) -> PortView:
        view = self
        for entry in entries:
            view = view.apply(entry)
        return view

    def decisions(self) -> dict[tuple[str, str], tuple[Status, int]]:
        """What is in force, comparable between two views: (B/L, container) -> (status, version)."""
        return {k: (s.status, s.version) for k, s in self.standings.items()}


def snapshot_of(port: str, seq: int, standings: Iterable[Standing]) -> PortView:
    """Rule 4: the open standings only, as the view a port holds after applying entries 1..seq."""
    return PortView.from_snapshot(port, seq, (s for s in standings if s.open))


# -- records (stores and the REST API) ----------------------------------------------------------------------


def notice_record(entry: PortNotice) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "port": entry.port,
        "transportDocumentNumber": entry.transport_document,
        "containerNumber": entry.container,
        "status": str(entry.status),
        "previous": str(entry.previous),
        "version": entry.version,
        "effectiveTime": _rfc3339(entry.effective),
        "reason": entry.reason,
        "from": entry.sender,
        "messageId": entry.message_id,
    }


def stream_entry_message(entry: PortNotice) -> port_pb2.PortStreamEntry:
    """One stream entry as ``cgw.v1.PortStreamEntry`` (the push payload and the gRPC stream share it)."""
    out = port_pb2.PortStreamEntry(
        seq=entry.seq,
        port=entry.port,
        transport_document_number=entry.transport_document,
        container_number=entry.container,
        status=str(entry.status),
        previous=str(entry.previous),
        version=entry.version,
        reason=entry.reason,
        sender=entry.sender,
        message_id=entry.message_id,
    )
    out.effective_time.FromDatetime(entry.effective)
    return out


def stream_update_payload(port: str, entries: Iterable[PortNotice]) -> bytes:
    """The JSON payload of a ``port.stream.v1`` (proto3 JSON of ``cgw.v1.PortStreamUpdate``)."""
    update = port_pb2.PortStreamUpdate(port=port)
    for entry in entries:
        update.entries.add().CopyFrom(stream_entry_message(entry))
    return json.dumps(json_format.MessageToDict(update), separators=(",", ":"), sort_keys=True).encode()


def parse_stream_update(media: str, data: bytes) -> list[PortNotice]:
    """The entries of a ``port.stream.v1`` payload (what a pushed port system reads)."""
    update = port_pb2.PortStreamUpdate()
    _parse(media, data, update, "port.stream.v1")
    return [
        PortNotice(
            int(e.seq),
            e.port,
            e.transport_document_number,
            e.container_number,
            Status(e.status),
            Status(e.previous),
            int(e.version),
            e.effective_time.ToDatetime(tzinfo=UTC),
            e.reason,
            e.sender,
            e.message_id,
        )
        for e in update.entries
    ]


def standing_record(standing: Standing) -> dict[str, Any]:
    return {
        "transportDocumentNumber": standing.transport_document,
        "containerNumber": standing.container,
        "status": str(standing.status),
        "version": standing.version,
        "seq": standing.seq,
        "effectiveTime": _rfc3339(standing.effective),
        "from": standing.sender,
        "messageId": standing.message_id,
    }


def parse_notice_record(raw: Mapping[str, Any], field: str = "notice") -> PortNotice:
    try:
        return PortNotice(
            int(raw["seq"]),
            str(raw["port"]),
            str(raw["transportDocumentNumber"]),
            str(raw["containerNumber"]),
            Status(raw["status"]),
            Status(raw["previous"]),
            int(raw["version"]),
            _parse_time(str(raw["effectiveTime"])),
            str(raw["reason"]),
            str(raw["from"]),
            str(raw["messageId"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise Invalid(f"not a port notice: {type(exc).__name__}: {exc}", field=field) from None


def parse_standing_record(port: str, raw: Mapping[str, Any], field: str = "standing") -> Standing:
    try:
        return Standing(
            port,
            str(raw["transportDocumentNumber"]),
            str(raw["containerNumber"]),
            Status(raw["status"]),
            int(raw["version"]),
            int(raw["seq"]),
            _parse_time(str(raw["effectiveTime"])),
            str(raw["from"]),
            str(raw["messageId"]),
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise Invalid(f"not a standing: {type(exc).__name__}: {exc}", field=field) from None


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_time(text: str) -> datetime:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is None:
        raise ValueError("time without a zone")
    return at.astimezone(UTC)
