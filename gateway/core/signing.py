"""JWS compact serialisation (RFC 7515) with a pinned algorithm allow-list, on top of PyJWT's ``PyJWS``.

This is the one place where a JOSE header is parsed. Envelopes (``envelope.py``) and tokens (``tokens.py``)
sign and verify through it.

Rule 1: only ``ES256`` (P-256), ``EdDSA`` (Ed25519) and ``PS256`` (RSA >= 2048 bits) exist. ``none``, HMAC,
        RSA PKCS#1 v1.5, other curves and unknown names are refused with :class:`AlgorithmNotAllowed`
        before any key is touched; the PyJWS instance below has no other algorithm registered.
Rule 2: the key decides the algorithm, never the token: the ``alg`` a token names must equal
        :func:`alg_for_key` of the verification key (this is what defeats the HS256-with-a-public-key
        confusion attack and an Ed448 or P-384 key slipping in under a permitted name).
Rule 3: the protected header is read strictly before anything else: bounded size, compact form with exactly
        three segments, canonical unpadded base64url, one JSON object, no duplicate keys, no NaN/Infinity,
        only the parameters in ``_HEADER_PARAMS``. ``crit``, ``jku``, ``jwk``, ``x5u``, ``b64`` (and any other
        parameter) are refused: we never fetch keys from URLs or trust keys a token carries for itself.
Rule 4: ``x5c`` is standard (padded) base64 DER, leaf first, at most :data:`MAX_X5C_ENTRIES` entries of at
        most :data:`MAX_CERT_DER_BYTES` each; it is only *transported* here, ``ChainValidator`` decides trust.
Rule 5: verification returns what it verified (protected header and payload bytes); callers parse only that.
Rule 6: reading a protected header is a function of its segment alone, so the headers that passed Rule 3
        are remembered by their exact segment (at most :data:`MAX_REMEMBERED_HEADERS`; a refused one is read,
        and refused, every time). The token-level checks (size, ASCII, three segments) run on every token.
Rule 7: ES256, the federation's algorithm, is checked with cryptography's ECDSA P-256 / SHA-256 directly
        (exactly 64 bytes of r || s, as RFC 7518 3.4 and PyJWT require); EdDSA and PS256 go through PyJWS's
        algorithm objects with their key-length check.

Errors: :class:`AlgorithmNotAllowed` for a refused or mismatched ``alg``; :class:`LimitExceeded` for a size or
count limit; :class:`SignatureRejected` for everything else (malformed token or header, bad signature).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

import jwt
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from gateway.core.errors import (
    AlgorithmNotAllowed,
    GatewayError,
    Internal,
    LimitExceeded,
    SignatureRejected,
)

__all__ = [
    "ALLOWED_ALGORITHMS",
    "MAX_CERT_DER_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_TOKEN_CHARS",
    "MAX_X5C_ENTRIES",
    "CompactSigner",
    "PrivateKey",
    "PublicKey",
    "alg_for_key",
    "b64url_encode",
    "chain_x5c",
    "header_x5c",
    "parse_json_object",
    "peek_chain",
    "peek_header",
    "sign_compact",
    "verify_compact",
    "verify_raw",
    "verify_raw_der",
]

ALLOWED_ALGORITHMS: Final = ("ES256", "EdDSA", "PS256")

# A token carries a protected header with up to four certificates plus a signed header or claims set of a
# few KiB; 64 Ki characters is ample and bounds the byte-by-byte base64 work PyJWT does before verifying.
MAX_TOKEN_CHARS: Final = 64 * 1024
# Decoded protected header: four certificates of MAX_CERT_DER_BYTES in base64 (~22 KiB) plus small fields.
MAX_HEADER_BYTES: Final = 24 * 1024
# Leaf + up to two intermediates + optionally the anchor; a longer chain is never needed in the federation.
MAX_X5C_ENTRIES: Final = 4
# Real federation certificates are 0.5-2 KiB (RSA-4096 with policies ~2 KiB); anything larger is abuse.
MAX_CERT_DER_BYTES: Final = 4096
# ``kid`` / ``typ`` / ``cty`` are short identifiers; bound them so they cannot smuggle bulk data.
MAX_HEADER_STRING: Final = 128

# Rule 3: the only protected-header parameters we accept, with their JSON type.
_HEADER_PARAMS: Final[Mapping[str, type]] = {
    "alg": str,
    "typ": str,
    "cty": str,
    "kid": str,
    "x5c": list,
    "x5t#S256": str,
}
_RSA_MIN_BITS: Final = 2048
_P256_BYTES: Final = 32
_ECDSA_SHA256: Final = ec.ECDSA(hashes.SHA256())
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey

# Rule 1: a PyJWS that knows the three algorithms and nothing else; RSA keys below 2048 bits are errors.
_JWS: Final = jwt.PyJWS(algorithms=list(ALLOWED_ALGORITHMS), options={"enforce_minimum_key_length": True})
_JWS.header_typ = ""  # no implicit "typ": JWT; callers state the type they mean


def alg_for_key(key: object) -> str:
    """The one JWS algorithm a (private or public) key may be used with; refuses every other key type."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ES256"
        raise AlgorithmNotAllowed(f"EC curve {key.curve.name} is not allowed (P-256 only)")
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size >= _RSA_MIN_BITS:
            return "PS256"
        raise AlgorithmNotAllowed(f"RSA key of {key.key_size} bits is too short (>= {_RSA_MIN_BITS})")
    raise AlgorithmNotAllowed(f"key type {type(key).__name__} is not allowed")


