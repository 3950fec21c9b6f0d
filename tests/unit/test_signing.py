"""JWS compact signing: the pinned algorithm allow-list, strict header reading, x5c limits, raw verifiers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from _testpki import new_key
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import signing
from gateway.core.errors import AlgorithmNotAllowed, HeaderInvalid, LimitExceeded, SignatureRejected

ALGS = ("ES256", "EdDSA", "PS256")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_sign(alg: str, key: Any, message: bytes) -> bytes:
    """Produce a correct signature for ``alg`` by hand, so a refusal is provably about the header."""
    if alg in {"ES256", "ES384"}:
        r, s = decode_dss_signature(key.sign(message, ec.ECDSA(hashes.SHA256() if alg == "ES256" else hashes.SHA384())))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg == "EdDSA":
        return bytes(key.sign(message))
    if alg == "PS256":
        return bytes(key.sign(message, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()))
    if alg == "RS256":
        return bytes(key.sign(message, padding.PKCS1v15(), hashes.SHA256()))
    if alg == "HS256":
        return hmac.new(key, message, hashlib.sha256).digest()
    if alg == "none":
        return b""
    raise AssertionError(alg)


def forge(header: object, payload: bytes, alg: str, key: Any, *, raw_header: bytes | None = None) -> str:
    head = raw_header if raw_header is not None else json.dumps(header).encode()
    signing_input = f"{b64url(head)}.{b64url(payload)}".encode()
    return f"{signing_input.decode()}.{b64url(raw_sign(alg, key, signing_input))}"


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    return {alg: new_key(alg) for alg in ALGS}


# -- round trips -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_round_trip_for_every_allowed_alg(keys: dict[str, Any], alg: str) -> None:
    key = keys[alg]
    assert signing.alg_for_key(key) == alg
    assert signing.alg_for_key(key.public_key()) == alg
    token = signing.sign_compact(b'{"hello":"world"}', key, headers={"typ": "test+jws", "kid": "k1"})
    header, payload = signing.verify_compact(token, key.public_key())
    assert header == {"alg": alg, "typ": "test+jws", "kid": "k1"}
    assert payload == b'{"hello":"world"}'


@pytest.mark.parametrize("alg", ALGS)
def test_compact_signer_emits_what_sign_compact_emits_for_every_payload(keys: dict[str, Any], alg: str) -> None:
    key = keys[alg]
    headers = {"typ": "test+jws", "kid": "k1"}
    signer = signing.CompactSigner(key, headers=headers)
    reference = signing.sign_compact(b"{}", key, headers=headers)
    for payload in (b"", b"{}", b'{"n":1}', bytes(range(256))):
        token = signer.sign(payload)
        assert token.split(".")[0] == reference.split(".")[0]  # the same protected header segment
        header, body = signing.verify_compact(token, key.public_key())
        assert header == {"alg": alg, **headers}
        assert body == payload
    tampered = signer.sign(b'{"n":1}').replace(b64url(b'{"n":1}'), b64url(b'{"n":2}'))
    with pytest.raises(SignatureRejected):
        signing.verify_compact(tampered, key.public_key())


def test_compact_signer_refuses_what_sign_compact_refuses(keys: dict[str, Any]) -> None:
    with pytest.raises(AlgorithmNotAllowed):
        signing.CompactSigner(keys["ES256"], headers={"alg": "none"})
    with pytest.raises(SignatureRejected):
        signing.CompactSigner(keys["ES256"], headers={"jku": "https://example.org/keys"})


def test_no_implicit_typ(keys: dict[str, Any]) -> None:
    token = signing.sign_compact(b"x", keys["ES256"], headers={})
    assert signing.peek_header(token) == {"alg": "ES256"}


@settings(max_examples=40, deadline=None)
@given(payload=st.binary(max_size=2048), position=st.integers(min_value=0))
def test_any_payload_round_trips_and_any_flipped_signature_bit_fails(payload: bytes, position: int) -> None:
    key = _ES256_KEY
    token = signing.sign_compact(payload, key, headers={"typ": "t"})
    assert signing.verify_compact(token, key.public_key())[1] == payload
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[position % len(raw)] ^= 1 << (position % 8)
    with pytest.raises(SignatureRejected):
        signing.verify_compact(f"{head}.{body}.{b64url(bytes(raw))}", key.public_key())


_ES256_KEY = ec.generate_private_key(ec.SECP256R1())


def test_tampered_payload_is_rejected(keys: dict[str, Any]) -> None:
    token = signing.sign_compact(b'{"a":1}', keys["EdDSA"], headers={})
    head, _, sig = token.split(".")
    other = b64url(b'{"a":2}')
    with pytest.raises(SignatureRejected) as info:
        signing.verify_compact(f"{head}.{other}.{sig}", keys["EdDSA"].public_key())
    assert info.value.code == "SIGNATURE_INVALID"


# -- key types ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: ec.generate_private_key(ec.SECP384R1()),
        lambda: ec.generate_private_key(ec.SECP256K1()),
        lambda: rsa.generate_private_key(65537, 1024),
        ed448.Ed448PrivateKey.generate,
        lambda: b"a symmetric secret",
    ],
    ids=["P-384", "secp256k1", "RSA-1024", "Ed448", "bytes"],
)
def test_other_key_types_are_refused(make: Any) -> None:
    key = make()
    with pytest.raises(AlgorithmNotAllowed):
        signing.alg_for_key(key)
    with pytest.raises(AlgorithmNotAllowed):
        signing.sign_compact(b"x", key, headers={})


def test_alg_must_match_the_key(keys: dict[str, Any]) -> None:
    token = signing.sign_compact(b"x", keys["ES256"], headers={})
    for other in ("EdDSA", "PS256"):
        with pytest.raises(AlgorithmNotAllowed):
            signing.verify_compact(token, keys[other].public_key())


def test_ed448_key_cannot_verify_an_eddsa_token() -> None:
    ed448_key = ed448.Ed448PrivateKey.generate()
    token = forge({"alg": "EdDSA"}, b"x", "EdDSA", ed448_key)
    with pytest.raises(AlgorithmNotAllowed):
        signing.verify_compact(token, ed448_key.public_key())


def test_alg_cannot_be_passed_in_headers(keys: dict[str, Any]) -> None:
    with pytest.raises(AlgorithmNotAllowed):
        signing.sign_compact(b"x", keys["ES256"], headers={"alg": "none"})


# -- refused algorithms ---------------------------------------------------------------------------------


def test_none_is_refused(keys: dict[str, Any]) -> None:
    token = forge({"alg": "none"}, b"x", "none", None)
    with pytest.raises(AlgorithmNotAllowed) as info:
        signing.verify_compact(token, keys["ES256"].public_key())
    assert info.value.field == "jws.header.alg"


def test_hs256_with_the_public_key_as_secret_is_refused() -> None:
    """The classic confusion attack: HMAC keyed with the verifier's public key (PEM and DER)."""
    key = rsa_key_for_confusion = new_key("PS256")
    public = rsa_key_for_confusion.public_key()
    for secret in (
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
    ):
        token = forge({"alg": "HS256", "typ": "JWT"}, b'{"sub":"admin"}', "HS256", secret)
        with pytest.raises(AlgorithmNotAllowed):
            signing.verify_compact(token, public)
        with pytest.raises(AlgorithmNotAllowed):
            signing.peek_header(token)
    assert key is not None


