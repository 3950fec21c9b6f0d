"""C2SP signed-note checkpoints: round trip, tampering, key ids, foreign signatures, strict parsing."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import checkpoint as cpmod
from gateway.core.checkpoint import (
    Checkpoint,
    key_id,
    parse_verifier_key,
    sign_checkpoint,
    verifier_key_string,
    verify_checkpoint,
)
from gateway.core.errors import GatewayError, LimitExceeded, ProofInvalid, SignatureRejected
from gateway.core.merkle import MerkleTree, leaf_hash

NAME = "cgw.cn-gacc.example/ledger"
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
ROOT = MerkleTree(leaf_hash(bytes([i])) for i in range(7)).root()
CP = Checkpoint(origin=NAME, size=7, root=ROOT)
URLSAFE_ROOT = base64.urlsafe_b64encode(b"\xff" * 32).decode()


def raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def signed() -> bytes:
    return sign_checkpoint(CP, NAME, KEY)


def test_round_trip_and_exact_format() -> None:
    note = signed()
    body, _, sig_line = note.decode().partition("\n\n")
    assert body == f"{NAME}\n7\n{base64.b64encode(ROOT).decode()}"
    assert sig_line.startswith(f"\u2014 {NAME} ")
    assert sig_line.endswith("\n")
    blob = base64.b64decode(sig_line.split(" ")[2])
    assert len(blob) == 4 + 64
    assert blob[:4] == key_id(NAME, KEY.public_key())
    KEY.public_key().verify(blob[4:], (body + "\n").encode())  # signature covers the body incl. final newline
    assert verify_checkpoint(note, NAME, KEY.public_key()) == CP
    assert verify_checkpoint(note, NAME, KEY.public_key(), origin=NAME) == CP


@settings(max_examples=30, deadline=None)
@given(
    origin=st.from_regex(r"[a-z0-9./-]{1,40}", fullmatch=True),
    size=st.integers(0, 2**63 - 1),
    root=st.binary(min_size=32, max_size=32),
)
def test_round_trip_property(origin: str, size: int, root: bytes) -> None:
    cp = Checkpoint(origin, size, root)
    assert verify_checkpoint(sign_checkpoint(cp, NAME, KEY), NAME, KEY.public_key()) == cp


def test_key_id_follows_the_spec_rule() -> None:
    expected = hashlib.sha256(NAME.encode() + b"\x0a" + b"\x01" + raw(KEY)).digest()[:4]
    assert key_id(NAME, KEY.public_key()) == expected
    vkey = verifier_key_string(NAME, KEY.public_key())
    encoded_key = base64.b64encode(b"\x01" + raw(KEY)).decode()
    assert vkey == f"{NAME}+{expected.hex()}+{encoded_key}"
    name, public = parse_verifier_key(vkey)
    assert name == NAME
    assert raw_public(public) == raw(KEY)


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.mark.parametrize(
    ("vkey", "name", "hex_id"),
    [
        # the Go checksum database's published note verifier key
        ("sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8", "sum.golang.org", "033de0ae"),
        # golang.org/x/mod sumdb/note test keys (the second one has a "+" inside its base64)
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "PeterNeumann", "c74f20a3"),
        ("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6", "TEST", "7997405c"),
    ],
)
def test_key_id_matches_published_verifier_keys(vkey: str, name: str, hex_id: str) -> None:
    parsed_name, public = parse_verifier_key(vkey)
    assert parsed_name == name
    assert key_id(name, public).hex() == hex_id
    assert verifier_key_string(name, public) == vkey


GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_SIGNATURE = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="


def test_note_signed_by_the_go_reference_implementation() -> None:
    # the example note of golang.org/x/mod/sumdb/note: its signature verifies through our envelope code, then
    # the body is refused only because it is prose, not a checkpoint
    name, public = parse_verifier_key("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    note = f"{GO_TEXT}\n\u2014 PeterNeumann {GO_SIGNATURE}\n".encode()
    with pytest.raises(ProofInvalid) as caught:
        verify_checkpoint(note, name, public)
    assert caught.value.field == "note.body"
    with pytest.raises(SignatureRejected):
        verify_checkpoint(note.replace(b"cryptography", b"cryptographY"), name, public)


def test_verifier_key_with_wrong_id_is_refused() -> None:
    vkey = verifier_key_string(NAME, KEY.public_key())
    name, _, rest = vkey.partition("+")
    with pytest.raises(ProofInvalid):
        parse_verifier_key(f"{name}+00000000+{rest.partition('+')[2]}")


def replace_body_line(note: bytes, number: int, value: str) -> bytes:
    body, sep, sigs = note.decode().partition("\n\n")
    lines = body.split("\n")
    lines[number] = value
    return ("\n".join(lines) + sep + sigs).encode()


@pytest.mark.parametrize(
    ("number", "value"),
    [
        (0, "cgw.nl-douane.example/ledger"),  # origin
        (1, "8"),  # size
        (1, "6"),
        (2, base64.b64encode(bytes(32)).decode()),  # root
    ],
)
def test_tampered_body_fails(number: int, value: str) -> None:
    with pytest.raises(SignatureRejected):
        verify_checkpoint(replace_body_line(signed(), number, value), NAME, KEY.public_key())


def test_wrong_key_fails() -> None:
    with pytest.raises(SignatureRejected):
        verify_checkpoint(signed(), NAME, OTHER.public_key())
    with pytest.raises(SignatureRejected):
        verify_checkpoint(signed(), "other.example/ledger", KEY.public_key())


def test_extra_signature_by_another_key_still_verifies() -> None:
    note = signed()
    body = note[: note.index(b"\n\n") + 1]
    witness = "witness.nl-douane.example"
    blob = key_id(witness, OTHER.public_key()) + OTHER.sign(body)
    line = f"\u2014 {witness} {base64.b64encode(blob).decode()}\n".encode()
    assert verify_checkpoint(note + line, NAME, KEY.public_key()) == CP
    # foreign signature first, ours second: order does not matter
    ours = note[len(body) + 1 :]
    assert verify_checkpoint(body + b"\n" + line + ours, NAME, KEY.public_key()) == CP
    # a same-name signature with another key id is someone else's key: ignored, not fatal
    impostor = key_id(NAME, OTHER.public_key()) + OTHER.sign(body)
    extra = f"\u2014 {NAME} {base64.b64encode(impostor).decode()}\n".encode()
    assert verify_checkpoint(note + extra, NAME, KEY.public_key()) == CP
    # only foreign signatures: refused
    with pytest.raises(SignatureRejected):
        verify_checkpoint(body + b"\n" + line, NAME, KEY.public_key())


def test_bad_signature_claiming_our_key_rejects_the_note() -> None:
    note = signed()
    body = note[: note.index(b"\n\n") + 1]
    forged = key_id(NAME, KEY.public_key()) + OTHER.sign(body)
    line = f"\u2014 {NAME} {base64.b64encode(forged).decode()}\n".encode()
    with pytest.raises(SignatureRejected):
        verify_checkpoint(note + line, NAME, KEY.public_key())


def resign(body: bytes) -> bytes:
    blob = key_id(NAME, KEY.public_key()) + KEY.sign(body)
    return body + f"\n\u2014 {NAME} {base64.b64encode(blob).decode()}\n".encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (f"{NAME}\n007\n{base64.b64encode(ROOT).decode()}\n", "note.size"),  # leading zeros
        (f"{NAME}\n-7\n{base64.b64encode(ROOT).decode()}\n", "note.size"),
        (f"{NAME}\n{2**63}\n{base64.b64encode(ROOT).decode()}\n", "note.size"),
        (f"{NAME}\n\u0667\n{base64.b64encode(ROOT).decode()}\n", "note.size"),  # non-ASCII digit
        (f"{NAME}\n7\n{base64.b64encode(ROOT[:31]).decode()}\n", "note.root"),
        (f"{NAME}\n7\n{base64.b64encode(ROOT).decode().rstrip('=')}\n", "note.root"),  # unpadded
        (f"{NAME}\n7\n{URLSAFE_ROOT}\n", "note.root"),  # url-safe alphabet
        (f"{NAME}\n7\n{base64.b64encode(ROOT).decode()}\nextension\n", "note.body"),
        (f"{NAME}\n7\n", "note.body"),
        (f"bad origin\n7\n{base64.b64encode(ROOT).decode()}\n", "note.origin"),
        (f"a+b\n7\n{base64.b64encode(ROOT).decode()}\n", "note.origin"),
        (f"{'x' * 256}\n7\n{base64.b64encode(ROOT).decode()}\n", "note.origin"),
    ],
)
def test_signed_but_malformed_body_is_refused(body: str, field: str) -> None:
    with pytest.raises(ProofInvalid) as caught:
        verify_checkpoint(resign(body.encode()), NAME, KEY.public_key())
    assert caught.value.field == field


def test_non_canonical_base64_trailing_bits_refused() -> None:
    text = base64.b64encode(ROOT).decode()
    assert text.endswith("=")
    # flip the unused low bits of the last significant character: decodes to the same bytes, not canonical
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(text[-2]) ^ 1]
    sloppy = text[:-2] + last + "="
    assert base64.b64decode(sloppy) == ROOT
    with pytest.raises(ProofInvalid):
        verify_checkpoint(resign(f"{NAME}\n7\n{sloppy}\n".encode()), NAME, KEY.public_key())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda n: n[:-1],  # no final newline
        lambda n: n.replace(b"\n\n", b"\n"),  # no blank line
        lambda n: n.replace("\u2014".encode(), b"-"),  # ascii dash instead of em dash
        lambda n: n.replace(b"\n\n", b"\r\n\n"),  # control character
        lambda n: n + b"\xff",  # not UTF-8
        lambda n: n[: n.index(b"\n\n") + 2],  # no signature lines
        lambda n: n.replace(b" ", b"  ", 1),  # double space in the signature line
        lambda n: n[:-2] + b"!\n",  # base64 garbage
    ],
)
def test_malformed_envelope_is_refused(mutate: object) -> None:
    assert callable(mutate)
    with pytest.raises(GatewayError):
        verify_checkpoint(mutate(signed()), NAME, KEY.public_key())


def test_limits() -> None:
    note = signed()
    with pytest.raises(LimitExceeded):
        verify_checkpoint(note + b"x" * cpmod.MAX_NOTE_BYTES, NAME, KEY.public_key())
    body = note[: note.index(b"\n\n") + 1]
    line = note[len(body) + 1 :]
    many = body + b"\n" + line * (cpmod.MAX_SIGNATURES + 1)
    with pytest.raises(LimitExceeded):
        verify_checkpoint(many, NAME, KEY.public_key())
    # exactly the limit is fine
    assert verify_checkpoint(body + b"\n" + line * cpmod.MAX_SIGNATURES, NAME, KEY.public_key()) == CP


def test_origin_guard() -> None:
    with pytest.raises(ProofInvalid):
        verify_checkpoint(signed(), NAME, KEY.public_key(), origin="cgw.us-cbp.example/ledger")


@pytest.mark.parametrize(
    ("cp", "key_name"),
    [
        (Checkpoint("has space", 1, ROOT), NAME),
        (Checkpoint(NAME, -1, ROOT), NAME),
        (Checkpoint(NAME, 1, ROOT[:16]), NAME),
        (CP, "bad+name"),
        (CP, ""),
    ],
)
def test_signing_refuses_invalid_values(cp: Checkpoint, key_name: str) -> None:
    with pytest.raises(ProofInvalid):
        sign_checkpoint(cp, key_name, KEY)