def parse_json_object(raw: bytes, *, error: type[GatewayError], field: str | None = None) -> dict[str, Any]:
    """Strict JSON: UTF-8, one object, no duplicate keys, no NaN/Infinity. Raises ``error`` otherwise."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise error(f"duplicate JSON key {key!r}", field=field)
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise error(f"JSON constant {name} is not allowed", field=field)

    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise error(f"not valid JSON: {type(exc).__name__}", field=field) from None
    if not isinstance(value, dict):
        raise error("JSON value is not an object", field=field)
    return value


def _b64url_decode(segment: str, what: str) -> bytes:
    """Canonical unpadded base64url only (no padding, no stray bits), so one token has one spelling."""
    try:  # decoding skips characters outside the alphabet: only the exact spelling encodes back to ``segment``
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        if b64url_encode(data) == segment:
            return data
    except (binascii.Error, ValueError):
        pass
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise SignatureRejected(f"{what} is not unpadded base64url", field=f"jws.{what}")
    raise SignatureRejected(f"{what} is not canonical base64url", field=f"jws.{what}")


def _check_x5c(value: list[Any]) -> None:
    if not 1 <= len(value) <= MAX_X5C_ENTRIES:
        raise LimitExceeded(f"x5c has {len(value)} entries (1..{MAX_X5C_ENTRIES})", field="jws.header.x5c")
    for i, entry in enumerate(value):
        where = f"jws.header.x5c[{i}]"
        if not isinstance(entry, str):
            raise SignatureRejected("x5c entry is not a string", field=where)
        if len(entry) > (MAX_CERT_DER_BYTES + 2) // 3 * 4:
            raise LimitExceeded(f"certificate larger than {MAX_CERT_DER_BYTES} bytes", field=where)
        try:
            der = base64.b64decode(entry, validate=True)
        except (binascii.Error, ValueError):
            raise SignatureRejected("x5c entry is not standard base64", field=where) from None
        if not der or base64.b64encode(der).decode("ascii") != entry:
            raise SignatureRejected("x5c entry is not canonical base64", field=where)
        if len(der) > MAX_CERT_DER_BYTES:
            raise LimitExceeded(f"certificate larger than {MAX_CERT_DER_BYTES} bytes", field=where)


def peek_header(unverified_token: str) -> dict[str, Any]:
    """The protected header of a compact JWS, read strictly (Rule 3) but NOT verified.

    Use it only to choose how to verify (``alg``, ``kid``, ``x5c``); trust nothing in it until
    :func:`verify_compact` succeeded.
    """
    return _copy(_protected(unverified_token).header)


def peek_chain(unverified_token: str) -> tuple[dict[str, Any], tuple[bytes, ...] | None]:
    """:func:`peek_header` and the DER certificates of its ``x5c`` (None without one), read once per distinct
    protected header (Rule 6)."""
    protected = _protected(unverified_token)
    return _copy(protected.header), protected.chain


@dataclass(frozen=True, slots=True)
class _Protected:
    header: Mapping[str, Any]
    chain: tuple[bytes, ...] | None  # the x5c certificates (DER, leaf first); None when the header has none


# Rule 6: the protected headers read so far, by their exact segment (a member's signing tool sends the same
# header, its x5c chain included, with every message); only headers that passed are kept. A federation has a
# few dozen members with a certificate or two each; 256 headers of at most MAX_HEADER_BYTES (plus their DER)
# bound the memory at ~15 MB even when a caller sends a new valid-looking header every time (it is emptied
# when full).
MAX_REMEMBERED_HEADERS: Final = 256
_READ: dict[str, _Protected] = {}


def _protected(unverified_token: str) -> _Protected:
    if not isinstance(unverified_token, str):
        raise SignatureRejected("token is not a string", field="jws")
    if len(unverified_token) > MAX_TOKEN_CHARS:
        raise LimitExceeded(f"token longer than {MAX_TOKEN_CHARS} characters", field="jws")
    if not unverified_token.isascii():
        raise SignatureRejected("token is not ASCII", field="jws")
    segments = unverified_token.split(".")
    if len(segments) != 3:
        raise SignatureRejected(f"compact JWS needs 3 segments, got {len(segments)}", field="jws")
    known = _READ.get(segments[0])
    if known is None:
        known = _read_protected(segments[0])
        if len(_READ) >= MAX_REMEMBERED_HEADERS:
            _READ.clear()
        _READ[segments[0]] = known
    return known


def _read_protected(segment: str) -> _Protected:
    if len(segment) > (MAX_HEADER_BYTES + 2) // 3 * 4:
        raise LimitExceeded(f"protected header larger than {MAX_HEADER_BYTES} bytes", field="jws.header")
    header = parse_json_object(_b64url_decode(segment, "header"), error=SignatureRejected, field="jws.header")
    for name, value in header.items():
        expected = _HEADER_PARAMS.get(name)
        if expected is None:
            raise SignatureRejected(f"header parameter {name!r} is not accepted", field=f"jws.header.{name}")
        if not isinstance(value, expected):
            raise SignatureRejected(f"header parameter {name!r} has the wrong type", field=f"jws.header.{name}")
        if isinstance(value, str) and len(value) > MAX_HEADER_STRING:
            raise LimitExceeded(f"header parameter {name!r} is too long", field=f"jws.header.{name}")
    alg = header.get("alg")
    if alg is None:
        raise AlgorithmNotAllowed("header has no alg", field="jws.header.alg")
    if alg not in ALLOWED_ALGORITHMS:
        raise AlgorithmNotAllowed(f"alg {alg!r} is not allowed", field="jws.header.alg")
    chain = None
    if "x5c" in header:
        _check_x5c(header["x5c"])
        chain = tuple(base64.b64decode(entry, validate=True) for entry in header["x5c"])
    return _Protected(MappingProxyType(header), chain)


def _copy(header: Mapping[str, Any]) -> dict[str, Any]:
    """A caller's own copy of a remembered header (its x5c list included)."""
    copy = dict(header)
    if "x5c" in copy:
        copy["x5c"] = list(copy["x5c"])
    return copy


