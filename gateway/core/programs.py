"""Trade-security programmes as data: ``policies/programs.json``, loaded beside the federation registry.

The file lists, per programme, who takes part, which message types belong to it, the TLP label its
messages carry by default, how long its messages are kept, and (for SSTL) the lanes between named ports::

    {"programs": [
      {"id": "SSTL", "name": "Smart and Secure Trade Lanes (EU-China)",
       "members": ["CN-GACC", "NL-DOUANE"],
       "message_types": ["sstl.security-data.v1", "sstl.control-result.v1"],
       "default_tlp": "AMBER", "retention_days": 1825,
       "lanes": [{"origin": "CNYTN", "destination": "NLRTM"}]}]}

Rule 1: parsing is strict (unknown or missing keys, wrong JSON types, duplicates and anything over a named
        limit raise :class:`~gateway.core.errors.Invalid` with a field path such as ``programs[0].lanes[2]``).
Rule 2: a message type belongs to at most one programme, and must be a type the gateway knows.
Rule 3: lanes are ordered pairs of UN/LOCODEs with the port function (origin != destination); a lane is
        written ``"CNYTN-NLRTM"`` wherever policies see it.
Rule 4: the registry is the one list of who belongs where: :func:`check_registry` refuses a programme file
        whose members disagree with the registry members' ``programs`` (a member listed here but not there,
        or the reverse), so that Cedar's ``principal in Cgw::Program::"SSTL"`` and this file never diverge.
Rule 5: decisions are Cedar's. This module only states facts for the policy entities and context
        (programme members, message types, lanes); it decides nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from gateway.core import identifiers as ids
from gateway.core.errors import Invalid
from gateway.core.locodes import FUNCTION_PORT
from gateway.core.model import Registry, Tlp
from gateway.core.registry import MAX_MEMBER_ID_LENGTH, MEMBER_ID, PROGRAM

# -- named limits (an operator file, still parsed as untrusted input) --------------------------------------
MAX_PROGRAMS = 64  # a federation runs a handful of programmes (SSTL, CSI, MEGAPORT, MRAs ...)
MAX_PROGRAM_MEMBERS = 2_000  # the registry bound: every member could join
MAX_PROGRAM_TYPES = 32  # a programme defines a few message types
MAX_LANES = 1_000  # SSTL runs about 120 lanes; room for growth without an unbounded list
MAX_NAME_CHARS = 200
MAX_RETENTION_DAYS = 36_500  # a century: longer is a typo

_PUBLIC = "the programme table is invalid"
_TOP_KEYS = frozenset({"programs"})
_PROGRAM_REQUIRED = frozenset({"id", "name", "members", "message_types", "default_tlp", "retention_days"})
_PROGRAM_KEYS = _PROGRAM_REQUIRED | {"lanes"}
_LANE_KEYS = frozenset({"origin", "destination"})


@dataclass(frozen=True, slots=True)
class Lane:
    origin: str  # UN/LOCODE of the port of loading
    destination: str  # UN/LOCODE of the port of discharge

    @property
    def key(self) -> str:
        """The lane as policies see it: ``"CNYTN-NLRTM"``."""
        return lane_key(self.origin, self.destination)


@dataclass(frozen=True, slots=True)
class Program:
    id: str
    name: str
    members: frozenset[str]
    message_types: frozenset[str]
    default_tlp: Tlp
    retention_days: int
    lanes: tuple[Lane, ...] = ()


@dataclass(frozen=True, slots=True)
class Programs:
    """All programmes by id; ``program_of`` maps each programme message type to its programme."""

    programs: Mapping[str, Program]

    def get(self, program_id: str) -> Program | None:
        return self.programs.get(program_id)

    def program_of(self, message_type: str) -> str | None:
        for program in self.programs.values():
            if message_type in program.message_types:
                return program.id
        return None


EMPTY = Programs(MappingProxyType({}))


def lane_key(origin: str, destination: str) -> str:
    return f"{origin}-{destination}"


def _fail(detail: str, field: str) -> Invalid:
    return Invalid(detail, field=field, public=_PUBLIC)


def _object(value: object, path: str, allowed: frozenset[str], required: Iterable[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"expected an object, got {type(value).__name__}", path or "$")
    for key in value:
        if key not in allowed:
            raise _fail(f"unknown key {key!r}", f"{path}.{key}" if path else str(key))
    for key in sorted(required):
        if key not in value:
            raise _fail("missing required key", f"{path}.{key}" if path else key)
    return value


def _string(value: object, path: str, max_chars: int) -> str:
    if not isinstance(value, str) or not value:
        raise _fail("expected a non-empty string", path)
    if len(value) > max_chars:
        raise _fail(f"longer than {max_chars} characters", path)
    return value


def _list(value: object, path: str, max_items: int) -> Sequence[Any]:
    if not isinstance(value, list):
        raise _fail(f"expected an array, got {type(value).__name__}", path)
    if len(value) > max_items:
        raise _fail(f"more than {max_items} items", path)
    return value


def _unique(items: Sequence[str], path: str) -> frozenset[str]:
    seen: set[str] = set()
    for index, item in enumerate(items):
        if item in seen:
            raise _fail(f"duplicate {item!r}", f"{path}[{index}]")
        seen.add(item)
    return frozenset(seen)


def _port(value: object, path: str) -> str:
    text = _string(value, path, 5)
    try:
        resolved = ids.resolve_locode(text, path, function=FUNCTION_PORT)
    except Invalid as exc:
        raise _fail(exc.detail, path) from None
    return resolved.code


def _parse_lane(value: object, path: str) -> Lane:
    obj = _object(value, path, _LANE_KEYS, _LANE_KEYS)
    lane = Lane(_port(obj["origin"], f"{path}.origin"), _port(obj["destination"], f"{path}.destination"))
    if lane.origin == lane.destination:
        raise _fail("origin and destination are the same port", path)
    return lane


def _parse_program(value: object, path: str, known_types: frozenset[str]) -> Program:
    obj = _object(value, path, _PROGRAM_KEYS, _PROGRAM_REQUIRED)
    program_id = _string(obj["id"], f"{path}.id", 32)
    if not PROGRAM.fullmatch(program_id):
        raise _fail("not a programme id (upper case letters, digits, _ and -)", f"{path}.id")
    members = [
        _string(m, f"{path}.members[{i}]", MAX_MEMBER_ID_LENGTH)
        for i, m in enumerate(_list(obj["members"], f"{path}.members", MAX_PROGRAM_MEMBERS))
    ]
    for index, member in enumerate(members):
        if not MEMBER_ID.fullmatch(member):
            raise _fail("not a member id", f"{path}.members[{index}]")
    types = [
        _string(t, f"{path}.message_types[{i}]", 128)
        for i, t in enumerate(_list(obj["message_types"], f"{path}.message_types", MAX_PROGRAM_TYPES))
    ]
    for index, message_type in enumerate(types):
        if message_type not in known_types:
            raise _fail(f"unknown message type {message_type!r}", f"{path}.message_types[{index}]")
    tlp = obj["default_tlp"]
    if not isinstance(tlp, str) or tlp not in {t.value for t in Tlp}:
        raise _fail("must be a TLP 2.0 label (CLEAR, GREEN, AMBER, AMBER+STRICT, RED)", f"{path}.default_tlp")
    retention = obj["retention_days"]
    if not isinstance(retention, int) or isinstance(retention, bool) or not 1 <= retention <= MAX_RETENTION_DAYS:
        raise _fail(f"must be an integer in 1..{MAX_RETENTION_DAYS}", f"{path}.retention_days")
    lanes = tuple(
        _parse_lane(item, f"{path}.lanes[{i}]")
        for i, item in enumerate(_list(obj.get("lanes", []), f"{path}.lanes", MAX_LANES))
    )
    keys = [lane.key for lane in lanes]
    _unique(keys, f"{path}.lanes")
    return Program(
        id=program_id,
        name=_string(obj["name"], f"{path}.name", MAX_NAME_CHARS),
        members=_unique(members, f"{path}.members"),
        message_types=_unique(types, f"{path}.message_types"),
        default_tlp=Tlp(tlp),
        retention_days=retention,
        lanes=lanes,
    )


def parse_programs(data: object, known_types: Iterable[str]) -> Programs:
    """The programme table from decoded JSON (Rules 1-3); ``known_types`` are the gateway's message types."""
    obj = _object(data, "", _TOP_KEYS, _TOP_KEYS)
    known = frozenset(known_types)
    programs: dict[str, Program] = {}
    owner: dict[str, str] = {}
    for index, raw in enumerate(_list(obj["programs"], "programs", MAX_PROGRAMS)):
        path = f"programs[{index}]"
        program = _parse_program(raw, path, known)
        if program.id in programs:
            raise _fail(f"duplicate programme {program.id!r}", f"{path}.id")
        for message_type in sorted(program.message_types):
            if message_type in owner:
                raise _fail(f"{message_type} already belongs to {owner[message_type]}", f"{path}.message_types")
            owner[message_type] = program.id
        programs[program.id] = program
    return Programs(MappingProxyType(programs))


def check_registry(programs: Programs, registry: Registry) -> None:
    """Rule 4: programme members exist and agree with the registry members' ``programs``."""
    for program in programs.programs.values():
        for member_id in sorted(program.members):
            member = registry.get(member_id)
            if member is None:
                raise _fail(f"{member_id} is not in registry {registry.version[:12]}", f"{program.id}.members")
            if program.id not in member.programs:
                raise _fail(f"the registry does not list {program.id} for {member_id}", f"{program.id}.members")
        for member in registry.members.values():
            if program.id in member.programs and member.id not in program.members:
                raise _fail(f"the registry lists {member.id} in {program.id}; this table does not", program.id)
