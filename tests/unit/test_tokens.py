"""Client assertions (RFC 7523) and certificate-bound access tokens (RFC 8705): round trips and refusals."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
import rfc8785
from _testpki import NOW, Identity, TestCA, TestValidator, fingerprint, make_registry, new_key
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import tokens
from gateway.core.errors import Internal, TokenInvalid, Unavailable
from gateway.core.model import CertificateRef, Registry
from gateway.core.signing import sign_compact

AUDIENCE = "https://gateway.customs.example/v1/token"
ISSUER = "https://gateway.customs.example"


@dataclasses.dataclass
class World:
    ca: TestCA
    ids: dict[str, Identity]
    registry: Registry
    validator: TestValidator
    gateway_key: Any


@pytest.fixture(scope="module")
def world() -> World:
    ca = TestCA()
    ids = {
        "NL-DOUANE": ca.issue("NL-DOUANE", "ES256"),
        "US-CBP": ca.issue("US-CBP", "EdDSA"),
        "CARRIER-COSCO": ca.issue("CARRIER-COSCO", "PS256"),
    }
    return World(ca, ids, make_registry(list(ids.values())), TestValidator(ca.cert), new_key("ES256"))


def x5c(ident: Identity) -> list[str]:
    return [base64.b64encode(der).decode() for der in ident.chain_der]


def verify_assertion(w: World, token: str, **kwargs: Any) -> tokens.ClientAssertion:
    args: dict[str, Any] = {"audience": AUDIENCE, "validator": w.validator, "registry": w.registry, "now": NOW}
    args.update(kwargs)
    return tokens.verify_client_assertion(token, **args)


def refused(fn: Any, *args: Any, **kwargs: Any) -> str:
    """Every refusal is TOKEN_INVALID with the one public message; returns the (internal) detail."""
    with pytest.raises(TokenInvalid) as info:
        fn(*args, **kwargs)
    assert info.value.code == "TOKEN_INVALID"
    assert info.value.public == "authentication failed"
    assert info.value.field is None
    return info.value.detail


def claims_token(ident: Identity, claims: object, *, typ: str = tokens.ASSERTION_TYP, raw: bytes | None = None) -> str:
    body = raw if raw is not None else json.dumps(claims).encode()
    return sign_compact(body, ident.key, headers={"typ": typ, "x5c": x5c(ident)})


def good_claims(member: str = "NL-DOUANE", **changes: Any) -> dict[str, Any]:
    issued = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "iss": member,
        "sub": member,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + 60,
        "jti": "a-1",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not _DROP}


_DROP = object()


# -- client assertions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("member", ["NL-DOUANE", "US-CBP", "CARRIER-COSCO"])  # ES256, EdDSA, PS256
def test_assertion_round_trip(world: World, member: str) -> None:
    ident = world.ids[member]
    token = tokens.make_client_assertion(member, AUDIENCE, ident.key, ident.chain, now=NOW, jti="j-1")
    result = verify_assertion(world, token)
    assert result == tokens.ClientAssertion(
        member=world.registry.members[member],
        jti="j-1",
        expires=NOW + timedelta(seconds=60),
        certificate=CertificateRef(ident.fingerprint, ident.cert.serial_number, fingerprint(world.ca.cert)),
    )


def test_assertion_hand_built_claims_are_accepted(world: World) -> None:
    ident = world.ids["NL-DOUANE"]
    ok = good_claims(aud=["https://other.example", AUDIENCE], nbf=int(NOW.timestamp()))
    assert verify_assertion(world, claims_token(ident, ok)).jti == "a-1"


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"exp": str(int(NOW.timestamp()) + 60)}, "exp"),
        ({"exp": True}, "exp"),
        ({"iat": NOW.timestamp() + 0.5}, "iat"),
        ({"iss": ["NL-DOUANE"]}, "iss"),
        ({"sub": None}, "sub"),
        ({"jti": 7}, "jti"),
        ({"jti": ""}, "jti"),
        ({"jti": "has space"}, "jti"),
        ({"aud": [AUDIENCE, 1]}, "aud"),
        ({"aud": []}, "aud"),
        ({"aud": {"x": AUDIENCE}}, "aud"),
        ({"aud": "https://someone-else.example/token"}, "audience"),
        ({"jti": _DROP}, "jti"),
        ({"exp": _DROP}, "exp"),
        ({"scope": "admin"}, "scope"),
        ({"iss": "US-CBP", "sub": "US-CBP"}, "certified member"),
        ({"sub": "US-CBP"}, "certified member"),
        ({"exp": int(NOW.timestamp())}, "expired"),
        ({"iat": int(NOW.timestamp()) + 61, "exp": int(NOW.timestamp()) + 120}, "future"),
        ({"nbf": int(NOW.timestamp()) + 61}, "nbf"),
        ({"exp": int(NOW.timestamp()) + 301}, "lifetime"),
        ({"iat": int(NOW.timestamp()) + 30, "exp": int(NOW.timestamp()) + 30}, "lifetime"),
        ({"exp": 10**13}, "exp"),
    ],
)
def test_assertion_claims_are_strict(world: World, changes: dict[str, Any], why: str) -> None:
    token = claims_token(world.ids["NL-DOUANE"], good_claims(**changes))
    assert why in refused(verify_assertion, world, token)


def test_assertion_claims_json_is_strict(world: World) -> None:
    ident = world.ids["NL-DOUANE"]
    body = rfc8785.dumps(good_claims())
    for raw in (body[:-1] + b',"sub":"US-CBP"}', b"[]", b'{"exp":NaN}', b"not json"):
        refused(verify_assertion, world, claims_token(ident, None, raw=raw))


def test_assertion_certificate_checks(world: World) -> None:
    claims = good_claims()
    stranger = TestCA("Other Root").issue("NL-DOUANE")
    assert "CERT_UNTRUSTED" in refused(verify_assertion, world, claims_token(stranger, claims))
    unregistered = world.ca.issue("NL-DOUANE")
    assert "not registered" in refused(verify_assertion, world, claims_token(unregistered, claims))
    ident = world.ids["NL-DOUANE"]
    revoking = TestValidator(world.ca.cert, revoked={ident.cert.serial_number})
    detail = refused(verify_assertion, world, claims_token(ident, claims), validator=revoking)
    assert "CERT_REVOKED" in detail
    suspended = make_registry(list(world.ids.values()), suspended=frozenset({"NL-DOUANE"}))
    assert "suspended" in refused(verify_assertion, world, claims_token(ident, claims), registry=suspended)
    no_chain = sign_compact(rfc8785.dumps(claims), ident.key, headers={"typ": tokens.ASSERTION_TYP})
    assert "x5c" in refused(verify_assertion, world, no_chain)


def test_assertion_type_and_algorithm(world: World) -> None:
    ident = world.ids["NL-DOUANE"]
    claims = good_claims()
    for typ in ("JWT", tokens.ACCESS_TYP, "cgw-envelope+jws"):
        assert "typ" in refused(verify_assertion, world, claims_token(ident, claims, typ=typ))
    header = {"alg": "none", "typ": tokens.ASSERTION_TYP, "x5c": x5c(ident)}
    unsigned = ".".join(
        base64.urlsafe_b64encode(part).rstrip(b"=").decode() for part in (json.dumps(header).encode(), b"{}")
    )
    assert "ALG_NOT_ALLOWED" in refused(verify_assertion, world, unsigned + ".")


def test_assertion_tampered_signature(world: World) -> None:
    ident = world.ids["US-CBP"]
    token = tokens.make_client_assertion("US-CBP", AUDIENCE, ident.key, ident.chain, now=NOW, jti="j")
    head, body, sig = token.split(".")
    other = tokens.make_client_assertion("US-CBP", AUDIENCE, ident.key, ident.chain, now=NOW, jti="k")
    assert "SIGNATURE_INVALID" in refused(verify_assertion, world, f"{head}.{other.split('.')[1]}.{sig}")
    assert body


def test_assertion_key_must_match_the_leaf(world: World) -> None:
    nl, us = world.ids["NL-DOUANE"], world.ids["US-CBP"]
    with pytest.raises(Internal):
        tokens.make_client_assertion("NL-DOUANE", AUDIENCE, us.key, nl.chain, now=NOW, jti="j")
    with pytest.raises(Internal):
        tokens.make_client_assertion("NL-DOUANE", AUDIENCE, nl.key, [], now=NOW, jti="j")


def test_unavailable_trust_passes_through(world: World) -> None:
    class Closed(TestValidator):
        def validate_signing(self, chain: Any, at: datetime) -> Any:
            raise Unavailable("CRL expired")

    ident = world.ids["NL-DOUANE"]
    token = tokens.make_client_assertion("NL-DOUANE", AUDIENCE, ident.key, ident.chain, now=NOW, jti="j")
    with pytest.raises(Unavailable):
        verify_assertion(world, token, validator=Closed(world.ca.cert))


# -- access tokens ----------------------------------------------------------------------------------------


def issue(w: World, member: str = "NL-DOUANE", **kwargs: Any) -> str:
    args: dict[str, Any] = {
        "key": w.gateway_key,
        "key_id": "gw-1",
        "issuer": ISSUER,
        "audience": ISSUER,
        "now": NOW,
        "ttl": timedelta(minutes=5),
        "cnf_x5t_s256": None,
        "jti": "t-1",
        "certificate": signed_by(w, member),
    }
    args.update(kwargs)
    return tokens.issue_access_token(w.registry.members[member], **args)


def signed_by(w: World, member: str) -> CertificateRef:
    """The certificate a member's client assertion is signed with (the token names it, ``tokens.CERT_CLAIM``); a made-up
    one for others."""
    ident = w.ids.get(member)
    if ident is None:
        return CertificateRef("0" * 64, 1, fingerprint(w.ca.cert))
    return CertificateRef(ident.fingerprint, ident.cert.serial_number, fingerprint(w.ca.cert))


def verify_access(w: World, token: str, **kwargs: Any) -> tokens.AccessClaims:
    args: dict[str, Any] = {
        "public_key": w.gateway_key.public_key(),
        "issuer": ISSUER,
        "audience": ISSUER,
        "now": NOW,
        "registry": w.registry,
        "presented_cert_x5t_s256": None,
    }
    args.update(kwargs)
    return tokens.verify_access_token(token, **args)


def test_x5t_s256() -> None:
    assert tokens.x5t_s256(b"") == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"


@settings(max_examples=30, deadline=None)
@given(der=st.binary(max_size=2000))
def test_x5t_s256_is_base64url_sha256(der: bytes) -> None:
    value = tokens.x5t_s256(der)
    assert len(value) == 43
    assert base64.urlsafe_b64decode(value + "=") == hashlib.sha256(der).digest()


def test_access_token_round_trip(world: World) -> None:
    token = issue(world)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"alg": "ES256", "typ": "at+jwt", "kid": "gw-1"}
    claims = verify_access(world, token)
    assert claims == tokens.AccessClaims(
        member=world.registry.members["NL-DOUANE"],
        jti="t-1",
        expires=NOW + timedelta(minutes=5),
        bound_x5t=None,
        certificate=signed_by(world, "NL-DOUANE"),
    )
    payload = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    ident = world.ids["NL-DOUANE"]
    assert payload[tokens.CERT_CLAIM] == {
        "sha256": ident.fingerprint,
        "serial": f"{ident.cert.serial_number:x}",
        "issuer": fingerprint(world.ca.cert),
    }
    # an unbound token stays usable over a connection that presents a certificate
    assert verify_access(world, token, presented_cert_x5t_s256=tokens.x5t_s256(b"cert")).bound_x5t is None
    assert verify_access(world, issue(world, ttl=300)).expires == NOW + timedelta(seconds=300)


def test_bound_token_needs_the_same_certificate(world: World) -> None:
    der = world.ids["NL-DOUANE"].cert.public_bytes(serialization.Encoding.DER)
    thumb = tokens.x5t_s256(der)
    token = issue(world, cnf_x5t_s256=thumb)
    assert verify_access(world, token, presented_cert_x5t_s256=thumb).bound_x5t == thumb
    assert "bound" in refused(verify_access, world, token)
    other = tokens.x5t_s256(b"another certificate")
    assert "bound" in refused(verify_access, world, token, presented_cert_x5t_s256=other)
    assert "bound" in refused(verify_access, world, token, presented_cert_x5t_s256="é" * 43)


def test_access_token_refusals(world: World) -> None:
    token = issue(world)
    assert "issuer" in refused(verify_access, world, token, issuer="https://elsewhere.example")
    assert "audience" in refused(verify_access, world, token, audience="https://elsewhere.example")
    assert "expired" in refused(verify_access, world, token, now=NOW + timedelta(minutes=5))
    assert "future" in refused(verify_access, world, token, now=NOW - timedelta(minutes=2))
    other_gateway = new_key("ES256")
    assert "SIGNATURE_INVALID" in refused(verify_access, world, token, public_key=other_gateway.public_key())
    assert "ALG_NOT_ALLOWED" in refused(verify_access, world, token, public_key=new_key("EdDSA").public_key())
    suspended = make_registry(list(world.ids.values()), suspended=frozenset({"NL-DOUANE"}))
    assert "suspended" in refused(verify_access, world, token, registry=suspended)
    assert "not a member" in refused(verify_access, world, issue(world, "CN-GACC"), registry=Registry("v", {}))


def test_access_token_type_confusion(world: World) -> None:
    ident = world.ids["NL-DOUANE"]
    assertion = tokens.make_client_assertion("NL-DOUANE", ISSUER, ident.key, ident.chain, now=NOW, jti="j")
    assert "typ" in refused(verify_access, world, assertion, public_key=ident.key.public_key())
    assert "typ" in refused(verify_assertion, world, issue(world))


def _forged_access(w: World, **changes: Any) -> str:
    issued = int(NOW.timestamp())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "NL-DOUANE",
        "client_id": "NL-DOUANE",
        "aud": ISSUER,
        "iat": issued,
        "exp": issued + 300,
        "jti": "t",
        tokens.CERT_CLAIM: {"sha256": "a" * 64, "serial": "1f", "issuer": "b" * 64},
    }
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not _DROP}
    return sign_compact(json.dumps(claims).encode(), w.gateway_key, headers={"typ": tokens.ACCESS_TYP})


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"exp": "1772366700"}, "exp"),
        ({"iss": [ISSUER]}, "iss"),
        ({"client_id": "US-CBP"}, "client_id"),
        ({"client_id": _DROP}, "client_id"),
        ({"cnf": {"x5t#S256": "short"}}, "cnf"),
        ({"cnf": {"x5t#S256": tokens.x5t_s256(b""), "jkt": "x"}}, "cnf"),
        ({"cnf": "x"}, "cnf"),
        ({"exp": int(NOW.timestamp()) + 3601, "iat": int(NOW.timestamp())}, "lifetime"),
        ({"roles": ["admin"]}, "roles"),
        ({tokens.CERT_CLAIM: _DROP}, tokens.CERT_CLAIM),  # every token names its signing certificate
        ({tokens.CERT_CLAIM: {"sha256": "a" * 64, "serial": "1f"}}, tokens.CERT_CLAIM),
        ({tokens.CERT_CLAIM: {"sha256": "A" * 64, "serial": "1f", "issuer": "b" * 64}}, "sha256"),
        ({tokens.CERT_CLAIM: {"sha256": "a" * 64, "serial": 31, "issuer": "b" * 64}}, "serial"),
        ({tokens.CERT_CLAIM: {"sha256": "a" * 64, "serial": "f" * 41, "issuer": "b" * 64}}, "serial"),
        ({tokens.CERT_CLAIM: {"sha256": "a" * 64, "serial": "1f", "issuer": "b"}}, "issuer"),
    ],
)
def test_access_token_claims_are_strict(world: World, changes: dict[str, Any], why: str) -> None:
    assert why in refused(verify_access, world, _forged_access(world, **changes))


def test_issue_refuses_bad_parameters(world: World) -> None:
    for ttl in (timedelta(0), timedelta(hours=2), 0, -5):
        with pytest.raises(Internal):
            issue(world, ttl=ttl)
    with pytest.raises(Internal):
        issue(world, cnf_x5t_s256="not-a-thumbprint")
    with pytest.raises(Internal):
        issue(world, now=datetime(2026, 3, 1, 12))  # naive
