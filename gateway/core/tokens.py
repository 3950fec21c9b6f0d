"""Access tokens: RFC 7523 client assertions in, RFC 9068-style access tokens out, RFC 8705 binding.

A member authenticates to the token endpoint with a *client assertion*: a JWT it signs with its federation
signing key, carrying its chain in ``x5c``. The gateway answers with a short-lived *access token* signed with
the gateway's own key, optionally bound (``cnf.x5t#S256``) to the TLS client certificate it was issued over.

Rule 1: signatures go through ``signing.verify_compact`` (PyJWT's ``PyJWS`` with ES256 / EdDSA / PS256 pinned,
        ``alg`` tied to the key). Claims are then checked here, against the ``now`` argument: PyJWT's own
        ``exp`` / ``iat`` checks read the wall clock, which the pure core does not have.
Rule 2: tokens are explicitly typed (RFC 8725 §3.11): ``typ`` is :data:`ASSERTION_TYP` or :data:`ACCESS_TYP`,
        so neither can be replayed as the other (nor as an envelope or a receipt).
Rule 3: claims are strict: required claims present, only known claims, and each of the right JSON type
        (a string ``exp``, a list ``iss`` or a float ``iat`` is refused; NumericDates are integers).
Rule 4: lifetimes are bounded: ``exp - iat`` <= the maximum, ``iat`` / ``nbf`` at most
        :data:`MAX_CLOCK_SKEW` in the future, ``exp`` > now.
Rule 5: a bound token is usable only over a TLS connection whose client certificate has that SHA-256
        thumbprint (base64url, RFC 8705 §3.1); the comparison is constant-time.
Rule 6: every failure is :class:`TokenInvalid` with the same public message; which check failed is in
        ``detail`` only (ledger and logs). ``Unavailable`` (no trust data) passes through: fail closed.
Rule 7: the client assertion's ``jti`` is NOT checked for replay here (the core has no state): the caller
        must claim it once in the store (``claim_once(f"jti:{member}:{jti}", expires)``) before issuing.
Rule 8: an access token names the certificate that signed its client assertion (private claim
        :data:`CERT_CLAIM`: fingerprint, serial, issuing anchor), so that whoever accepts the token can recheck
        that certificate against the trust of the moment (``ChainValidator.recheck``): a revocation published
        after issuance takes effect at the token's next use. The claim is required.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from gateway.core.errors import BadRequest, Internal, Invalid, SignatureRejected, TokenInvalid
from gateway.core.model import CertificateRef, ChainValidator, Member, Registry
from gateway.core.signing import (
    PrivateKey,
    b64url_encode,
    chain_x5c,
    header_x5c,
    parse_json_object,
    peek_header,
    sign_compact,
    verify_compact,
)

__all__ = [
    "ACCESS_TYP",
    "ASSERTION_TYP",
    "CERT_CLAIM",
    "AccessClaims",
    "ClientAssertion",
    "issue_access_token",
    "make_client_assertion",
    "verify_access_token",
    "verify_client_assertion",
    "x5t_s256",
]

ASSERTION_TYP: Final = "cgw-client-assertion+jwt"
ACCESS_TYP: Final = "at+jwt"  # RFC 9068
CERT_CLAIM: Final = "cgw_cert"  # Rule 8: {"sha256": hex, "serial": hex, "issuer": hex}

# -- named limits ------------------------------------------------------------------------------------------
MAX_CLOCK_SKEW: Final = timedelta(seconds=60)  # members' clocks are NTP-synced; a minute covers the rest
MAX_ACCESS_TOKEN_TTL: Final = timedelta(hours=1)  # short-lived bearer credentials; refresh by a new assertion
MAX_CLAIM_STRING: Final = 256  # iss / sub / jti / aud entries: ids and URLs, never bulk data
MAX_AUDIENCES: Final = 8  # an assertion names the token endpoint, perhaps under a few aliases
MAX_NUMERIC_DATE: Final = 253_402_300_799  # 9999-12-31T23:59:59Z: beyond that datetime cannot represent it

_JTI: Final = re.compile(r"[\x21-\x7e]+")  # visible ASCII
_X5T: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # unpadded base64url of 32 bytes
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_SERIAL_HEX: Final = re.compile(r"[0-9a-f]{1,40}")  # RFC 5280 4.1.2.2: at most 20 octets
_ASSERTION_REQUIRED: Final = frozenset({"iss", "sub", "aud", "exp", "iat", "jti"})
_ASSERTION_OPTIONAL: Final = frozenset({"nbf"})
_ACCESS_REQUIRED: Final = frozenset({"iss", "sub", "aud", "exp", "iat", "jti", "client_id", CERT_CLAIM})
_ACCESS_OPTIONAL: Final = frozenset({"nbf", "cnf"})


@dataclass(frozen=True, slots=True)
class ClientAssertion:
    """A verified RFC 7523 assertion. The caller must claim ``jti`` once (until ``expires``), Rule 7."""

    member: Member
    jti: str
    expires: datetime
    certificate: CertificateRef  # the signing certificate, for the access token (Rule 8)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """A verified access token: who it was issued to, the certificate its client assertion was signed with
    (still to be rechecked against the current trust, Rule 8) and, when bound, the TLS certificate thumbprint."""

    member: Member
    jti: str
    expires: datetime
    bound_x5t: str | None
    certificate: CertificateRef


def x5t_s256(der: bytes) -> str:
    """RFC 8705 ``x5t#S256``: unpadded base64url of the SHA-256 of a certificate's DER."""
    return b64url_encode(hashlib.sha256(der).digest())


