"""The signed federation directory: which gateways make up the federation, and how to trust each of them.

Like X-Road's signed global configuration, the federation operator publishes one document, a compact JWS
(``typ`` :data:`JWS_TYPE`) whose payload is the RFC 8785 canonical JSON of::

    {"federation": "cgw-dev", "version": 7, "issued_at": "2026-12-05T12:00:00Z", "not_after": "2027-01-04T12:00:00Z",
     "gateways": [{"id": "CN-GACC", "administration": "General Administration of Customs of China", "country": "CN",
                   "rest_url": "https://gw.cn.example:8443", "grpc_target": "gw.cn.example:8444",
                   "tls_anchors": ["<base64 DER>"], "signing_anchors": ["<base64 DER>"],
                   "origin": "cgw.cn-gacc.example/ledger", "checkpoint_keys": ["<vkey>", ...],
                   "witness_key": "<vkey, type 0x04>", "members": ["CARRIER-COSCO", "CN-GACC"]}]}

Rule 1: verify before parsing: the JWS is checked with the operator's public key (algorithm from the key,
        ``core.signing``), its ``typ`` must be :data:`JWS_TYPE`, and the payload must be canonical JSON
        (re-encoding gives the same bytes), so one directory has one spelling and one digest.
Rule 2: parsing is strict like the registry's (``core.registry``): unknown or missing keys, wrong JSON types,
        duplicate gateway ids, origins, members or witness keys, and anything over a named limit raise
        :class:`Invalid` with a field path such as ``gateways[1].witness_key``.
Rule 3: a gateway's ``checkpoint_keys`` are C2SP verifier keys (type 0x01) named by its ``origin``, oldest
        first (its published key history); ``witness_key`` is a cosignature/v1 verifier key (type 0x04).
Rule 4: versions are monotonic: a directory older than the last one accepted is refused, and so is another
        document under the same version (:func:`check_succession`); a directory is refused at and after its
        ``not_after``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.core.canonical import canonical_json
from gateway.core.checkpoint import parse_verifier_key
from gateway.core.cosignature import Witness, parse_witness_key
from gateway.core.errors import GatewayError, Invalid
from gateway.core.registry import COUNTRY, MAX_MEMBERS, MAX_NAME_LENGTH, MAX_URL_LENGTH, MEMBER_ID
from gateway.core.signing import PrivateKey, PublicKey, parse_json_object, sign_compact, verify_compact
from gateway.core.strictjson import strict_object, strict_string

JWS_TYPE = "cgw-directory+jws"
MAX_GATEWAYS = 256  # one per administration, with room: ~180 customs administrations exist
MAX_ANCHORS = 8  # a root and a successor during a CA rollover, per purpose, with margin
MAX_CERT_DER_BYTES = 4096  # as for x5c (core.signing): real CA certificates are 0.5-2 KiB
MAX_CHECKPOINT_KEYS = 64  # core.keyhistory.MAX_KEYS
MAX_VKEY_LENGTH = 512  # name (255) + id + base64 key
MAX_VERSION = 2**53 - 1  # an I-JSON integer
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
_FEDERATION = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")
_TOP_KEYS = frozenset({"federation", "version", "issued_at", "not_after", "gateways"})
_GATEWAY_KEYS = frozenset(
    {
        "id",
        "administration",
        "country",
        "rest_url",
        "grpc_target",
        "tls_anchors",
        "signing_anchors",
        "origin",
        "checkpoint_keys",
        "witness_key",
        "members",
    }
)
_PUBLIC = "the federation directory is invalid"


def _fail(detail: str, field: str) -> Invalid:
    return Invalid(detail, field=field, public=_PUBLIC)


@dataclass(frozen=True, slots=True)
class PeerGateway:
    id: str  # the member id of the administration that runs it
    administration: str
    country: str
    rest_url: str  # https://host:port; the witness is at <rest_url>/witness/add-checkpoint
    grpc_target: str  # host:port, "" when it runs no gRPC listener
    tls_anchors: tuple[bytes, ...]  # DER
    signing_anchors: tuple[bytes, ...]  # DER
    origin: str
    checkpoint_keys: tuple[str, ...]  # C2SP vkeys, oldest first
    witness_key: str  # cosignature/v1 vkey
    members: frozenset[str]

    @property
    def log_keys(self) -> tuple[Ed25519PublicKey, ...]:
        return tuple(parse_verifier_key(vkey)[1] for vkey in self.checkpoint_keys)

    @property
    def witness(self) -> Witness:
        return parse_witness_key(self.witness_key)

    @property
    def witness_url(self) -> str:
        return self.rest_url.rstrip("/") + "/witness/add-checkpoint"


@dataclass(frozen=True, slots=True)
class Directory:
    federation: str
    version: int
    issued_at: str
    not_after: datetime
    gateways: Mapping[str, PeerGateway]
    digest: str = ""  # hex SHA-256 of the canonical payload (Rule 4)

    def by_origin(self, origin: str) -> PeerGateway | None:
        return next((g for g in self.gateways.values() if g.origin == origin), None)

    def peers_of(self, gateway_id: str) -> tuple[PeerGateway, ...]:
        """Every gateway but ``gateway_id``, by id."""
        return tuple(g for i, g in sorted(self.gateways.items()) if i != gateway_id)

    def routes(self, gateway_id: str, recipients: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The REMOTE recipients among ``recipients``, by the peer gateway that serves them (issue 19): listed in
        a peer's ``members`` and not in those of ``gateway_id`` (this gateway). A member listed by two peers goes
        to the first by id (one relay, never two). Recipients served here, or by no gateway, are left out."""
        mine = self.gateways[gateway_id].members if gateway_id in self.gateways else frozenset()
        routes: dict[str, list[str]] = {}
        for recipient in dict.fromkeys(recipients):
            if recipient in mine:
                continue
            peer = next((g.id for g in self.peers_of(gateway_id) if recipient in g.members), None)
            if peer is not None:
                routes.setdefault(peer, []).append(recipient)
        return {peer: tuple(members) for peer, members in routes.items()}


