"""The context of each access action, checked and converted before Cedar sees it (the authorizer's context check).

:data:`ACTIONS` says, per action, which entity type its resource is and which context keys it takes, of which
kind; :func:`cedar_context` turns a request's context into Cedar JSON or raises ``ValueError`` naming the key and
what is wrong with it, so a malformed context is a deny with a recorded reason, never an engine error.

Rule 1: the table mirrors ``policies/schema.cedarschema``; the policy tests check that the two agree.
Rule 2: every value is bounded: names to :data:`MAX_NAME_CHARS` characters, sets and counts to
        :data:`MAX_RECIPIENTS`; sets are sorted (a Cedar set has no order).
Rule 3: :func:`request_key` is the exact identity of a request (every context value with its type), the key under
        which an authorizer remembers a decision; a context of any other shape has no key.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.core.policyrequests import AccessRequest

NAMESPACE = "Cgw"
# A message addressed to more members than a federation plausibly has is abuse, not business.
MAX_RECIPIENTS = 256
# Member ids, message types, programme names and TLP labels are short identifiers.
MAX_NAME_CHARS = 128


# Context shapes per action. "str", "int", "set" (of str), "member" (a member id that Cedar sees as an entity
# reference) or "members" (a set of those). Mirrors policies/schema.cedarschema; the policy tests check the two agree.
_EXCHANGE = {
    "tlp": "str",
    "program": "str",
    "recipient_kinds": "set",
    "recipients": "set",
    "recipient_count": "int",
    "shared_programs": "set",
    "lane": "str",
    "original_sender": "str",
}


@dataclass(frozen=True, slots=True)
class ActionRule:
    resource_entity: str
    context: Mapping[str, str]
    # Keys a request may omit: key -> (kind, the value used when omitted). The schema declares them as usual.
    optional: Mapping[str, tuple[str, object]] = field(default_factory=dict)
    principal_entity: str = "Member"  # or "PeerGateway" (relay)


# The AEO lanes of the consignments of a manifest / ENS (``gateway.core.aeo.consignment_lanes``:
# "low-risk", "standard", "elevated"); empty when the message has none. Set by the submit step, omitted elsewhere.
_AEO_CONTEXT: Mapping[str, tuple[str, object]] = {"aeo_lanes": ("set", [])}


ACTIONS: Mapping[str, ActionRule] = {
    "submit": ActionRule("MessageType", _EXCHANGE, _AEO_CONTEXT),
    "forward": ActionRule("MessageType", _EXCHANGE, _AEO_CONTEXT),
    "receive": ActionRule("MessageType", {"sender": "str", "sender_kind": "str", "program": "str", "tlp": "str"}),
    "read_status": ActionRule("MessageType", {"sender": "member", "recipients": "members"}),
    "audit_read": ActionRule("Ledger", {}),
    "admin": ActionRule("Gateway", {}),
    "read_port": ActionRule("Gateway", {"port": "str", "subscriptions": "set"}),
    "decide_release": ActionRule(
        "Gateway", {"port": "str", "port_country": "str", "decision": "str", "relayed_by": "str"}
    ),
    "relay": ActionRule(
        "MessageType",
        {
            "sender": "str",
            "sender_kind": "str",
            "sender_country": "str",
            "program": "str",
            "tlp": "str",
            "recipients": "set",
            "recipient_kinds": "set",
            "recipient_count": "int",
        },
        principal_entity="PeerGateway",
    ),
}


def uid(entity_type: str, entity_id: str) -> dict[str, str]:
    return {"type": f"{NAMESPACE}::{entity_type}", "id": entity_id}


def short_name(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME_CHARS


def _name_list(value: object) -> list[str]:
    """A bounded list of short names, sorted (a Cedar set has no order)."""
    if not isinstance(value, list | tuple | frozenset | set) or len(value) > MAX_RECIPIENTS:
        raise ValueError(f"expected a list of at most {MAX_RECIPIENTS} strings")
    items = list(value)
    if not all(short_name(item) for item in items):
        raise ValueError(f"expected non-empty strings of at most {MAX_NAME_CHARS} characters")
    return sorted(items)


def _context_value(kind: str, value: object) -> object:
    """The Cedar JSON for one context value; raises ValueError naming what is wrong."""
    if kind == "str":
        if not isinstance(value, str) or len(value) > MAX_NAME_CHARS:
            raise ValueError(f"expected a string of at most {MAX_NAME_CHARS} characters")
        return value
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_RECIPIENTS:
            raise ValueError(f"expected an integer in 0..{MAX_RECIPIENTS}")
        return value
    if kind == "set":
        return _name_list(value)
    if kind == "member":
        if not short_name(value):
            raise ValueError("expected a member id")
        return {"__entity": uid("Member", str(value))}
    if kind == "members":
        return [{"__entity": uid("Member", member_id)} for member_id in _name_list(value)]
    raise ValueError(f"unknown context kind {kind}")  # pragma: no cover - the table above is fixed


def cedar_context(rule: ActionRule, context: Mapping[str, object]) -> dict[str, object]:
    kinds = {**rule.context, **{key: kind for key, (kind, _) in rule.optional.items()}}
    context = {**{key: default for key, (_, default) in rule.optional.items()}, **context}
    missing = sorted(set(kinds) - set(context))
    extra = sorted(set(context) - set(kinds))
    if missing or extra:
        raise ValueError(f"context keys: missing {missing}, unexpected {extra}")
    out: dict[str, object] = {}
    for key, kind in kinds.items():
        try:
            out[key] = _context_value(kind, context[key])
        except ValueError as exc:
            raise ValueError(f"context.{key}: {exc}") from None
    return out


def request_key(request: AccessRequest) -> Hashable | None:
    """Rule 6's key: the request with every context value and its type (``True`` is not ``1``); None when a
    value is not one of the context shapes (str, int, bool, list of str), which the engine then refuses."""
    items: list[tuple[str, str, object]] = []
    for name, value in request.context.items():
        kind = type(value)
        if isinstance(value, list) and kind is list:
            if not all(type(item) is str for item in value):
                return None
            items.append((name, "list", tuple(value)))
        elif kind is str or kind is int or kind is bool:
            items.append((name, kind.__name__, value))
        else:
            return None
    items.sort()
    return (request.principal, request.action, request.resource_type, tuple(items))