# -- helpers ----------------------------------------------------------------------------------------------


@contextmanager
def _as_token_invalid() -> Iterator[None]:
    """Rule 6: every refusal becomes TokenInvalid with the original code in the detail."""
    try:
        yield
    except (SignatureRejected, BadRequest, Invalid) as exc:
        raise TokenInvalid(f"{exc.code}: {exc.detail}" + (f" at {exc.field}" if exc.field else "")) from None


def _numeric_date(at: datetime) -> int:
    if at.tzinfo is None or at.utcoffset() is None:
        raise Internal("times must be timezone-aware")
    return int(at.timestamp())


def _claims(raw: bytes, required: frozenset[str], optional: frozenset[str]) -> dict[str, Any]:
    claims = parse_json_object(raw, error=TokenInvalid)
    for name in claims:
        if name not in required and name not in optional:
            raise TokenInvalid(f"unknown claim {name!r}")
    for name in sorted(required):
        if name not in claims:
            raise TokenInvalid(f"required claim {name!r} is missing")
    return claims


def _string(claims: Mapping[str, Any], name: str, pattern: re.Pattern[str] | None = None) -> str:
    value = claims[name]
    if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_STRING:
        raise TokenInvalid(f"claim {name!r} must be a non-empty string of at most {MAX_CLAIM_STRING}")
    if pattern is not None and not pattern.fullmatch(value):
        raise TokenInvalid(f"claim {name!r} has the wrong format")
    return value


def _time(claims: Mapping[str, Any], name: str) -> datetime:
    value = claims[name]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_NUMERIC_DATE:
        raise TokenInvalid(f"claim {name!r} must be an integer NumericDate")
    return datetime.fromtimestamp(value, UTC)


def _audiences(claims: Mapping[str, Any]) -> list[str]:
    value = claims["aud"]
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_AUDIENCES:
        raise TokenInvalid(f"claim 'aud' must be a string or 1..{MAX_AUDIENCES} strings")
    for item in items:
        if not isinstance(item, str) or not item or len(item) > MAX_CLAIM_STRING:
            raise TokenInvalid("claim 'aud' entries must be non-empty strings")
    return items


def _check_window(claims: Mapping[str, Any], now: datetime, max_lifetime: timedelta) -> datetime:
    """Rule 4; returns ``exp``."""
    issued, expires = _time(claims, "iat"), _time(claims, "exp")
    if issued > now + MAX_CLOCK_SKEW:
        raise TokenInvalid("issued in the future")
    if "nbf" in claims and _time(claims, "nbf") > now + MAX_CLOCK_SKEW:
        raise TokenInvalid("not yet valid (nbf)")
    if expires <= now:
        raise TokenInvalid("expired")
    if not timedelta(0) < expires - issued <= max_lifetime:
        raise TokenInvalid(f"lifetime must be in (0, {max_lifetime}]")
    return expires