def header_x5c(header: Mapping[str, Any]) -> tuple[bytes, ...]:
    """The DER certificates of a header returned by :func:`peek_header` (leaf first); required here."""
    entries = header.get("x5c")
    if not isinstance(entries, list) or not entries:
        raise SignatureRejected("header carries no x5c certificate chain", field="jws.header.x5c")
    _check_x5c(entries)
    return tuple(base64.b64decode(entry, validate=True) for entry in entries)


def chain_x5c(key: PrivateKey, chain: Sequence[x509.Certificate]) -> list[str]:
    """The ``x5c`` value for signing with ``key``: 1..MAX_X5C_ENTRIES certificates, leaf first, and the leaf
    must certify ``key`` (a mismatch is a configuration bug: :class:`Internal`)."""
    if not 1 <= len(chain) <= MAX_X5C_ENTRIES:
        raise Internal(f"a signing chain has 1..{MAX_X5C_ENTRIES} certificates, got {len(chain)}")
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if chain[0].public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise Internal("the signing key does not belong to the leaf certificate")
    return [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii") for c in chain]


def sign_compact(payload: bytes, key: PrivateKey, *, headers: Mapping[str, object]) -> str:
    """Sign ``payload`` as a compact JWS with the algorithm that ``key`` implies (Rule 2).

    ``headers`` adds protected header parameters (``typ``, ``kid``, ``x5c`` ...); ``alg`` is set here and may
    not be given. The result is checked with :func:`peek_header`, so we never emit what we would refuse.
    """
    alg = alg_for_key(key)
    if "alg" in headers:
        raise AlgorithmNotAllowed("alg is chosen from the key, not passed in headers", field="jws.header.alg")
    token = _JWS.encode(payload, key, algorithm=alg, headers=dict(headers))
    peek_header(token)
    return token


class CompactSigner:
    """Signs many payloads under ONE fixed protected header (receipts: ``typ`` and the gateway's ``x5c``).

    The header is encoded and checked once, by :func:`sign_compact` on a probe payload (so what this emits is
    what :func:`peek_header` accepts); each :meth:`sign` then only encodes the payload and signs the signing
    input: ES256 with cryptography directly (Rule 7), EdDSA and PS256 with PyJWS's algorithm object, as
    ``PyJWS.encode`` would. A receipt's header carries a certificate chain of ~1.5 KB: re-encoding and
    re-reading it per receipt cost more than the signature.
    """

    __slots__ = ("_algorithm", "_key", "_prefix")

    def __init__(self, key: PrivateKey, *, headers: Mapping[str, object]) -> None:
        probe = sign_compact(b"{}", key, headers=headers)
        self._prefix = probe.split(".", 1)[0] + "."
        self._key = key
        self._algorithm = _JWS.get_algorithm_by_name(alg_for_key(key))

    def sign(self, payload: bytes) -> str:
        signing_input = self._prefix + b64url_encode(payload)
        data = signing_input.encode("ascii")
        if isinstance(self._key, ec.EllipticCurvePrivateKey):  # ES256 (P-256 only, alg_for_key): r || s
            r, s = decode_dss_signature(self._key.sign(data, _ECDSA_SHA256))
            signature = r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
        else:
            signature = self._algorithm.sign(data, self._key)
        return f"{signing_input}.{b64url_encode(signature)}"


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 section 2), the one spelling this module accepts back."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _allowed_public(key: PublicKeyTypes) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey):
        return key
    raise AlgorithmNotAllowed(f"key type {type(key).__name__} is not allowed")


