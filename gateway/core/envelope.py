"""Signed message envelopes: the header as JSON, its JWS, and verification into :class:`VerifiedEnvelope`.

A message on REST and gRPC is a compact JWS whose payload is the RFC 8785 (JCS) canonical JSON of the header,
plus the payload bytes that the header binds by SHA-256 and size. The JWS string is kept as evidence and
forwarded unchanged.

Rule 1: the header is parsed strictly: exactly the known keys, each with its JSON type and format; unknown
        keys, missing keys, ``null`` for an optional key and wrong types raise :class:`HeaderInvalid` with a
        field path (``to[2]``, ``payload.sha256``). Optional keys are omitted, never ``null``.
Rule 2: the protected header carries ``alg`` (ES256 / EdDSA / PS256), ``typ`` = :data:`ENVELOPE_TYP` and
        ``x5c`` (the signer's chain, leaf first); anything else is refused by ``signing.peek_header``.
Rule 3: verify before you parse what was signed: peek (limits only) -> chain validation -> signature ->
        only then the signed header is parsed. It must be byte-for-byte its own JCS form.
Rule 4: after the signature, in this order: certified member == ``from`` (== the authenticated caller) ->
        payload digest and size -> freshness (``created`` <= now + skew, ``expires`` > now, lifetime bounded)
        -> every recipient is a member -> the signer is registered for this certificate (unless a peer
        gateway's signing trust vouched for it: a relay, ``core/peertrust.py``) and not suspended.
Rule 5: :class:`VerifiedEnvelope` is built only by :func:`verify_envelope` (a module-private seal enforces it
        at run time; the type tells later pipeline steps the checks happened).
Rule 6: times are RFC 3339 UTC with ``Z`` and at most microsecond precision; the core takes ``now`` as an
        argument and has no clock.
Rule 7: the signed header is read by msgspec's C decoder first and taken only when it writes back, in JCS
        form, to exactly the signed bytes (so: one object, no repeated key, no ``NaN``, nothing but the plain
        JSON types); anything else is read again by the strict ``json`` reader, which owns every error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
import rfc8785
from cryptography import x509

from gateway.core.canonical import canonical_json
from gateway.core.errors import (
    CertificateUntrusted,
    Forbidden,
    HeaderInvalid,
    Internal,
    MessageExpired,
    MessageNotYetValid,
    PayloadDigestMismatch,
    SignatureRejected,
    SignerMismatch,
    UnknownRecipient,
)
from gateway.core.model import Caller, CertifiedKey, ChainValidator, Header, Member, PayloadRef, Registry, Tlp
from gateway.core.registry import MAX_MEMBER_ID_LENGTH, MEMBER_ID
from gateway.core.signing import (
    PrivateKey,
    chain_x5c,
    header_x5c,
    parse_json_object,
    peek_chain,
    sign_compact,
    verify_compact,
)

__all__ = [
    "ENVELOPE_TYP",
    "MAX_RECIPIENTS",
    "PROGRAMS",
    "SignedClaims",
    "VerifiedEnvelope",
    "header_to_json",
    "parse_header",
    "payload_ref",
    "sign_envelope",
    "verify_envelope",
    "verify_signed_claims",
]

ENVELOPE_TYP: Final = "cgw-envelope+jws"
PROGRAMS: Final = frozenset({"SSTL", "CSI", "MEGAPORT", "MRA"})

# -- named limits ------------------------------------------------------------------------------------------
MAX_RECIPIENTS: Final = 64  # a recall or intel share reaches a handful of partners; fan-out beyond is abuse
MAX_TYPE_LENGTH: Final = 64  # "csi.examination-request.v1" is 26; room for future names
MAX_CORRELATION_LENGTH: Final = 128  # a UUID or a partner's conversation id
MAX_MEDIA_LENGTH: Final = 127  # RFC 6838: type and subtype names are at most 127 characters
MAX_SCHEMA_LENGTH: Final = 128  # proto message names such as cgw.v1.CargoManifest
MAX_DECLARED_SIZE: Final = 1 << 30  # a declared payload size beyond 1 GiB is nonsense (body limits are lower)
MAX_TIMESTAMP_LENGTH: Final = 32  # "YYYY-MM-DDTHH:MM:SS.ffffffZ" is 27

_UUID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # canonical lowercase
_TYPE: Final = re.compile(r"[a-z0-9]+(?:\.[a-z0-9-]+)+\.v[0-9]+")
_CORRELATION: Final = re.compile(r"[\x21-\x7e]+")  # visible ASCII, no spaces
_MEDIA: Final = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")  # lowercase, no params
_SCHEMA: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]*")
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?Z")

_REQUIRED: Final = frozenset({"id", "type", "from", "to", "tlp", "created", "expires", "payload"})
_TLP_LABELS: Final = frozenset(t.value for t in Tlp)
_DECODER: Final = msgspec.json.Decoder()  # Rule 7
_OPTIONAL: Final = frozenset({"program", "correlation"})
_PAYLOAD_KEYS: Final = frozenset({"media", "schema", "sha256", "size"})

_SEAL: Final = object()  # Rule 5: only this module holds it


# -- JSON <-> Header -------------------------------------------------------------------------------------


def _timestamp(at: datetime, where: str) -> str:
    if at.tzinfo is None or at.utcoffset() is None:
        raise HeaderInvalid("timestamp must be timezone-aware", field=where)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def header_to_json(h: Header) -> dict[str, Any]:
    """The JSON object of a header (``from`` for ``sender``; optional keys omitted when ``None``)."""
    out: dict[str, Any] = {
        "id": h.id,
        "type": h.type,
        "from": h.sender,
        "to": list(h.to),
        "tlp": h.tlp.value,
        "created": _timestamp(h.created, "created"),
        "expires": _timestamp(h.expires, "expires"),
        "payload": {
            "media": h.payload.media,
            "schema": h.payload.schema,
            "sha256": h.payload.sha256,
            "size": h.payload.size,
        },
    }
    if h.program is not None:
        out["program"] = h.program
    if h.correlation is not None:
        out["correlation"] = h.correlation
    return out


def _keys(obj: object, where: str, required: frozenset[str], optional: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(obj, dict):
        raise HeaderInvalid("must be a JSON object", field=where or None)
    prefix = f"{where}." if where else ""
    for key in obj:
        if key not in required and key not in optional:
            raise HeaderInvalid(f"unknown key {key!r}", field=f"{prefix}{key}")
    for key in sorted(required):
        if key not in obj:
            raise HeaderInvalid("required key is missing", field=f"{prefix}{key}")
    return obj


def _string(value: object, where: str, pattern: re.Pattern[str], max_length: int) -> str:
    if not isinstance(value, str):
        raise HeaderInvalid("must be a string", field=where)
    if len(value) > max_length:
        raise HeaderInvalid(f"longer than {max_length} characters", field=where)
    if not pattern.fullmatch(value):
        raise HeaderInvalid("has the wrong format", field=where)
    return value


def _parse_time(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise HeaderInvalid("must be a string", field=where)
    if len(value) > MAX_TIMESTAMP_LENGTH:
        raise HeaderInvalid(f"longer than {MAX_TIMESTAMP_LENGTH} characters", field=where)
    match = _TIMESTAMP.fullmatch(value)  # _string's checks, matching once
    if match is None:
        raise HeaderInvalid("has the wrong format", field=where)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    micro = int((match.group(7) or "0").ljust(6, "0"))
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError:
        raise HeaderInvalid("is not a valid date and time", field=where) from None


def _parse_payload(value: object) -> PayloadRef:
    obj = _keys(value, "payload", _PAYLOAD_KEYS, frozenset())
    size = obj["size"]
    if not isinstance(size, int) or isinstance(size, bool):
        raise HeaderInvalid("must be an integer", field="payload.size")
    if not 0 <= size <= MAX_DECLARED_SIZE:
        raise HeaderInvalid(f"must be in 0..{MAX_DECLARED_SIZE}", field="payload.size")
    return PayloadRef(
        media=_string(obj["media"], "payload.media", _MEDIA, MAX_MEDIA_LENGTH),
        schema=_string(obj["schema"], "payload.schema", _SCHEMA, MAX_SCHEMA_LENGTH),
        sha256=_string(obj["sha256"], "payload.sha256", _SHA256, 64),
        size=size,
    )


def _parse_recipients(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise HeaderInvalid("must be an array of member ids", field="to")
    if not 1 <= len(value) <= MAX_RECIPIENTS:
        raise HeaderInvalid(f"needs 1..{MAX_RECIPIENTS} recipients", field="to")
    seen: set[str] = set()
    for i, item in enumerate(value):
        member_id = _string(item, f"to[{i}]", MEMBER_ID, MAX_MEMBER_ID_LENGTH)
        if member_id in seen:
            raise HeaderInvalid("duplicate recipient", field=f"to[{i}]")
        seen.add(member_id)
    return tuple(value)


def parse_header(data: object) -> Header:
    """Build a :class:`Header` from its parsed JSON object, strictly (Rule 1)."""
    obj = _keys(data, "", _REQUIRED, _OPTIONAL)
    tlp_text = obj["tlp"]
    if not isinstance(tlp_text, str) or tlp_text not in _TLP_LABELS:
        raise HeaderInvalid("must be a TLP 2.0 label (CLEAR, GREEN, AMBER, AMBER+STRICT, RED)", field="tlp")
    program = obj.get("program")
    if "program" in obj and (not isinstance(program, str) or program not in PROGRAMS):
        raise HeaderInvalid(f"must be one of {sorted(PROGRAMS)} (omit the key when none)", field="program")
    correlation = None
    if "correlation" in obj:
        correlation = _string(obj["correlation"], "correlation", _CORRELATION, MAX_CORRELATION_LENGTH)
    return Header(
        id=_string(obj["id"], "id", _UUID, 36),
        type=_string(obj["type"], "type", _TYPE, MAX_TYPE_LENGTH),
        sender=_string(obj["from"], "from", MEMBER_ID, MAX_MEMBER_ID_LENGTH),
        to=_parse_recipients(obj["to"]),
        tlp=Tlp(tlp_text),
        created=_parse_time(obj["created"], "created"),
        expires=_parse_time(obj["expires"], "expires"),
        payload=_parse_payload(obj["payload"]),
        program=program,
        correlation=correlation,
    )


def payload_ref(media: str, schema: str, payload: bytes) -> PayloadRef:
    """The ``payload`` part of a header for these exact bytes (SHA-256 and size), with checked names."""
    return PayloadRef(
        media=_string(media, "payload.media", _MEDIA, MAX_MEDIA_LENGTH),
        schema=_string(schema, "payload.schema", _SCHEMA, MAX_SCHEMA_LENGTH),
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
    )


# -- signing and verification ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifiedEnvelope:
    """A message whose signature, signer, payload digest, freshness and recipients were checked.

    Built only by :func:`verify_envelope` (Rule 5): constructing it elsewhere raises :class:`Internal`.
    ``jws`` and ``payload`` are the exact bytes received (the evidence kept and forwarded).
    """

    header: Header
    jws: str
    payload: bytes
    signer: Member
    signer_fingerprint: str
    _seal: object = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self._seal is not _SEAL:
            raise Internal("VerifiedEnvelope is built only by envelope.verify_envelope")


def sign_envelope(header: Header, key: PrivateKey, chain: Sequence[x509.Certificate]) -> str:
    """Sign the JCS form of ``header`` with ``key``; ``chain`` (leaf first) goes into ``x5c``."""
    x5c = chain_x5c(key, chain)
    body = header_to_json(header)
    parse_header(body)  # never sign what verification would refuse
    return sign_compact(canonical_json(body), key, headers={"typ": ENVELOPE_TYP, "x5c": x5c})


def _canonical_header(signed: bytes) -> Header:
    data = _taken_header(signed)
    if data is not None:
        return parse_header(data)
    data = parse_json_object(signed, error=HeaderInvalid)
    try:
        canonical = canonical_json(data)
    except rfc8785.CanonicalizationError as exc:
        raise HeaderInvalid(f"header cannot be canonicalised: {exc}") from None
    if canonical != signed:
        raise HeaderInvalid("the signed header is not in RFC 8785 canonical form")
    return parse_header(data)


def _taken_header(signed: bytes) -> dict[str, Any] | None:
    """The signed header as msgspec reads it, when that writes back to exactly ``signed`` in JCS form (Rule 7);
    else None (the strict reader then reads it and reports what is wrong)."""
    try:
        data = _DECODER.decode(signed)
        if type(data) is dict and canonical_json(data) == signed:
            return data
    except (msgspec.DecodeError, rfc8785.CanonicalizationError, RecursionError):  # the strict reader says why
        pass
    return None


def _check_sender(header: Header, member_id: str, caller: Caller | None, registry: Registry) -> Member:
    if member_id != header.sender:
        raise SignerMismatch(f"certificate is {member_id}, header.from is {header.sender}", field="from")
    if caller is not None and caller.member.id != header.sender:
        raise SignerMismatch(f"caller is {caller.member.id}, header.from is {header.sender}", field="from")
    signer = registry.get(member_id)
    if signer is None:
        raise CertificateUntrusted(f"{member_id} is not in the registry")
    return signer


def _check_payload(header: Header, payload: bytes) -> None:
    if hashlib.sha256(payload).hexdigest() != header.payload.sha256:
        raise PayloadDigestMismatch("payload SHA-256 differs from the header", field="payload.sha256")
    if len(payload) != header.payload.size:
        raise PayloadDigestMismatch(f"payload is {len(payload)} bytes", field="payload.size")


def _check_freshness(header: Header, now: datetime, max_skew: timedelta, max_lifetime: timedelta) -> None:
    if header.created > now + max_skew:
        raise MessageNotYetValid(f"created {header.created.isoformat()} is after now + skew", field="created")
    if header.expires <= now:
        raise MessageExpired(f"expired at {header.expires.isoformat()}", field="expires")
    if header.expires <= header.created:
        raise HeaderInvalid("expires must be after created", field="expires")
    if header.expires - header.created > max_lifetime:
        raise HeaderInvalid(f"lifetime exceeds {max_lifetime}", field="expires")


def verify_envelope(
    unverified_jws: str,
    payload: bytes,
    *,
    validator: ChainValidator,
    registry: Registry,
    now: datetime,
    caller: Caller | None,
    max_skew: timedelta = timedelta(minutes=5),
    max_lifetime: timedelta = timedelta(days=7),
    registered: bool = True,
) -> VerifiedEnvelope:
    """Verify a signed envelope and the payload it binds, in the order of Rules 3 and 4.

    ``registered=False`` only for a relayed envelope (Rule 4's last check then skips the fingerprint): its
    ``validator`` is the relaying peer's signing trust (``core/peertrust.py``), which vouches for the certificate,
    and this gateway's registry lists foreign members without fingerprints.

    Raises (codes): ALG_NOT_ALLOWED / SIGNATURE_INVALID / LIMIT_EXCEEDED (token), CERT_UNTRUSTED /
    CERT_REVOKED (from ``validator``; also an unregistered certificate), HEADER_INVALID, SIGNER_MISMATCH,
    PAYLOAD_DIGEST_MISMATCH, MESSAGE_NOT_YET_VALID, MESSAGE_EXPIRED, UNKNOWN_RECIPIENT (``to[i]``),
    POLICY_DENIED (suspended signer). ``Unavailable`` from the validator passes through (fail closed).
    """
    if now.tzinfo is None:
        raise Internal("now must be timezone-aware")
    protected, chain = peek_chain(unverified_jws)
    if protected.get("typ") != ENVELOPE_TYP:
        raise SignatureRejected(f"typ must be {ENVELOPE_TYP!r}", field="jws.header.typ")
    certified = validator.validate_signing(chain if chain is not None else header_x5c(protected), now)
    _, signed = verify_compact(unverified_jws, certified.public_key, peeked=protected)
    header = _canonical_header(signed)
    limits = (max_skew, max_lifetime)
    return _checked(
        header,
        unverified_jws,
        payload,
        certified=certified,
        registry=registry,
        now=now,
        caller=caller,
        limits=limits,
        registered=registered,
    )


@dataclass(frozen=True, slots=True)
class SignedClaims:
    """What a document-level signature scheme (SOAP WS-Security) verified, for :func:`verify_signed_claims`.

    Its verifier builds it only after the signature over the document checked out with ``certified`` (the
    federation-validated certificate): ``header`` is read from the signed elements only, ``payload`` are the
    bytes derived from the signed document (the header binds them by digest), and ``evidence`` is the exact
    signed document as received (kept and forwarded)."""

    header: Header
    payload: bytes
    evidence: str
    certified: CertifiedKey


def verify_signed_claims(
    claims: SignedClaims,
    *,
    registry: Registry,
    now: datetime,
    caller: Caller | None,
    max_skew: timedelta = timedelta(minutes=5),
    max_lifetime: timedelta = timedelta(days=7),
) -> VerifiedEnvelope:
    """Rule 4 for a document signed by another scheme: the same checks, in the same order, as for a JWS."""
    if now.tzinfo is None:
        raise Internal("now must be timezone-aware")
    parse_header(header_to_json(claims.header))  # the same strict header rules as a signed JWS header
    return _checked(
        claims.header,
        claims.evidence,
        claims.payload,
        certified=claims.certified,
        registry=registry,
        now=now,
        caller=caller,
        limits=(max_skew, max_lifetime),
    )


def _checked(
    header: Header,
    evidence: str,
    payload: bytes,
    *,
    certified: CertifiedKey,
    registry: Registry,
    now: datetime,
    caller: Caller | None,
    limits: tuple[timedelta, timedelta],  # (max_skew, max_lifetime)
    registered: bool = True,
) -> VerifiedEnvelope:
    """Rule 4, after a verified signature (JWS or a document-level scheme)."""
    signer = _check_sender(header, certified.member_id, caller, registry)
    _check_payload(header, payload)
    _check_freshness(header, now, *limits)
    for i, recipient in enumerate(header.to):
        if registry.get(recipient) is None:
            raise UnknownRecipient(f"{recipient} is not a member", field=f"to[{i}]")
    if registered and certified.fingerprint not in signer.cert_fingerprints:
        raise CertificateUntrusted(f"certificate is not registered for {signer.id}")
    if signer.suspended:
        raise Forbidden(f"{signer.id} is suspended")
    return VerifiedEnvelope(
        header=header,
        jws=evidence,
        payload=payload,
        signer=signer,
        signer_fingerprint=certified.fingerprint,
        _seal=_SEAL,
    )