def _member(registry: Registry, member_id: str) -> Member:
    member = registry.get(member_id)
    if member is None:
        raise TokenInvalid(f"{member_id} is not a member")
    if member.suspended:
        raise TokenInvalid(f"{member_id} is suspended")
    return member


def _typed(unverified: str, typ: str) -> dict[str, Any]:
    header = peek_header(unverified)
    if header.get("typ") != typ:
        raise TokenInvalid(f"typ must be {typ!r}")
    return header


# -- client assertions (RFC 7523) ------------------------------------------------------------------------


def make_client_assertion(
    member_id: str,
    audience: str,
    key: PrivateKey,
    chain: Sequence[x509.Certificate],
    *,
    now: datetime,
    jti: str,
    lifetime: timedelta = timedelta(seconds=60),
) -> str:
    """A client assertion for ``member_id`` (``iss`` = ``sub``) to ``audience``, with ``chain`` in ``x5c``."""
    x5c = chain_x5c(key, chain)
    issued = _numeric_date(now)
    claims: dict[str, Any] = {
        "iss": member_id,
        "sub": member_id,
        "aud": audience,
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": jti,
    }
    return sign_compact(rfc8785.dumps(claims), key, headers={"typ": ASSERTION_TYP, "x5c": x5c})


def verify_client_assertion(
    unverified: str,
    *,
    audience: str,
    validator: ChainValidator,
    registry: Registry,
    now: datetime,
    max_lifetime: timedelta = timedelta(minutes=5),
) -> ClientAssertion:
    """Verify an RFC 7523 assertion: chain (signing purpose), signature, claims, member. See Rule 7 (jti)."""
    if now.tzinfo is None:
        raise Internal("now must be timezone-aware")
    with _as_token_invalid():
        header = _typed(unverified, ASSERTION_TYP)
        certified = validator.validate_signing(header_x5c(header), now)
        _, raw = verify_compact(unverified, certified.public_key)
    claims = _claims(raw, _ASSERTION_REQUIRED, _ASSERTION_OPTIONAL)
    issuer, subject = _string(claims, "iss"), _string(claims, "sub")
    jti = _string(claims, "jti", _JTI)
    if not issuer == subject == certified.member_id:
        raise TokenInvalid(f"iss/sub ({issuer}/{subject}) must both be the certified member")
    if audience not in _audiences(claims):
        raise TokenInvalid("audience does not name this token endpoint")
    expires = _check_window(claims, now, max_lifetime)
    member = _member(registry, certified.member_id)
    if certified.fingerprint not in member.cert_fingerprints:
        raise TokenInvalid(f"certificate is not registered for {member.id}")
    return ClientAssertion(member=member, jti=jti, expires=expires, certificate=certified.ref)


# -- access tokens ----------------------------------------------------------------------------------------


def issue_access_token(
    member: Member,
    *,
    key: PrivateKey,
    key_id: str,
    issuer: str,
    audience: str,
    now: datetime,
    ttl: timedelta | int,
    cnf_x5t_s256: str | None,
    jti: str,
    certificate: CertificateRef,
) -> str:
    """An access token for ``member`` signed by the gateway key ``key`` (``kid`` = ``key_id``).

    ``ttl`` is a timedelta or whole seconds (at most :data:`MAX_ACCESS_TOKEN_TTL`). With ``cnf_x5t_s256`` the
    token is bound to that TLS client certificate thumbprint (RFC 8705). ``certificate`` is the one that signed
    the client assertion (Rule 8).
    """
    lifetime = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
    if not timedelta(seconds=1) <= lifetime <= MAX_ACCESS_TOKEN_TTL:
        raise Internal(f"access token ttl must be in [1 s, {MAX_ACCESS_TOKEN_TTL}]")
    if cnf_x5t_s256 is not None and not _X5T.fullmatch(cnf_x5t_s256):
        raise Internal("cnf_x5t_s256 must be an unpadded base64url SHA-256 thumbprint")
    issued = _numeric_date(now)
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": member.id,
        "client_id": member.id,
        "aud": audience,
        "iat": issued,
        "exp": issued + int(lifetime.total_seconds()),
        "jti": jti,
        CERT_CLAIM: {
            "sha256": certificate.fingerprint,
            "serial": f"{certificate.serial:x}",
            "issuer": certificate.issuer,
        },
    }
    if cnf_x5t_s256 is not None:
        claims["cnf"] = {"x5t#S256": cnf_x5t_s256}
    return sign_compact(rfc8785.dumps(claims), key, headers={"typ": ACCESS_TYP, "kid": key_id})


