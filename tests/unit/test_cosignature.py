"""cosignature/v1 checked independently of the gateway: the key id, the signed message and the signature line are
built here byte by byte from the C2SP tlog-cosignature text (../shared/reference/standards.md), never by calling
gateway.core.cosignature, and verified with ``cryptography`` directly; and the reverse."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.core.checkpoint import Checkpoint, sign_checkpoint, verifier_key_string
from gateway.core.cosignature import (
    Witness,
    append_cosignatures,
    cosign,
    parse_witness_key,
    verify_cosigned,
)
from gateway.core.errors import ProofInvalid, SignatureRejected

ORIGIN = "cgw.cn-gacc.example/ledger"
WITNESS = "cgw.nl-douane.example/witness"
ROOT = hashlib.sha256(b"a root").digest()
TIME = 1_764_936_000


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _spec_body() -> bytes:
    # "origin, size, root hash ... with the final newline"
    return f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n".encode()


def _spec_message(seconds: int) -> bytes:
    # "the line cosignature/v1, the line time <seconds>, then the whole checkpoint body"
    return b"cosignature/v1\n" + b"time " + str(seconds).encode() + b"\n" + _spec_body()


def _spec_key_id(name: str, key: Ed25519PrivateKey) -> bytes:
    # "first 4 bytes of SHA-256(name || 0x0A || 0x04 || 32-byte public key)"
    return hashlib.sha256(name.encode() + b"\x0a" + b"\x04" + _raw(key)).digest()[:4]


def test_our_cosignature_verifies_with_the_spec_bytes_and_cryptography() -> None:
    log_key, witness_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    line = cosign(Checkpoint(ORIGIN, 42, ROOT), WITNESS, witness_key, TIME)
    assert line.startswith("\u2014 " + WITNESS + " ") and line.endswith("\n")
    blob = base64.b64decode(line.rstrip("\n").split(" ")[2], validate=True)
    assert len(blob) == 4 + 8 + 64
    assert blob[:4] == _spec_key_id(WITNESS, witness_key)
    (seconds,) = struct.unpack(">Q", blob[4:12])  # timestamped_signature: u64 big-endian, then the signature
    assert seconds == TIME
    witness_key.public_key().verify(blob[12:], _spec_message(TIME))  # raises InvalidSignature if not
    note = sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), ORIGIN, log_key)
    assert note.startswith(_spec_body() + b"\n")


def test_a_cosignature_built_from_the_spec_verifies_with_our_code() -> None:
    log_key, witness_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    note = sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), ORIGIN, log_key)
    blob = _spec_key_id(WITNESS, witness_key) + struct.pack(">Q", TIME) + witness_key.sign(_spec_message(TIME))
    cosigned = note + ("\u2014 " + WITNESS + " " + base64.b64encode(blob).decode() + "\n").encode()
    encoded_key = base64.b64encode(b"\x04" + _raw(witness_key)).decode()
    vkey = f"{WITNESS}+{_spec_key_id(WITNESS, witness_key).hex()}+{encoded_key}"
    witness = parse_witness_key(vkey)
    assert witness.vkey == vkey
    checkpoint, _, cosignatures = verify_cosigned(cosigned, ORIGIN, [log_key.public_key()], [witness], origin=ORIGIN)
    assert checkpoint == Checkpoint(ORIGIN, 42, ROOT)
    assert [(c.witness, c.timestamp) for c in cosignatures] == [(vkey, TIME)]


def _setup() -> tuple[Ed25519PrivateKey, bytes, list[tuple[Witness, Ed25519PrivateKey]]]:
    log_key = Ed25519PrivateKey.generate()
    note = sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), ORIGIN, log_key)
    witnesses = []
    for i in range(3):
        key = Ed25519PrivateKey.generate()
        witnesses.append((Witness(f"w{i}.example/witness", key.public_key()), key))
    return log_key, note, witnesses


def test_cosignatures_by_unknown_witnesses_are_ignored_and_each_witness_counts_once() -> None:
    log_key, note, witnesses = _setup()
    cp = Checkpoint(ORIGIN, 42, ROOT)
    lines = [cosign(cp, w.name, k, TIME + i) for i, (w, k) in enumerate(witnesses)]
    cosigned = append_cosignatures(note, [*lines, lines[0]])
    assert cosigned.count(lines[0].encode()) == 1  # the repeat is not appended
    known = [witnesses[0][0], witnesses[2][0]]
    _, _, found = verify_cosigned(cosigned, ORIGIN, [log_key.public_key()], known)
    assert [c.witness for c in found] == [w.vkey for w in known]


def test_a_cosignature_of_another_body_or_time_rejects_the_note() -> None:
    log_key, note, witnesses = _setup()
    witness, key = witnesses[0]
    other = cosign(Checkpoint(ORIGIN, 43, ROOT), witness.name, key, TIME)  # signed another size
    with pytest.raises(SignatureRejected):
        verify_cosigned(note + other.encode(), ORIGIN, [log_key.public_key()], [witness])
    blob = bytearray(base64.b64decode(cosign(Checkpoint(ORIGIN, 42, ROOT), witness.name, key, TIME).split(" ")[2]))
    blob[11] ^= 1  # the stated time changed: the signed message changes with it
    forged = f"\u2014 {witness.name} {base64.b64encode(bytes(blob)).decode()}\n".encode()
    with pytest.raises(SignatureRejected):
        verify_cosigned(note + forged, ORIGIN, [log_key.public_key()], [witness])


def test_a_witness_key_cannot_pass_as_a_log_key_of_the_same_name() -> None:
    key = Ed25519PrivateKey.generate()
    witness = Witness(ORIGIN, key.public_key())
    line = cosign(Checkpoint(ORIGIN, 42, ROOT), ORIGIN, key, TIME)
    note = sign_checkpoint(Checkpoint(ORIGIN, 42, ROOT), ORIGIN, Ed25519PrivateKey.generate()) + line.encode()
    with pytest.raises(SignatureRejected):  # the log's own signature is still required; the cosignature is not it
        verify_cosigned(note, ORIGIN, [key.public_key()], [witness])


def test_witness_vkeys_are_type_0x04() -> None:
    key = Ed25519PrivateKey.generate()
    vkey = Witness("w.example", key.public_key()).vkey
    assert base64.b64decode(vkey.split("+", 2)[2])[:1] == b"\x04"
    with pytest.raises(ProofInvalid):
        parse_witness_key(verifier_key_string("w.example", key.public_key()))  # a log key (type 0x01)