@pytest.mark.parametrize(
    ("alg", "make"),
    [
        ("RS256", lambda: new_key("PS256")),
        ("ES384", lambda: ec.generate_private_key(ec.SECP384R1())),
        ("HS256", lambda: b"secret"),
    ],
)
def test_well_formed_tokens_with_other_algs_are_refused(alg: str, make: Any) -> None:
    key = make()
    token = forge({"alg": alg}, b"x", alg, key)
    public = key.public_key() if hasattr(key, "public_key") else new_key("ES256").public_key()
    with pytest.raises(AlgorithmNotAllowed):
        signing.verify_compact(token, public)


@pytest.mark.parametrize("header", [{}, {"alg": None}, {"alg": 256}, {"alg": "es256"}, {"alg": "FOO"}, {"alg": ""}])
def test_missing_wrong_type_or_unknown_alg_is_refused(keys: dict[str, Any], header: dict[str, Any]) -> None:
    token = forge(header, b"x", "ES256", keys["ES256"])
    with pytest.raises(SignatureRejected):  # AlgorithmNotAllowed is a SignatureRejected
        signing.peek_header(token)


# -- header strictness -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("crit", ["exp"]),
        ("jku", "https://evil.example/jwks"),
        ("jwk", {"kty": "EC"}),
        ("x5u", "https://evil.example/cert"),
        ("b64", False),
        ("zip", "DEF"),
        ("foo", "bar"),
    ],
)
def test_dangerous_or_unknown_header_parameters_are_refused(keys: dict[str, Any], name: str, value: object) -> None:
    token = forge({"alg": "ES256", name: value}, b"x", "ES256", keys["ES256"])
    with pytest.raises(SignatureRejected) as info:
        signing.verify_compact(token, keys["ES256"].public_key())
    assert info.value.field == f"jws.header.{name}"
    with pytest.raises(SignatureRejected):
        signing.sign_compact(b"x", keys["ES256"], headers={name: value})