def verify_compact(
    unverified_token: str, public_key: PublicKeyTypes, *, peeked: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], bytes]:
    """Verify a compact JWS with ``public_key``; return the verified protected header and payload bytes.

    ``peeked`` is what :func:`peek_header` returned for this same token, when the caller already read it to
    choose the key (saves reading it twice, ~20 us); the signature is checked over the token's own segments.
    """
    header = peek_header(unverified_token) if peeked is None else dict(peeked)
    public_key = _allowed_public(public_key)
    expected = alg_for_key(public_key)
    if header["alg"] != expected:
        raise AlgorithmNotAllowed(
            f"token alg {header['alg']!r} does not match the key ({expected})", field="jws.header.alg"
        )
    # peek_header has read the protected header strictly (Rule 3), so PyJWS's own re-parse of it (a
    # per-character base64 check of the whole x5c, ~40% of a verification) is skipped: the payload and
    # signature segments are decoded as canonical base64url here and the signature is checked with PyJWS's
    # algorithm object for the pinned alg, with its key-length check, exactly as PyJWS.decode_complete does.
    encoded_header, encoded_payload, encoded_signature = unverified_token.split(".")
    payload = _b64url_decode(encoded_payload, "payload")
    signature = _b64url_decode(encoded_signature, "signature")
    if expected == "ES256":  # the federation's algorithm: cryptography directly (Rule 7)
        _verify_es256(public_key, f"{encoded_header}.{encoded_payload}".encode("ascii"), signature)
        return header, payload
    algorithm = _JWS.get_algorithm_by_name(expected)
    try:
        prepared = algorithm.prepare_key(public_key)
        check_length = getattr(algorithm, "check_key_length", None)  # PyJWT >= 2.11; older ones have none
        too_short = check_length(prepared) if check_length is not None else None
        if too_short:
            raise jwt.InvalidKeyError(too_short)
        if not algorithm.verify(f"{encoded_header}.{encoded_payload}".encode("ascii"), prepared, signature):
            raise jwt.InvalidSignatureError("Signature verification failed")
    except jwt.PyJWTError as exc:
        raise SignatureRejected(f"{type(exc).__name__}: {exc}", field="jws") from None
    return header, payload