def _object(value: object, path: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(value, dict):  # the document itself is named "directory"; its keys by their own names
        raise _fail(f"expected an object, got {type(value).__name__}", path or "directory")
    return strict_object(value, path, allowed, sorted(allowed), public=_PUBLIC)


def _string(value: object, path: str, *, max_length: int, pattern: re.Pattern[str] | None = None) -> str:
    return strict_string(value, path, max_length=max_length, pattern=pattern, public=_PUBLIC)


def _list(value: object, path: str, *, max_items: int, min_items: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(f"expected an array, got {type(value).__name__}", path)
    if not min_items <= len(value) <= max_items:
        raise _fail(f"{min_items}..{max_items} items", path)
    return value


def _timestamp(value: object, path: str) -> datetime:
    text = _string(value, path, max_length=20, pattern=_TIMESTAMP)
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise _fail("not a real date and time", path) from None


def _anchors(value: object, path: str) -> tuple[bytes, ...]:
    out: list[bytes] = []
    for i, item in enumerate(_list(value, path, max_items=MAX_ANCHORS, min_items=1)):
        where = f"{path}[{i}]"
        text = _string(item, where, max_length=(MAX_CERT_DER_BYTES + 2) // 3 * 4)
        try:
            der = base64.b64decode(text, validate=True)
            x509.load_der_x509_certificate(der)
        except (binascii.Error, ValueError):
            raise _fail("not the standard base64 of a DER certificate", where) from None
        out.append(der)
    return tuple(out)


def _url(value: object, path: str, *, required: bool) -> str:
    text = _string(value, path, max_length=MAX_URL_LENGTH)
    if any(c.isspace() for c in text) or (required and not text.startswith("https://")):
        raise _fail("an https:// URL without whitespace" if required else "no whitespace", path)
    return text


def _vkey(value: object, path: str, parse: Any) -> str:
    text = _string(value, path, max_length=MAX_VKEY_LENGTH)
    try:
        parse(text)
    except GatewayError as exc:
        raise _fail(exc.detail, path) from None
    return text


def _gateway(value: object, path: str) -> PeerGateway:
    obj = _object(value, path, _GATEWAY_KEYS)
    origin = _string(obj["origin"], f"{path}.origin", max_length=255)
    keys = tuple(
        _vkey(v, f"{path}.checkpoint_keys[{i}]", parse_verifier_key)
        for i, v in enumerate(_list(obj["checkpoint_keys"], f"{path}.checkpoint_keys", max_items=64, min_items=1))
    )
    for i, vkey in enumerate(keys):
        if parse_verifier_key(vkey)[0] != origin:
            raise _fail("a checkpoint key is named by the gateway's origin", f"{path}.checkpoint_keys[{i}]")
    members = _list(obj["members"], f"{path}.members", max_items=MAX_MEMBERS)
    member_ids = [_string(m, f"{path}.members[{i}]", max_length=64, pattern=MEMBER_ID) for i, m in enumerate(members)]
    if len(set(member_ids)) != len(member_ids):
        raise _fail("a member is listed twice", f"{path}.members")
    gateway_id = _string(obj["id"], f"{path}.id", max_length=64, pattern=MEMBER_ID)
    administration = _string(obj["administration"], f"{path}.administration", max_length=MAX_NAME_LENGTH)
    if not administration.strip():
        raise _fail("empty name", f"{path}.administration")
    return PeerGateway(
        id=gateway_id,
        administration=administration,
        country=_string(obj["country"], f"{path}.country", max_length=2, pattern=COUNTRY),
        rest_url=_url(obj["rest_url"], f"{path}.rest_url", required=True),
        grpc_target=_url(obj["grpc_target"], f"{path}.grpc_target", required=False),
        tls_anchors=_anchors(obj["tls_anchors"], f"{path}.tls_anchors"),
        signing_anchors=_anchors(obj["signing_anchors"], f"{path}.signing_anchors"),
        origin=origin,
        checkpoint_keys=keys,
        witness_key=_vkey(obj["witness_key"], f"{path}.witness_key", parse_witness_key),
        members=frozenset(member_ids),
    )


def parse_directory(data: object, digest: str = "") -> Directory:
    """Rule 2: the decoded payload of a verified directory; ``Invalid`` with a field path otherwise."""
    top = _object(data, "", _TOP_KEYS)
    version = top["version"]
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise _fail(f"an integer in 1..{MAX_VERSION}", "version")
    gateways: dict[str, PeerGateway] = {}
    seen: dict[str, str] = {}
    for i, raw in enumerate(_list(top["gateways"], "gateways", max_items=MAX_GATEWAYS)):
        path = f"gateways[{i}]"
        gateway = _gateway(raw, path)
        claims = [("id", gateway.id), ("origin", gateway.origin), ("witness_key", gateway.witness.vkey)]
        claims += [("members", m) for m in sorted(gateway.members)]
        for what, value in claims:
            owner = seen.get(f"{what}:{value}")
            if owner is not None:
                raise _fail(f"{value} is already listed for {owner}", f"{path}.{what}")
            seen[f"{what}:{value}"] = gateway.id
        gateways[gateway.id] = gateway
    issued = _timestamp(top["issued_at"], "issued_at")
    not_after = _timestamp(top["not_after"], "not_after")
    if not_after <= issued:
        raise _fail("not_after must be after issued_at", "not_after")
    return Directory(
        federation=_string(top["federation"], "federation", max_length=63, pattern=_FEDERATION),
        version=version,
        issued_at=top["issued_at"],
        not_after=not_after,
        gateways=MappingProxyType(dict(sorted(gateways.items()))),
        digest=digest,
    )


def _b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def directory_to_json(directory: Directory) -> dict[str, Any]:
    """The JSON payload (what :func:`parse_directory` reads back); gateways sorted by id, sets sorted."""
    return {
        "federation": directory.federation,
        "version": directory.version,
        "issued_at": directory.issued_at,
        "not_after": directory.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gateways": [
            {
                "id": g.id,
                "administration": g.administration,
                "country": g.country,
                "rest_url": g.rest_url,
                "grpc_target": g.grpc_target,
                "tls_anchors": [_b64(d) for d in g.tls_anchors],
                "signing_anchors": [_b64(d) for d in g.signing_anchors],
                "origin": g.origin,
                "checkpoint_keys": list(g.checkpoint_keys),
                "witness_key": g.witness_key,
                "members": sorted(g.members),
            }
            for g in directory.gateways.values()
        ],
    }


def sign_directory(payload: Mapping[str, Any], key: PrivateKey) -> str:
    """The signed directory (Rule 1) over ``payload``, which must parse (we never sign what we would refuse)."""
    data = canonical_json(dict(payload))
    parse_directory(parse_json_object(data, error=Invalid))
    return sign_compact(data, key, headers={"typ": JWS_TYPE})


def verify_directory(unverified_token: str, operator_key: PublicKey, *, now: datetime) -> Directory:
    """Rules 1, 2 and the ``not_after`` half of Rule 4: the directory the operator signed, valid at ``now``."""
    header, payload = verify_compact(unverified_token.strip(), operator_key)
    if header.get("typ") != JWS_TYPE:
        raise _fail(f"the JWS typ must be {JWS_TYPE!r}", "jws.header.typ")
    value = parse_json_object(payload, error=Invalid, field="directory")
    if canonical_json(value) != payload:
        raise _fail("the payload is not RFC 8785 canonical JSON", "directory")
    directory = parse_directory(value, hashlib.sha256(payload).hexdigest())
    if now >= directory.not_after:
        raise _fail(f"expired at {directory.not_after.isoformat()} (version {directory.version})", "not_after")
    return directory


def check_succession(directory: Directory, last: tuple[int, str] | None) -> None:
    """Rule 4: ``directory`` may follow the last accepted (version, digest): a newer version, or the same one."""
    if last is None:
        return
    version, digest = last
    if directory.version < version:
        raise _fail(f"version {directory.version} is older than the accepted version {version}", "version")
    if directory.version == version and directory.digest != digest:
        raise _fail(f"another document under the accepted version {version}", "version")