def _binding(claims: Mapping[str, Any]) -> str | None:
    if "cnf" not in claims:
        return None
    cnf = claims["cnf"]
    if not isinstance(cnf, dict) or set(cnf) != {"x5t#S256"}:
        raise TokenInvalid("claim 'cnf' must be an object with exactly 'x5t#S256'")
    thumbprint = cnf["x5t#S256"]
    if not isinstance(thumbprint, str) or not _X5T.fullmatch(thumbprint):
        raise TokenInvalid("cnf.x5t#S256 is not a base64url SHA-256 thumbprint")
    return thumbprint


def _certificate(claims: Mapping[str, Any]) -> CertificateRef:
    """Rule 8: the signing certificate of the client assertion the token was issued for."""
    value = claims[CERT_CLAIM]
    if not isinstance(value, dict) or set(value) != {"sha256", "serial", "issuer"}:
        raise TokenInvalid(f"claim {CERT_CLAIM!r} must be an object with exactly 'sha256', 'serial', 'issuer'")
    fingerprint, serial, issuer = value["sha256"], value["serial"], value["issuer"]
    if not (isinstance(fingerprint, str) and _SHA256_HEX.fullmatch(fingerprint)):
        raise TokenInvalid(f"{CERT_CLAIM}.sha256 is not a lowercase hex SHA-256")
    if not (isinstance(issuer, str) and _SHA256_HEX.fullmatch(issuer)):
        raise TokenInvalid(f"{CERT_CLAIM}.issuer is not a lowercase hex SHA-256")
    if not (isinstance(serial, str) and _SERIAL_HEX.fullmatch(serial)):
        raise TokenInvalid(f"{CERT_CLAIM}.serial is not a lowercase hex serial number")
    return CertificateRef(fingerprint=fingerprint, serial=int(serial, 16), issuer=issuer)


def verify_access_token(
    unverified: str,
    *,
    public_key: PublicKeyTypes,
    issuer: str,
    audience: str,
    now: datetime,
    registry: Registry,
    presented_cert_x5t_s256: str | None,
) -> AccessClaims:
    """Verify a gateway access token; a bound token needs the matching presented certificate (Rule 5)."""
    if now.tzinfo is None:
        raise Internal("now must be timezone-aware")
    with _as_token_invalid():
        _typed(unverified, ACCESS_TYP)
        _, raw = verify_compact(unverified, public_key)
    claims = _claims(raw, _ACCESS_REQUIRED, _ACCESS_OPTIONAL)
    if _string(claims, "iss") != issuer:
        raise TokenInvalid("issuer mismatch")
    if audience not in _audiences(claims):
        raise TokenInvalid("audience mismatch")
    if _string(claims, "client_id") != _string(claims, "sub"):
        raise TokenInvalid("client_id differs from sub")
    jti = _string(claims, "jti", _JTI)
    expires = _check_window(claims, now, MAX_ACCESS_TOKEN_TTL)
    bound = _binding(claims)
    if bound is not None and (
        presented_cert_x5t_s256 is None
        or not hmac.compare_digest(bound.encode("ascii"), presented_cert_x5t_s256.encode("ascii", "replace"))
    ):
        raise TokenInvalid("token is bound to another client certificate (or none was presented)")
    certificate = _certificate(claims)
    member = _member(registry, _string(claims, "sub"))
    return AccessClaims(member=member, jti=jti, expires=expires, bound_x5t=bound, certificate=certificate)
