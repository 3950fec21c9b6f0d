"""Access requests: what the pipeline asks the :class:`gateway.core.policy.Authorizer` (who wants to do what to
which resource, with the context each action's policies read).

The request builders turn the verified facts of an exchange (caller, message type, programme, TLP, recipients, lane)
into an :class:`AccessRequest`; the context shapes per action are checked by ``gateway.core.policycontext``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from gateway.core.errors import LimitExceeded
from gateway.core.model import Member
from gateway.core.policycontext import MAX_RECIPIENTS

LEDGER_ID = "audit"  # the one ledger entity audit_read applies to
GATEWAY_ID = "gateway"  # the one gateway entity admin applies to


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """Who wants to do what to which resource. ``resource_type`` is the resource's id within the entity type
    the action applies to (a message type for submit/receive/forward/read_status, ``"audit"`` for
    audit_read, ``"gateway"`` for admin). Context values are str, int, bool or lists of str; a context
    entity reference (read_status ``sender``) is given as the member id."""

    principal: str
    action: str
    resource_type: str
    context: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PeerPrincipal:
    """A peer gateway as the Cedar principal ``Cgw::PeerGateway`` (its federation directory entry's facts)."""

    id: str
    administration: str
    country: str
    members: frozenset[str]


def shared_programs(recipients: Sequence[Member]) -> list[str]:
    """The programmes every recipient belongs to (none when there are no recipients)."""
    if not recipients:
        return []
    common = frozenset(recipients[0].programs)
    for member in recipients[1:]:
        common &= member.programs
    return sorted(common)


def _exchange_request(  # noqa: PLR0917 - one private builder behind submit_request and forward_request
    action: str,
    caller: Member,
    message_type: str,
    program: str | None,
    tlp: str,
    recipients: Sequence[Member],
    lane: str,
    original_sender: str,
) -> AccessRequest:
    if len(recipients) > MAX_RECIPIENTS:
        raise LimitExceeded(f"{len(recipients)} recipients, at most {MAX_RECIPIENTS}", field="to")
    return AccessRequest(
        principal=caller.id,
        action=action,
        resource_type=message_type,
        context={
            "tlp": str(tlp),
            "program": program or "",
            "recipient_kinds": sorted({str(m.kind) for m in recipients}),
            "recipients": sorted({m.id for m in recipients}),
            "recipient_count": len(recipients),
            "shared_programs": shared_programs(recipients),
            "lane": lane,
            "original_sender": original_sender,
        },
    )


def submit_request(
    caller: Member,
    message_type: str,
    program: str | None,
    tlp: str,
    recipients: Sequence[Member],
    *,
    lane: str = "",
    original_sender: str = "",
    aeo_lanes: Sequence[str] = (),
) -> AccessRequest:
    """The ``submit`` request for a message from ``caller`` to ``recipients`` (registry members).

    ``lane`` is ``"ORIGIN-DESTINATION"`` when the payload travels on a lane; ``original_sender`` is the sender
    of the message an ``intel.recall.v1`` withdraws; ``aeo_lanes`` the distinct AEO lanes of its consignments."""
    request = _exchange_request("submit", caller, message_type, program, tlp, recipients, lane, original_sender)
    if not aeo_lanes:
        return request  # the table fills in the empty set
    context = {**request.context, "aeo_lanes": sorted(set(aeo_lanes))}
    return AccessRequest(request.principal, request.action, request.resource_type, context)


def forward_request(
    forwarder: Member,
    message_type: str,
    program: str | None,
    tlp: str,
    recipients: Sequence[Member],
    *,
    original_sender: str,
    lane: str = "",
) -> AccessRequest:
    """The ``forward`` request: ``forwarder`` passes a message it received (type, programme and TLP of the
    original) on to new ``recipients``."""
    return _exchange_request("forward", forwarder, message_type, program, tlp, recipients, lane, original_sender)


def relay_request(
    peer: PeerPrincipal,
    sender: Member,
    message_type: str,
    program: str | None,
    tlp: str,
    *,
    recipients: Sequence[Member],
) -> AccessRequest:
    """The ``relay`` request: may the peer gateway ``peer`` relay this message of ``sender`` (a member of the
    peer, as this gateway's registry describes it) to ``recipients`` (members this gateway serves)?"""
    if len(recipients) > MAX_RECIPIENTS:
        raise LimitExceeded(f"{len(recipients)} recipients, at most {MAX_RECIPIENTS}", field="to")
    return AccessRequest(
        principal=peer.id,
        action="relay",
        resource_type=message_type,
        context={
            "sender": sender.id,
            "sender_kind": str(sender.kind),
            "sender_country": sender.country,
            "program": program or "",
            "tlp": str(tlp),
            "recipients": sorted({m.id for m in recipients}),
            "recipient_kinds": sorted({str(m.kind) for m in recipients}),
            "recipient_count": len(recipients),
        },
    )


def admin_request(caller: Member) -> AccessRequest:
    """The ``admin`` request on the gateway (policy reload)."""
    return AccessRequest(caller.id, "admin", GATEWAY_ID, {})


def receive_request(
    recipient: Member, message_type: str, sender: Member, program: str | None, tlp: str
) -> AccessRequest:
    """The ``receive`` request: may ``recipient`` take delivery of this message from ``sender``?"""
    return AccessRequest(
        principal=recipient.id,
        action="receive",
        resource_type=message_type,
        context={
            "sender": sender.id,
            "sender_kind": str(sender.kind),
            "program": program or "",
            "tlp": str(tlp),
        },
    )


def status_request(
    caller: Member, message_type: str, sender_id: str, recipient_ids: Sequence[str] = ()
) -> AccessRequest:
    """The ``read_status`` request for a message of ``message_type`` from ``sender_id`` to ``recipient_ids``."""
    if len(recipient_ids) > MAX_RECIPIENTS:
        raise LimitExceeded(f"{len(recipient_ids)} recipients, at most {MAX_RECIPIENTS}", field="to")
    return AccessRequest(
        caller.id, "read_status", message_type, {"sender": sender_id, "recipients": sorted(set(recipient_ids))}
    )


def port_read_request(caller: Member, port: str, subscriptions: Iterable[str]) -> AccessRequest:
    """The ``read_port`` request: may ``caller`` (subscribed to the UN/LOCODEs ``subscriptions``) read the
    release stream of ``port``?"""
    return AccessRequest(caller.id, "read_port", GATEWAY_ID, {"port": port, "subscriptions": sorted(subscriptions)})


def release_decision_request(sender: Member, port: str, decision: str, relayed_by: str = "") -> AccessRequest:
    """The ``decide_release`` request: may ``sender`` (a customs member) take ``decision`` for the UN/LOCODE
    ``port``? ``relayed_by``: the peer gateway that relayed the notice, "" for one submitted here."""
    context = {"port": port, "port_country": port[:2], "decision": decision, "relayed_by": relayed_by}
    return AccessRequest(sender.id, "decide_release", GATEWAY_ID, context)


def audit_request(caller: Member) -> AccessRequest:
    """The ``audit_read`` request for the ledger."""
    return AccessRequest(caller.id, "audit_read", LEDGER_ID, {})