@pytest.mark.parametrize(("name", "value"), [("typ", 1), ("kid", ["a"]), ("x5c", "MIIB"), ("cty", None)])
def test_header_parameter_types_are_checked(keys: dict[str, Any], name: str, value: object) -> None:
    token = forge({"alg": "ES256", name: value}, b"x", "ES256", keys["ES256"])
    with pytest.raises(SignatureRejected) as info:
        signing.peek_header(token)
    assert info.value.field == f"jws.header.{name}"


def test_overlong_header_string_is_a_limit(keys: dict[str, Any]) -> None:
    token = forge({"alg": "ES256", "kid": "k" * 129}, b"x", "ES256", keys["ES256"])
    with pytest.raises(LimitExceeded):
        signing.peek_header(token)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"alg":"ES256","alg":"ES256"}',
        b'{"alg":"ES256","kid":"a","kid":"b"}',
        b'["alg","ES256"]',
        b'{"alg":"ES256","kid":NaN}',
        b'{"alg":"ES256"',
        b"\xff\xfe",
        b"",
    ],
)
def test_header_json_is_strict(keys: dict[str, Any], raw: bytes) -> None:
    token = forge(None, b"x", "ES256", keys["ES256"], raw_header=raw)
    with pytest.raises(SignatureRejected) as info:
        signing.peek_header(token)
    assert info.value.field == "jws.header"


def test_compact_form_is_strict(keys: dict[str, Any]) -> None:
    token = signing.sign_compact(b"x", keys["ES256"], headers={})
    head, body, sig = token.split(".")
    for bad in (
        f"{head}.{body}",
        f"{head}.{body}.{sig}.{sig}",
        f"{head}=.{body}.{sig}",  # padding
        f"{head[:-1]}+.{body}.{sig}",  # not base64url
        f"{head} .{body}.{sig}",
        f"{head}.{body}.{sig}\u00e9",
    ):
        with pytest.raises(SignatureRejected):
            signing.verify_compact(bad, keys["ES256"].public_key())
    with pytest.raises(SignatureRejected):
        signing.peek_header(123)  # type: ignore[arg-type]


def test_non_canonical_base64url_is_refused(keys: dict[str, Any]) -> None:
    # b"{}" encodes as "e30"; "e31" decodes to the same bytes but sets unused bits.
    token = f"e31.{b64url(b'x')}.{b64url(b'sig')}"
    with pytest.raises(SignatureRejected):
        signing.peek_header(token)


def test_token_length_limit(keys: dict[str, Any]) -> None:
    with pytest.raises(LimitExceeded):
        signing.peek_header("a" * (signing.MAX_TOKEN_CHARS + 1))
    big = {"alg": "ES256", "kid": "k", "x": "y" * (signing.MAX_HEADER_BYTES + 10)}
    with pytest.raises(LimitExceeded):
        signing.peek_header(forge(big, b"", "ES256", keys["ES256"]))


# -- x5c limits -----------------------------------------------------------------------------------------

_CERT = base64.b64encode(b"\x30\x82" + bytes(500)).decode()


@pytest.mark.parametrize(
    ("x5c", "error", "field"),
    [
        ([], LimitExceeded, "jws.header.x5c"),
        ([_CERT] * 5, LimitExceeded, "jws.header.x5c"),
        (
            [base64.b64encode(bytes(signing.MAX_CERT_DER_BYTES + 1)).decode()],
            LimitExceeded,
            "jws.header.x5c[0]",
        ),
        ([_CERT, 7], SignatureRejected, "jws.header.x5c[1]"),
        (["not base64!"], SignatureRejected, "jws.header.x5c[0]"),
        ([_CERT.rstrip("=")], SignatureRejected, "jws.header.x5c[0]"),
        (["-_-_"], SignatureRejected, "jws.header.x5c[0]"),  # base64url is not what RFC 7515 says
        ([""], SignatureRejected, "jws.header.x5c[0]"),
    ],
)
def test_x5c_limits(keys: dict[str, Any], x5c: list[Any], error: type[Exception], field: str) -> None:
    token = forge({"alg": "ES256", "x5c": x5c}, b"x", "ES256", keys["ES256"])
    with pytest.raises(error) as info:
        signing.peek_header(token)
    assert getattr(info.value, "field", None) == field


def test_x5c_at_the_limit_is_accepted_and_decoded(keys: dict[str, Any]) -> None:
    certs = [bytes([i]) * signing.MAX_CERT_DER_BYTES for i in range(signing.MAX_X5C_ENTRIES)]
    x5c = [base64.b64encode(c).decode() for c in certs]
    token = signing.sign_compact(b"x", keys["ES256"], headers={"x5c": x5c})
    header, _ = signing.verify_compact(token, keys["ES256"].public_key())
    assert signing.header_x5c(header) == tuple(certs)
    with pytest.raises(SignatureRejected):
        signing.header_x5c({"alg": "ES256"})


# -- raw verifiers and strict JSON ------------------------------------------------------------------------


