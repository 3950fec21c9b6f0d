"""Signed envelopes: strict header JSON, JCS signing, and every verify_envelope refusal with its code."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from _testpki import NOW, Identity, TestCA, TestValidator, make_registry
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import envelope
from gateway.core.envelope import ENVELOPE_TYP, VerifiedEnvelope
from gateway.core.errors import GatewayError, HeaderInvalid, Internal, Unavailable
from gateway.core.model import Caller, Header, PayloadRef, Registry, Tlp
from gateway.core.pki import FederationTrust
from gateway.core.signing import sign_compact

PAYLOAD = b'{"vessel":{"imo":"9811000"}}'
MESSAGE_ID = "0b6c1f0e-7d5a-4c3e-9f8a-2d1e0c9b8a76"


@dataclasses.dataclass
class World:
    ca: TestCA
    ids: dict[str, Identity]
    registry: Registry
    validator: TestValidator


@pytest.fixture(scope="module")
def world() -> World:
    ca = TestCA()
    ids = {
        "NL-DOUANE": ca.issue("NL-DOUANE", "ES256"),
        "US-CBP": ca.issue("US-CBP", "EdDSA"),
        "CARRIER-COSCO": ca.issue("CARRIER-COSCO", "PS256"),
        "CN-GACC": ca.issue("CN-GACC", "ES256"),
    }
    return World(ca, ids, make_registry(list(ids.values())), TestValidator(ca.cert))


def header(sender: str = "NL-DOUANE", payload: bytes = PAYLOAD, **changes: Any) -> Header:
    base = Header(
        id=MESSAGE_ID,
        type="manifest.cargo.v1",
        sender=sender,
        to=("CN-GACC",),
        tlp=Tlp.AMBER,
        created=NOW - timedelta(minutes=1),
        expires=NOW + timedelta(hours=1),
        payload=envelope.payload_ref("application/json", "cgw.v1.CargoManifest", payload),
        program="SSTL",
        correlation=None,
    )
    return dataclasses.replace(base, **changes)


def verify(w: World, jws: str, payload: bytes = PAYLOAD, **kwargs: Any) -> VerifiedEnvelope:
    args: dict[str, Any] = {"validator": w.validator, "registry": w.registry, "now": NOW, "caller": None}
    args.update(kwargs)
    return envelope.verify_envelope(jws, payload, **args)


def x5c(ident: Identity) -> list[str]:
    return [base64.b64encode(der).decode() for der in ident.chain_der]


def expect(code: str, field: str | None, fn: Any, *args: Any, **kwargs: Any) -> GatewayError:
    with pytest.raises(GatewayError) as info:
        fn(*args, **kwargs)
    assert (info.value.code, info.value.field) == (code, field), info.value.diagnostics()
    return info.value


# -- round trips -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("member", ["NL-DOUANE", "US-CBP", "CARRIER-COSCO"])  # ES256, EdDSA, PS256
def test_round_trip_for_every_alg(world: World, member: str) -> None:
    ident = world.ids[member]
    h = header(member)
    jws = envelope.sign_envelope(h, ident.key, ident.chain)
    caller = Caller(member=world.registry.members[member], method="mtls")
    verified = verify(world, jws, caller=caller)
    assert verified.header == h
    assert (verified.jws, verified.payload) == (jws, PAYLOAD)
    assert verified.signer == world.registry.members[member]
    assert verified.signer_fingerprint == ident.fingerprint


def test_wire_format(world: World) -> None:
    ident = world.ids["NL-DOUANE"]
    h = header(correlation="conv-42")
    jws = envelope.sign_envelope(h, ident.key, ident.chain)
    head, body, _ = jws.split(".")
    protected = json.loads(base64.urlsafe_b64decode(head + "=="))
    assert protected == {"alg": "ES256", "typ": ENVELOPE_TYP, "x5c": x5c(ident)}
    signed = base64.urlsafe_b64decode(body + "==")
    assert signed == rfc8785.dumps(envelope.header_to_json(h))
    doc = json.loads(signed)
    assert doc["from"] == "NL-DOUANE"
    assert doc["created"] == "2026-03-01T11:59:00.000000Z"
    assert doc["payload"] == {
        "media": "application/json",
        "schema": "cgw.v1.CargoManifest",
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
        "size": len(PAYLOAD),
    }


def test_verified_envelope_is_built_only_by_verification(world: World) -> None:
    member = world.registry.members["NL-DOUANE"]
    with pytest.raises(Internal):
        VerifiedEnvelope(header=header(), jws="a.b.c", payload=b"", signer=member, signer_fingerprint="0" * 64)


# -- every refusal, with its code --------------------------------------------------------------------------


def test_signature_and_format_refusals(world: World) -> None:
    ident = world.ids["NL-DOUANE"]
    jws = envelope.sign_envelope(header(), ident.key, ident.chain)
    head, body, sig = jws.split(".")
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BA")
    expect("SIGNATURE_INVALID", "jws", verify, world, f"{head}.{body}.{flipped}")
    expect("LIMIT_EXCEEDED", "jws", verify, world, "a" * 70_000)
    signed = rfc8785.dumps(envelope.header_to_json(header()))
    wrong_typ = sign_compact(signed, ident.key, headers={"typ": "cgw-receipt+jws", "x5c": x5c(ident)})
    expect("SIGNATURE_INVALID", "jws.header.typ", verify, world, wrong_typ)
    no_chain = sign_compact(signed, ident.key, headers={"typ": ENVELOPE_TYP})
    expect("SIGNATURE_INVALID", "jws.header.x5c", verify, world, no_chain)


def test_refused_algorithms(world: World) -> None:
    ident = world.ids["NL-DOUANE"]
    jws = envelope.sign_envelope(header(), ident.key, ident.chain)
    _, body, _ = jws.split(".")
    for alg in ("none", "HS256", "RS256", "ES384"):
        forged = base64.urlsafe_b64encode(
            json.dumps({"alg": alg, "typ": ENVELOPE_TYP, "x5c": x5c(ident)}).encode()
        ).rstrip(b"=")
        expect("ALG_NOT_ALLOWED", "jws.header.alg", verify, world, f"{forged.decode()}.{body}.")


def test_untrusted_and_revoked_certificates(world: World) -> None:
    h = header()
    stranger = TestCA("Some Other Root").issue("NL-DOUANE")
    expect("CERT_UNTRUSTED", None, verify, world, envelope.sign_envelope(h, stranger.key, stranger.chain))
    tls_only = world.ca.issue("NL-DOUANE", eku=ExtendedKeyUsageOID.CLIENT_AUTH)
    expect("CERT_UNTRUSTED", None, verify, world, envelope.sign_envelope(h, tls_only.key, tls_only.chain))
    old = world.ca.issue("NL-DOUANE", not_before=NOW - timedelta(days=60), not_after=NOW - timedelta(days=1))
    expect("CERT_UNTRUSTED", None, verify, world, envelope.sign_envelope(h, old.key, old.chain))
    unregistered = world.ca.issue("NL-DOUANE")  # valid chain, fingerprint not in the registry
    expect("CERT_UNTRUSTED", None, verify, world, envelope.sign_envelope(h, unregistered.key, unregistered.chain))
    outsider = world.ca.issue("DE-ZOLL")  # chains fine, but not a federation member
    jws = envelope.sign_envelope(header("DE-ZOLL"), outsider.key, outsider.chain)
    expect("CERT_UNTRUSTED", None, verify, world, jws)
    revoked = world.ca.issue("NL-DOUANE")
    validator = TestValidator(world.ca.cert, revoked={revoked.cert.serial_number})
    jws = envelope.sign_envelope(h, revoked.key, revoked.chain)
    expect("CERT_REVOKED", None, verify, world, jws, validator=validator)


def test_verify_before_parse(world: World) -> None:
    """A header that would fail parsing is never parsed when the certificate or signature is bad."""
    stranger = TestCA("Other").issue("NL-DOUANE")
    junk = sign_compact(b'{"not":"a header"}', stranger.key, headers={"typ": ENVELOPE_TYP, "x5c": x5c(stranger)})
    expect("CERT_UNTRUSTED", None, verify, world, junk)
    ident = world.ids["NL-DOUANE"]
    junk = sign_compact(b'{"not":"a header"}', ident.key, headers={"typ": ENVELOPE_TYP, "x5c": x5c(ident)})
    head, body, sig = junk.split(".")
    other_sig = envelope.sign_envelope(header(), ident.key, ident.chain).split(".")[2]
    expect("SIGNATURE_INVALID", "jws", verify, world, f"{head}.{body}.{other_sig}")
    expect("HEADER_INVALID", "not", verify, world, junk)  # validly signed: now it is parsed
    assert sig


def test_signed_header_must_be_canonical(world: World) -> None:
    ident = world.ids["NL-DOUANE"]
    body = envelope.header_to_json(header())
    for raw in (json.dumps(body, indent=1).encode(), json.dumps(body).encode(), rfc8785.dumps(body) + b" "):
        jws = sign_compact(raw, ident.key, headers={"typ": ENVELOPE_TYP, "x5c": x5c(ident)})
        err = expect("HEADER_INVALID", None, verify, world, jws)
        assert "canonical" in err.detail
    dup = rfc8785.dumps(body)[:-1] + b',"id":"x"}'
    jws = sign_compact(dup, ident.key, headers={"typ": ENVELOPE_TYP, "x5c": x5c(ident)})
    expect("HEADER_INVALID", None, verify, world, jws)


def test_headers_the_fast_reader_leaves_get_the_strict_readers_errors(world: World) -> None:
    # ``gateway.core.envelope``: msgspec reads the signed header only when it writes back to the same JCS bytes;
    # whatever it leaves (or cannot read at all) is read by the strict reader, with its own error.
    ident = world.ids["NL-DOUANE"]
    canonical = rfc8785.dumps(envelope.header_to_json(header()))
    deep = b'{"a":' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    cases = {
        canonical[:-1] + b',"id":"x"}': "duplicate JSON key 'id'",
        canonical.replace(b'"size":', b'"size":NaN,"x":', 1): "JSON constant NaN is not allowed",
        canonical.replace(b'"tlp":"AMBER"', b'"tlp":"\\ud800"', 1): "cannot be canonicalised",
        b"[1,2]": "JSON value is not an object",
        deep: "not valid JSON: RecursionError",
        canonical.replace(b'"tlp":"AMBER"', b'"tlp":"\\u0041MBER"', 1): "not in RFC 8785 canonical form",
    }
    for raw, detail in cases.items():
        jws = sign_compact(raw, ident.key, headers={"typ": ENVELOPE_TYP, "x5c": x5c(ident)})
        assert detail in expect("HEADER_INVALID", None, verify, world, jws).detail, raw[:80]
    # taken by the fast reader: a canonical header with an unknown key still meets parse_header's rules
    extra = canonical[:-1] + b',"zz":1}'
    jws = sign_compact(extra, ident.key, headers={"typ": ENVELOPE_TYP, "x5c": x5c(ident)})
    assert envelope._taken_header(extra) is not None
    expect("HEADER_INVALID", "zz", verify, world, jws)
    assert envelope._taken_header(canonical) == json.loads(canonical)
    assert all(envelope._taken_header(raw) is None for raw in cases)


def test_signer_mismatch(world: World) -> None:
    nl = world.ids["NL-DOUANE"]
    jws = envelope.sign_envelope(header("US-CBP"), nl.key, nl.chain)
    expect("SIGNER_MISMATCH", "from", verify, world, jws)
    jws = envelope.sign_envelope(header(), nl.key, nl.chain)
    caller = Caller(member=world.registry.members["US-CBP"], method="token")
    expect("SIGNER_MISMATCH", "from", verify, world, jws, caller=caller)


def test_payload_digest_and_size(world: World) -> None:
    nl = world.ids["NL-DOUANE"]
    jws = envelope.sign_envelope(header(), nl.key, nl.chain)
    expect("PAYLOAD_DIGEST_MISMATCH", "payload.sha256", verify, world, jws, payload=PAYLOAD + b" ")
    ref = dataclasses.replace(header().payload, size=len(PAYLOAD) + 1)
    jws = envelope.sign_envelope(dataclasses.replace(header(), payload=ref), nl.key, nl.chain)
    expect("PAYLOAD_DIGEST_MISMATCH", "payload.size", verify, world, jws)


def test_freshness(world: World) -> None:
    nl = world.ids["NL-DOUANE"]

    def sign(**changes: Any) -> str:
        return envelope.sign_envelope(header(**changes), nl.key, nl.chain)

    future = NOW + timedelta(minutes=6)
    expect("MESSAGE_NOT_YET_VALID", "created", verify, world, sign(created=future, expires=future + timedelta(1)))
    verify(world, sign(created=NOW + timedelta(minutes=4)))  # within the default 5 min skew
    expect("MESSAGE_EXPIRED", "expires", verify, world, sign(created=NOW - timedelta(2), expires=NOW))
    expect("HEADER_INVALID", "expires", verify, world, sign(expires=NOW + timedelta(days=7)))
    verify(world, sign(expires=NOW + timedelta(days=7) - timedelta(minutes=1)))
    jws = sign(created=NOW + timedelta(minutes=3))
    expect("MESSAGE_NOT_YET_VALID", "created", verify, world, jws, max_skew=timedelta(0))
    inverted = sign(created=NOW + timedelta(minutes=3), expires=NOW + timedelta(minutes=2))
    expect("HEADER_INVALID", "expires", verify, world, inverted)
    jws = sign(expires=NOW + timedelta(hours=2))
    expect("HEADER_INVALID", "expires", verify, world, jws, max_lifetime=timedelta(hours=1))


def test_unknown_recipient_and_suspended_signer(world: World) -> None:
    nl = world.ids["NL-DOUANE"]
    jws = envelope.sign_envelope(header(to=("CN-GACC", "DE-ZOLL")), nl.key, nl.chain)
    expect("UNKNOWN_RECIPIENT", "to[1]", verify, world, jws)
    jws = envelope.sign_envelope(header(), nl.key, nl.chain)
    suspended = make_registry(list(world.ids.values()), suspended=frozenset({"NL-DOUANE"}))
    expect("POLICY_DENIED", None, verify, world, jws, registry=suspended)


def test_validator_unavailable_passes_through(world: World) -> None:
    class Closed(TestValidator):
        def validate_signing(self, chain: Any, at: datetime) -> Any:
            raise Unavailable("CRL expired")

    nl = world.ids["NL-DOUANE"]
    jws = envelope.sign_envelope(header(), nl.key, nl.chain)
    expect("UNAVAILABLE", None, verify, world, jws, validator=Closed(world.ca.cert))


def test_sign_envelope_refuses_bad_input(world: World) -> None:
    nl, us = world.ids["NL-DOUANE"], world.ids["US-CBP"]
    with pytest.raises(Internal):
        envelope.sign_envelope(header(), us.key, nl.chain)
    with pytest.raises(Internal):
        envelope.sign_envelope(header(), nl.key, [])
    expect("HEADER_INVALID", "type", envelope.sign_envelope, header(type="Manifest"), nl.key, nl.chain)
    naive = datetime(2026, 3, 1, 12)  # deliberately naive
    expect("HEADER_INVALID", "created", envelope.sign_envelope, header(created=naive), nl.key, nl.chain)


# -- header strictness -------------------------------------------------------------------------------------


def _valid_json() -> dict[str, Any]:
    return envelope.header_to_json(header(correlation="c-1"))


def _with(path: str, value: Any) -> dict[str, Any]:
    doc = _valid_json()
    target = doc
    *parents, last = path.split(".")
    for p in parents:
        target = target[p]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


_DELETE = object()

BAD_HEADERS = [
    ("extra", 1, "extra"),
    ("id", _DELETE, "id"),
    ("id", MESSAGE_ID.upper(), "id"),
    ("id", "not-a-uuid", "id"),
    ("id", 7, "id"),
    ("type", "manifest", "type"),
    ("type", "Manifest.cargo.v1", "type"),
    ("type", "manifest.cargo.1", "type"),
    ("from", "nl-douane", "from"),
    ("from", "", "from"),
    ("from", ["NL-DOUANE"], "from"),
    ("to", [], "to"),
    ("to", "CN-GACC", "to"),
    ("to", ["CN-GACC", "CN-GACC"], "to[1]"),
    ("to", ["CN-GACC", 5], "to[1]"),
    ("to", ["CN-GACC", ""], "to[1]"),
    ("to", [f"M-{i}" for i in range(65)], "to"),
    ("program", None, "program"),
    ("program", "WCO", "program"),
    ("tlp", "WHITE", "tlp"),
    ("tlp", "TLP:RED", "tlp"),
    ("created", "2026-03-01T12:00:00+00:00", "created"),
    ("created", "2026-03-01T12:00:00", "created"),
    ("created", "2026-03-01t12:00:00z", "created"),
    ("created", "2026-13-01T12:00:00Z", "created"),
    ("created", "2026-03-01T12:00:00.1234567Z", "created"),
    ("created", 1767268800, "created"),
    ("expires", None, "expires"),
    ("correlation", "", "correlation"),
    ("correlation", "has space", "correlation"),
    ("correlation", "x" * 129, "correlation"),
    ("payload", "sha256", "payload"),
    ("payload.extra", 1, "payload.extra"),
    ("payload.media", _DELETE, "payload.media"),
    ("payload.media", "application/json; charset=utf-8", "payload.media"),
    ("payload.media", "Application/JSON", "payload.media"),
    ("payload.sha256", "A" * 64, "payload.sha256"),
    ("payload.sha256", "a" * 63, "payload.sha256"),
    ("payload.size", True, "payload.size"),
    ("payload.size", 10.0, "payload.size"),
    ("payload.size", -1, "payload.size"),
    ("payload.size", "10", "payload.size"),
    ("payload.size", (1 << 30) + 1, "payload.size"),
    ("payload.schema", "", "payload.schema"),
]


@pytest.mark.parametrize(("path", "value", "field"), BAD_HEADERS, ids=[f"{p}={v!r}"[:40] for p, v, _ in BAD_HEADERS])
def test_header_strictness(path: str, value: Any, field: str) -> None:
    with pytest.raises(HeaderInvalid) as info:
        envelope.parse_header(_with(path, value))
    assert info.value.field == field


def test_header_must_be_an_object() -> None:
    for data in ([], "x", None, 1):
        with pytest.raises(HeaderInvalid):
            envelope.parse_header(data)


def test_timestamp_spellings() -> None:
    for text, expected in (
        ("2026-03-01T12:00:00Z", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("2026-03-01T12:00:00.5Z", datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC)),
        ("2024-02-29T23:59:59.000001Z", datetime(2024, 2, 29, 23, 59, 59, 1, tzinfo=UTC)),
    ):
        assert envelope.parse_header(_with("created", text)).created == expected
    with pytest.raises(HeaderInvalid):
        envelope.parse_header(_with("created", "2025-02-29T00:00:00Z"))


def test_payload_ref() -> None:
    ref = envelope.payload_ref("application/edifact", "cgw.v1.Cuscar", b"UNA:+.? '")
    assert ref == PayloadRef("application/edifact", "cgw.v1.Cuscar", hashlib.sha256(b"UNA:+.? '").hexdigest(), 9)
    with pytest.raises(HeaderInvalid) as info:
        envelope.payload_ref("json", "s", b"")
    assert info.value.field == "payload.media"


# -- property: parse(to_json(h)) == h --------------------------------------------------------------------

_member_ids = st.from_regex(r"[A-Z0-9]{1,6}(-[A-Z0-9]{1,6}){0,2}", fullmatch=True)
_times = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC))
headers = st.builds(
    Header,
    id=st.uuids().map(str),
    type=st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9-]{1,8}){1,3}\.v[0-9]{1,2}", fullmatch=True),
    sender=_member_ids,
    to=st.lists(_member_ids, min_size=1, max_size=8, unique=True).map(tuple),
    tlp=st.sampled_from(list(Tlp)),
    created=_times,
    expires=_times,
    payload=st.builds(
        PayloadRef,
        media=st.sampled_from(["application/json", "application/edifact", "application/x-protobuf"]),
        schema=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,30}", fullmatch=True),
        sha256=st.binary(min_size=32, max_size=32).map(bytes.hex),
        size=st.integers(min_value=0, max_value=1 << 30),
    ),
    program=st.none() | st.sampled_from(sorted(envelope.PROGRAMS)),
    correlation=st.none() | st.from_regex(r"[\x21-\x7e]{1,40}", fullmatch=True),
)


@settings(max_examples=100, deadline=None)
@given(h=headers)
def test_parse_inverts_to_json(h: Header) -> None:
    doc = envelope.header_to_json(h)
    assert envelope.parse_header(doc) == h
    canonical = rfc8785.dumps(doc)
    assert envelope.parse_header(json.loads(canonical)) == h  # survives the wire
    assert rfc8785.dumps(json.loads(canonical)) == canonical


def test_public_key_of_chain_matches(world: World) -> None:
    ident = world.ids["CARRIER-COSCO"]
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert ident.cert.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) == ident.key.public_key().public_bytes(serialization.Encoding.DER, spki)


# -- interop with the production ChainValidator ------------------------------------------------------------


def test_interop_with_federation_trust(world: World) -> None:
    """The same envelopes verify through gateway.core.pki.FederationTrust (anchors + CRL + registry)."""
    revoked = world.ca.issue("NL-DOUANE")
    registry = make_registry([*world.ids.values(), revoked])
    trust = FederationTrust([world.ca.cert], world.ca.crl([revoked.cert.serial_number]), registry)
    for member in ("NL-DOUANE", "US-CBP", "CARRIER-COSCO"):
        ident = world.ids[member]
        jws = envelope.sign_envelope(header(member), ident.key, ident.chain)
        assert verify(world, jws, validator=trust, registry=registry).signer.id == member
    jws = envelope.sign_envelope(header(), revoked.key, revoked.chain)
    expect("CERT_REVOKED", None, verify, world, jws, validator=trust, registry=registry)
