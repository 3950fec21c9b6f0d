"""Witness cosignatures: C2SP ``tlog-cosignature`` (Ed25519, ``cosignature/v1``) over C2SP checkpoints.

A witness that has checked a log's checkpoint for consistency adds one signature line to the log's signed
note; a checkpoint with several witnesses' lines is a *cosigned* checkpoint::

    <origin>\\n<size>\\n<base64 root>\\n
    \\n
    — <origin> <base64(key id || log signature)>
    — <witness name> <base64(key id || 8-byte time || 64-byte Ed25519 signature)>

Rule 1: the key id is ``SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 key)[:4]`` (signature type 0x04), so a
        witness key can never pass as a log key (type 0x01) of the same name, nor the reverse.
Rule 2: the signature field is ``timestamped_signature``: the cosigning time as a big-endian u64 of POSIX
        seconds, then the 64-byte Ed25519 signature; the signed message is the line ``cosignature/v1``, the line
        ``time <seconds>``, then the whole checkpoint body with its final newline (no signature lines).
Rule 3: the message does not commit to the witness name: one key per witness; a witness is identified by its
        (name, key) pair, as in its verifier key ``<name>+<hex key id>+<base64(0x04 || key)>``.
Rule 4: verification is of the note as a whole: the log's own signature must verify first
        (``core.checkpoint``); then each witness we were given counts once if its line verifies; lines by other
        keys are ignored; a line that claims a given witness's name and key id but does not verify rejects the
        note (it is forged or corrupted, never silently dropped).
Rule 5: time is an argument (the core has no clock); a timestamp beyond :data:`MAX_TIMESTAMP` is refused.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.core.checkpoint import (
    KEY_ID_SIZE,
    SIGNATURE_PREFIX,
    Checkpoint,
    checkpoint_body,
    key_id,
    parse_verifier_key,
    split_note,
    verifier_key_string,
    verify_checkpoint_by_any,
)
from gateway.core.errors import ProofInvalid, SignatureRejected

COSIGNATURE_TYPE = b"\x04"  # signed-note signature type of an Ed25519 cosignature/v1 (C2SP tlog-cosignature)
COSIGNATURE_HEADER = b"cosignature/v1\n"
TIMESTAMP_SIZE = 8  # u64 big-endian POSIX seconds
ED25519_SIGNATURE_SIZE = 64
COSIGNATURE_SIZE = KEY_ID_SIZE + TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE
MAX_TIMESTAMP = 2**63 - 1  # the spec's u64, kept in the signed range other tools accept


@dataclass(frozen=True, slots=True)
class Witness:
    """A witness as an auditor or a log trusts it: its name and its Ed25519 cosignature key."""

    name: str
    key: Ed25519PublicKey

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.key, COSIGNATURE_TYPE)

    @property
    def vkey(self) -> str:
        return verifier_key_string(self.name, self.key, COSIGNATURE_TYPE)


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One verified cosignature: by whom, and the time it states."""

    witness: str  # the witness's verifier key (Rule 3)
    timestamp: int


def parse_witness_key(vkey: str) -> Witness:
    """A witness verifier key ``<name>+<hex key id>+<base64(0x04 || key)>`` (Rule 3), key id checked."""
    name, key = parse_verifier_key(vkey, COSIGNATURE_TYPE)
    return Witness(name, key)


def signed_message(body: bytes, timestamp: int) -> bytes:
    """Rule 2: the bytes a cosignature signs for the checkpoint ``body`` at ``timestamp``."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ProofInvalid(f"cosignature time outside 0..{MAX_TIMESTAMP}", field="cosignature.time")
    return COSIGNATURE_HEADER + f"time {timestamp}\n".encode("ascii") + body


def cosign(checkpoint: Checkpoint, name: str, key: Ed25519PrivateKey, timestamp: int) -> str:
    """The note signature line (``— <name> <base64>\\n``) of ``key``'s cosignature of ``checkpoint``."""
    witness = Witness(name, key.public_key())
    signature = key.sign(signed_message(checkpoint_body(checkpoint), timestamp))
    blob = witness.key_id + timestamp.to_bytes(TIMESTAMP_SIZE, "big") + signature
    return f"{SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode('ascii')}\n"


def verify_cosigned(
    note: bytes,
    log_name: str,
    log_keys: Sequence[Ed25519PublicKey],
    witnesses: Sequence[Witness],
    *,
    origin: str | None = None,
) -> tuple[Checkpoint, frozenset[bytes], tuple[Cosignature, ...]]:
    """Rule 4: the checkpoint, the key ids of the log keys that signed it, and the cosignatures that verify by
    ``witnesses`` (each at most once, in the order given)."""
    checkpoint, signers = verify_checkpoint_by_any(note, log_name, log_keys, origin=origin)
    body, lines = split_note(note)
    by_id = {(w.name, w.key_id): w for w in witnesses}
    found: dict[str, Cosignature] = {}
    for number, line in enumerate(lines):
        witness = by_id.get((line.key_name, line.key_id))
        if witness is None:
            continue
        field = f"note.signatures[{number}]"
        if len(line.signature) != TIMESTAMP_SIZE + ED25519_SIGNATURE_SIZE:
            raise SignatureRejected(f"cosignature by {witness.name} has the wrong length", field=field)
        timestamp = int.from_bytes(line.signature[:TIMESTAMP_SIZE], "big")
        try:
            witness.key.verify(line.signature[TIMESTAMP_SIZE:], signed_message(body, timestamp))
        except (InvalidSignature, ProofInvalid) as exc:
            raise SignatureRejected(
                f"cosignature by {witness.name} ({line.key_id.hex()}) does not verify",
                field=field,
                public="a checkpoint cosignature could not be verified",
            ) from exc
        found.setdefault(witness.vkey, Cosignature(witness.vkey, timestamp))
    ordered = tuple(found[w.vkey] for w in witnesses if w.vkey in found)
    return checkpoint, signers, ordered


def append_cosignatures(note: bytes, lines: Sequence[str]) -> bytes:
    """``note`` with the signature ``lines`` appended (each ``— <name> <base64>\\n``); a line by a key (name and
    key id) that already signed the note, or one of the earlier ``lines``, is skipped."""
    _, present = split_note(note)
    signers = {(line.key_name, line.key_id) for line in present}
    extra: list[str] = []
    for line in lines:
        _, added = split_note(b"x\n\n" + line.encode("utf-8"))
        if len(added) != 1:
            raise ProofInvalid("one signature line at a time", field="cosignature")
        signer = (added[0].key_name, added[0].key_id)
        if signer not in signers:
            signers.add(signer)
            extra.append(line)
    return note + "".join(extra).encode("utf-8")


def check_single_view(seen: Sequence[Checkpoint]) -> None:
    """No two checkpoints of one origin and size with different roots (a *split view*: the log showed one
    history to some and another to others). Raises ``ProofInvalid`` naming the size and both roots."""
    roots: dict[tuple[str, int], bytes] = {}
    for number, checkpoint in enumerate(seen):
        key = (checkpoint.origin, checkpoint.size)
        first = roots.setdefault(key, checkpoint.root)
        if first != checkpoint.root:
            raise ProofInvalid(
                f"split view: {checkpoint.origin} signed two roots for size {checkpoint.size}: "
                f"{base64.b64encode(first).decode()} and {base64.b64encode(checkpoint.root).decode()}",
                field=f"checkpoints[{number}]",
                public="split view: the log signed two different trees of the same size",
            )