def test_verify_raw_checks_alg_and_key(keys: dict[str, Any]) -> None:
    sig = raw_sign("ES256", keys["ES256"], b"m")
    signing.verify_raw("ES256", keys["ES256"].public_key(), b"m", sig)
    with pytest.raises(SignatureRejected):
        signing.verify_raw("ES256", keys["ES256"].public_key(), b"n", sig)
    with pytest.raises(AlgorithmNotAllowed):
        signing.verify_raw("ES384", keys["ES256"].public_key(), b"m", sig)
    with pytest.raises(AlgorithmNotAllowed):
        signing.verify_raw("EdDSA", keys["ES256"].public_key(), b"m", sig)
    with pytest.raises(SignatureRejected):
        signing.verify_raw("ES256", keys["ES256"].public_key(), b"m", sig + b"\x00")
    der = keys["ES256"].sign(b"m", ec.ECDSA(hashes.SHA256()))
    signing.verify_raw_der(keys["ES256"].public_key(), b"m", der)
    for bad in (der + b"\x00", der[:-1], b"", b"\x30\x00"):
        with pytest.raises(SignatureRejected):
            signing.verify_raw_der(keys["ES256"].public_key(), b"m", bad)


def test_parse_json_object_raises_the_given_error() -> None:
    assert signing.parse_json_object(b'{"a":[1,{"b":2}]}', error=HeaderInvalid) == {"a": [1, {"b": 2}]}
    with pytest.raises(HeaderInvalid) as info:
        signing.parse_json_object(b'{"a":{"b":1,"b":2}}', error=HeaderInvalid, field="here")
    assert info.value.field == "here"
    for raw in (b"[1]", b"1", b'{"a":Infinity}', b"{" * 100_000):
        with pytest.raises(HeaderInvalid):
            signing.parse_json_object(raw, error=HeaderInvalid)


def test_ed25519_public_key_type_alias() -> None:
    assert signing.alg_for_key(ed25519.Ed25519PrivateKey.generate().public_key()) == "EdDSA"


# -- remembered protected headers (gateway.core.signing) ---------------------------------------------------


def test_a_remembered_header_is_still_checked_per_token_and_cannot_be_changed_through_a_copy(
    keys: dict[str, Any],
) -> None:
    key = keys["ES256"]
    token = signing.sign_compact(b"{}", key, headers={"typ": "test+jws", "kid": "k1"})
    first = signing.peek_header(token)
    first["kid"] = "changed"  # a caller's copy
    assert signing.peek_header(token) == {"alg": "ES256", "typ": "test+jws", "kid": "k1"}
    head, body, sig = token.split(".")
    with pytest.raises(SignatureRejected):  # the same (remembered) header, but four segments
        signing.peek_header(f"{head}.{body}.{sig}.x")
    with pytest.raises(SignatureRejected):  # ... or a non-ASCII token
        signing.peek_header(f"{head}.{body}é.{sig}")
    with pytest.raises(LimitExceeded):
        signing.peek_header(f"{head}.{'A' * signing.MAX_TOKEN_CHARS}.{sig}")


def test_a_refused_header_is_refused_every_time(keys: dict[str, Any]) -> None:
    bad = forge({"alg": "ES256", "jku": "https://keys.example"}, b"{}", "ES256", keys["ES256"])
    for _ in range(3):
        with pytest.raises(SignatureRejected):
            signing.peek_header(bad)
    assert bad.split(".")[0] not in signing._READ


def test_es256_signatures_of_the_wrong_length_or_value_are_refused(keys: dict[str, Any]) -> None:
    key = keys["ES256"]
    token = signing.sign_compact(b'{"n":1}', key, headers={})
    head, body, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "==")
    for forged in (raw[:-1], raw + b"\0", b"\0" * 64, raw[:32] + b"\xff" * 32):
        with pytest.raises(SignatureRejected):
            signing.verify_compact(f"{head}.{body}.{b64url(forged)}", key.public_key())
    assert signing.verify_compact(token, key.public_key())[1] == b'{"n":1}'


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="AQgw09_-+/=. é\n", max_size=12))
def test_base64url_segments_one_spelling_each(segment: str) -> None:
    # Taken exactly when the segment is unpadded base64url in its one canonical spelling; the error says which.
    spelled = all(c.isascii() and (c.isalnum() or c in "_-") for c in segment) and len(segment) % 4 != 1
    padded = segment + "=" * (-len(segment) % 4)
    if spelled and signing.b64url_encode(base64.urlsafe_b64decode(padded)) == segment:
        assert signing.b64url_encode(signing._b64url_decode(segment, "payload")) == segment
        return
    reason = "not canonical base64url" if spelled else "not unpadded base64url"
    with pytest.raises(SignatureRejected, match=reason) as info:
        signing._b64url_decode(segment, "payload")
    assert info.value.field == "jws.payload"