def _verify_es256(public_key: PublicKey, signing_input: bytes, signature: bytes) -> None:
    """ES256 (RFC 7518 3.4): the 64-byte r || s, checked by cryptography's ECDSA P-256 / SHA-256 (Rule 7)."""
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or len(signature) != 2 * _P256_BYTES:
        raise SignatureRejected("InvalidSignatureError: Signature verification failed", field="jws")
    r = int.from_bytes(signature[:_P256_BYTES], "big")
    s = int.from_bytes(signature[_P256_BYTES:], "big")
    try:
        public_key.verify(encode_dss_signature(r, s), signing_input, _ECDSA_SHA256)
    except InvalidSignature:
        raise SignatureRejected("InvalidSignatureError: Signature verification failed", field="jws") from None


def verify_raw(alg: str, public_key: PublicKeyTypes, message: bytes, signature: bytes) -> None:
    """Verify a bare JWS signature (``ES256``: 64-byte r||s) with the same PyJWS code as tokens use."""
    if alg not in ALLOWED_ALGORITHMS:
        raise AlgorithmNotAllowed(f"alg {alg!r} is not allowed")
    public_key = _allowed_public(public_key)
    if alg_for_key(public_key) != alg:
        raise AlgorithmNotAllowed(f"key does not match alg {alg}")
    algorithm = _JWS.get_algorithm_by_name(alg)
    try:
        ok = algorithm.verify(message, algorithm.prepare_key(public_key), signature)
    except (ValueError, TypeError, jwt.PyJWTError) as exc:
        raise SignatureRejected(f"signature check failed: {type(exc).__name__}") from None
    if not ok:
        raise SignatureRejected("signature does not verify")


def verify_raw_der(public_key: PublicKeyTypes, message: bytes, signature: bytes) -> None:
    """Verify an ECDSA P-256 / SHA-256 signature in DER (X9.62) form.

    Only strict DER is accepted (BER variants, extra bytes, negative or oversized integers are refused); the
    integers are then converted to r||s and checked by :func:`verify_raw` so both forms share one path.
    """
    try:
        r, s = decode_dss_signature(signature)
    except ValueError:
        raise SignatureRejected("signature is not DER") from None
    limit = 1 << (8 * _P256_BYTES)
    if not (0 < r < limit and 0 < s < limit):
        raise SignatureRejected("signature integers out of range")
    # Strict DER: re-encoding must give back exactly the input bytes.
    if encode_dss_signature(r, s) != signature:
        raise SignatureRejected("signature is not strict DER")
    verify_raw("ES256", public_key, message, r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big"))
