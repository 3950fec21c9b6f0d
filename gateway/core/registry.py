"""The federation registry: who is a member, which certificates each member may use.

The registry is a JSON document (``registry.json``) that the federation operator distributes::

    {"version": "<hex SHA-256 of the canonical members list>",
     "members": [{"id": "NL-DOUANE", "name": "...", "kind": "customs", "country": "NL",
                  "programs": ["SSTL"], "home": false, "suspended": false,
                  "certificates": ["<hex SHA-256 of a certificate's DER>", ...],
                  "endpoints": [{"kind": "pull", "url": ""}]}, ...]}

Rule 1: parsing is strict. Unknown keys, missing required keys, wrong JSON types (``true`` is not a number,
        ``1`` is not a boolean), unknown member kinds, duplicate ids / fingerprints / programs and anything
        over a named limit raise :class:`~gateway.core.errors.Invalid` with a field path such as
        ``members[2].kind``.
Rule 2: a certificate fingerprint belongs to exactly one member; at most one member is ``home``.
Rule 3: ``version`` is the lowercase hex SHA-256 of the RFC 8785 (JCS) canonical form of the members list as
        :func:`registry_to_json` writes it (members sorted by id, sets sorted). The parser recomputes it, so a
        registry edited without re-computing its version is refused, and two registries with the same
        content always have the same version, whatever the order of the file.
Rule 4: the parsed value is immutable (frozen dataclasses, frozensets, a read-only mapping).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import rfc8785

from gateway.core.errors import Invalid
from gateway.core.model import Endpoint, Member, MemberKind, Registry
from gateway.core.strictjson import strict_object, strict_string

# -- named limits (the registry is operator-supplied, but it is still parsed as untrusted input) -----------

MAX_MEMBERS = 2_000  # ~180 customs administrations plus their carriers and ports, with margin
MAX_CERTS_PER_MEMBER = 32  # signing + TLS client, plus overlap during rollovers at several sites
MAX_PROGRAMS_PER_MEMBER = 16  # SSTL, CSI, MEGAPORT, MRAs ...: a handful in practice
MAX_ENDPOINTS_PER_MEMBER = 8  # pull + one push channel per transport, with room for a standby
MAX_NAME_LENGTH = 200  # official names of administrations fit comfortably
MAX_URL_LENGTH = 2_048  # the de facto URL length bound of HTTP stacks

MEMBER_ID = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")  # CN-GACC, CARRIER-COSCO; upper case, dash separated
MAX_MEMBER_ID_LENGTH = 64  # ids appear in SAN URIs, headers, ledger leaves and Cedar entity ids
COUNTRY = re.compile(r"[A-Z]{2}")  # ISO 3166-1 alpha-2
PROGRAM = re.compile(r"[A-Z][A-Z0-9_-]{0,31}")  # SSTL, CSI, MEGAPORT, MRA-CN-EU ...
FINGERPRINT = re.compile(r"[0-9a-f]{64}")  # lowercase hex SHA-256
ENDPOINT_KINDS = frozenset({"pull", "webhook", "grpc", "soap"})

_TOP_KEYS = frozenset({"version", "members"})
_MEMBER_REQUIRED = frozenset({"id", "name", "kind", "country"})
_MEMBER_KEYS = _MEMBER_REQUIRED | {"programs", "home", "suspended", "certificates", "endpoints"}
_ENDPOINT_KEYS = frozenset({"kind", "url"})

_PUBLIC = "the federation registry is invalid"


def _fail(detail: str, field: str) -> Invalid:
    return Invalid(detail, field=field, public=_PUBLIC)


def _object(value: object, path: str, allowed: frozenset[str], required: Iterable[str]) -> Mapping[str, Any]:
    return strict_object(value, path, allowed, required, public=_PUBLIC)


def _string(value: object, path: str, *, max_length: int, pattern: re.Pattern[str] | None = None) -> str:
    return strict_string(value, path, max_length=max_length, pattern=pattern, public=_PUBLIC)


def _boolean(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(f"expected a boolean, got {type(value).__name__}", path)
    return value


def _array(value: object, path: str, *, max_items: int) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"expected an array, got {type(value).__name__}", path)
    if len(value) > max_items:
        raise _fail(f"more than {max_items} items", path)
    return value


def _string_set(value: object, path: str, *, max_items: int, pattern: re.Pattern[str]) -> frozenset[str]:
    items = _array(value, path, max_items=max_items)
    seen: set[str] = set()
    for i, item in enumerate(items):
        text = _string(item, f"{path}[{i}]", max_length=128, pattern=pattern)
        if text in seen:
            raise _fail(f"duplicate {text!r}", f"{path}[{i}]")
        seen.add(text)
    return frozenset(seen)


def _parse_endpoint(value: object, path: str) -> Endpoint:
    obj = _object(value, path, _ENDPOINT_KEYS, ("kind",))
    kind = _string(obj["kind"], f"{path}.kind", max_length=16)
    if kind not in ENDPOINT_KINDS:
        raise _fail(f"unknown endpoint kind {kind!r} (one of {sorted(ENDPOINT_KINDS)})", f"{path}.kind")
    url = _string(obj.get("url", ""), f"{path}.url", max_length=MAX_URL_LENGTH)
    if kind == "pull" and url:
        raise _fail("a pull endpoint has no url", f"{path}.url")
    if kind != "pull" and (not url or any(c.isspace() for c in url)):
        raise _fail(f"a {kind} endpoint needs a url without whitespace", f"{path}.url")
    return Endpoint(kind=kind, url=url)


def _parse_member(value: object, path: str) -> Member:
    obj = _object(value, path, _MEMBER_KEYS, sorted(_MEMBER_REQUIRED))
    member_id = _string(obj["id"], f"{path}.id", max_length=MAX_MEMBER_ID_LENGTH, pattern=MEMBER_ID)
    name = _string(obj["name"], f"{path}.name", max_length=MAX_NAME_LENGTH)
    if not name.strip():
        raise _fail("empty name", f"{path}.name")
    kind_text = _string(obj["kind"], f"{path}.kind", max_length=32)
    try:
        kind = MemberKind(kind_text)
    except ValueError:
        known = sorted(k.value for k in MemberKind)
        raise _fail(f"unknown member kind {kind_text!r} (one of {known})", f"{path}.kind") from None
    endpoints_raw = _array(obj.get("endpoints", []), f"{path}.endpoints", max_items=MAX_ENDPOINTS_PER_MEMBER)
    return Member(
        id=member_id,
        name=name,
        kind=kind,
        country=_string(obj["country"], f"{path}.country", max_length=2, pattern=COUNTRY),
        programs=_string_set(
            obj.get("programs", []), f"{path}.programs", max_items=MAX_PROGRAMS_PER_MEMBER, pattern=PROGRAM
        ),
        cert_fingerprints=_string_set(
            obj.get("certificates", []),
            f"{path}.certificates",
            max_items=MAX_CERTS_PER_MEMBER,
            pattern=FINGERPRINT,
        ),
        endpoints=tuple(_parse_endpoint(e, f"{path}.endpoints[{i}]") for i, e in enumerate(endpoints_raw)),
        suspended=_boolean(obj.get("suspended", False), f"{path}.suspended"),
        home=_boolean(obj.get("home", False), f"{path}.home"),
    )


def _member_to_json(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "name": member.name,
        "kind": member.kind.value,
        "country": member.country,
        "programs": sorted(member.programs),
        "home": member.home,
        "suspended": member.suspended,
        "certificates": sorted(member.cert_fingerprints),
        "endpoints": [{"kind": e.kind, "url": e.url} for e in member.endpoints],
    }


def registry_version(members: Iterable[Member]) -> str:
    """The content digest of a members list (Rule 3): hex SHA-256 of its JCS canonical JSON."""
    canonical = [_member_to_json(m) for m in sorted(members, key=lambda m: m.id)]
    return hashlib.sha256(rfc8785.dumps(canonical)).hexdigest()


def build_registry(members: Iterable[Member]) -> Registry:
    """A registry from trusted, already-built members (the dev PKI, tests), with its version computed."""
    listed = sorted(members, key=lambda m: m.id)
    return Registry(version=registry_version(listed), members=MappingProxyType({m.id: m for m in listed}))


def parse_registry(data: object) -> Registry:
    """Parse the decoded JSON of ``registry.json`` (Rules 1-4); raises ``Invalid`` with a field path."""
    top = _object(data, "", _TOP_KEYS, ("version", "members"))
    claimed_version = _string(top["version"], "version", max_length=64, pattern=FINGERPRINT)
    raw_members = _array(top["members"], "members", max_items=MAX_MEMBERS)
    members: dict[str, Member] = {}
    owner_of: dict[str, str] = {}
    home: str | None = None
    for i, raw in enumerate(raw_members):
        path = f"members[{i}]"
        member = _parse_member(raw, path)
        if member.id in members:
            raise _fail(f"duplicate member id {member.id!r}", f"{path}.id")
        for fp in sorted(member.cert_fingerprints):
            if fp in owner_of:
                raise _fail(f"certificate {fp} is already listed for {owner_of[fp]}", f"{path}.certificates")
            owner_of[fp] = member.id
        if member.home:
            if home is not None:
                raise _fail(f"{home} is already the home member", f"{path}.home")
            home = member.id
        members[member.id] = member
    registry = build_registry(members.values())
    if registry.version != claimed_version:
        raise _fail(
            f"version {claimed_version} does not match the members list (digest {registry.version})",
            "version",
        )
    return registry


def registry_to_json(registry: Registry) -> dict[str, Any]:
    """The JSON form of a registry (what ``parse_registry`` reads back); members sorted by id.

    The version is recomputed from the members (Rule 3), so the output always parses back."""
    members = sorted(registry.members.values(), key=lambda m: m.id)
    return {"version": registry_version(members), "members": [_member_to_json(m) for m in members]}
