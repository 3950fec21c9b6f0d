"""The Cedar entity graph: one ``Cgw::Member`` per registry member (``in`` its programmes), one
``Cgw::MessageType`` per known type, the ledger and the gateway, and a ``Cgw::PeerGateway`` when a relay names one.

Built once per registry version by :class:`gateway.core.policy.Authorizer` (see ``policies/schema.cedarschema``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import cedarpy

from gateway.core import programs as program_rules
from gateway.core.errors import Invalid, Unavailable
from gateway.core.model import Registry
from gateway.core.policycontext import MAX_NAME_CHARS, MAX_RECIPIENTS, short_name, uid
from gateway.core.policyrequests import GATEWAY_ID, LEDGER_ID, PeerPrincipal
from gateway.core.programs import Programs

MESSAGE_TYPE = re.compile(r"[a-z][a-z0-9-]*(\.[a-z0-9-]+)*\.v[0-9]+")


def message_family(message_type: str) -> str:
    """``manifest.cargo.v1`` -> ``manifest``."""
    return message_type.split(".", 1)[0]


def peer_record(peer: PeerPrincipal) -> dict[str, Any]:
    """The Cedar JSON entity of a peer gateway."""
    if not short_name(peer.id) or len(peer.members) > MAX_RECIPIENTS * 16:
        raise ValueError("invalid peer gateway")
    return {
        "uid": uid("PeerGateway", peer.id),
        "attrs": {
            "gateway_id": peer.id,
            "administration": peer.administration,
            "country": peer.country,
            "members": sorted(peer.members),
        },
        "parents": [],
    }


def entity_records(
    registry: Registry, message_types: Iterable[str], programs: Programs = program_rules.EMPTY
) -> list[dict[str, Any]]:
    """The Cedar JSON entity list for a registry, the known message types and the programme table (pure data)."""
    records: list[dict[str, Any]] = []
    programs_seen: set[str] = set()
    for key, member in sorted(registry.members.items()):
        if key != member.id or not short_name(member.id):
            raise Unavailable(f"registry entry {key!r} has an invalid member id", field=f"members.{key}")
        member_programs = sorted(member.programs)
        if not all(short_name(p) for p in member_programs):
            raise Unavailable("invalid programme name", field=f"members.{key}.programs")
        programs_seen.update(member_programs)
        records.append(
            {
                "uid": uid("Member", member.id),
                "attrs": {
                    "member_id": member.id,
                    "kind": str(member.kind),
                    "country": member.country,
                    "programs": member_programs,
                    "suspended": member.suspended,
                    "home": member.home,
                },
                "parents": [uid("Program", p) for p in member_programs],
            }
        )
    programs_seen.update(programs.programs)
    for program_id in sorted(programs_seen):
        defined = programs.get(program_id)
        records.append(
            {
                "uid": uid("Program", program_id),
                "attrs": {
                    "lanes": sorted(lane.key for lane in defined.lanes) if defined else [],
                    "default_tlp": str(defined.default_tlp) if defined else "",
                },
                "parents": [],
            }
        )
    for index, message_type in enumerate(sorted(set(message_types))):
        if len(message_type) > MAX_NAME_CHARS or not MESSAGE_TYPE.fullmatch(message_type):
            raise Unavailable(
                f"invalid message type {message_type[:MAX_NAME_CHARS]!r}", field=f"message_types[{index}]"
            )
        owner = programs.program_of(message_type)
        records.append(
            {
                "uid": uid("MessageType", message_type),
                "attrs": {"family": message_family(message_type), "program": owner or ""},
                "parents": [uid("Program", owner)] if owner else [],
            }
        )
    records.append({"uid": uid("Ledger", LEDGER_ID), "attrs": {}, "parents": []})
    records.append({"uid": uid("Gateway", GATEWAY_ID), "attrs": {}, "parents": []})
    return records


def build_entities(
    registry: Registry,
    message_types: Iterable[str],
    schema: cedarpy.Schema | None = None,
    programs: Programs = program_rules.EMPTY,
) -> cedarpy.Entities:
    """Parse the entity graph once (per registry version) into a reusable cedarpy handle.

    With ``schema`` the entities are checked against it. Raises ``Unavailable`` when they do not fit or when
    the programme table disagrees with the registry."""
    try:
        program_rules.check_registry(programs, registry)
    except Invalid as exc:
        raise Unavailable(f"programme table: {exc.detail}", field=exc.field) from None
    records = entity_records(registry, message_types, programs)
    try:
        return cedarpy.Entities.from_json_str(json.dumps(records), schema)
    except ValueError as exc:
        raise Unavailable(f"registry {registry.version} does not fit the policy schema: {exc}") from None
