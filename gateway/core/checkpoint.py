"""Signed tree heads: C2SP ``tlog-checkpoint`` bodies in C2SP ``signed-note`` envelopes, Ed25519 signatures.

A signed checkpoint looks like this (the body, one blank line, then one or more signature lines)::

    cgw.example/ledger
    1042
    <base64 of the 32-byte RFC 9162 root>

    — cgw.example/ledger <base64 of (4-byte key id || 64-byte Ed25519 signature)>

Rule 1: verify before parsing what was signed: the envelope is split and the signature checked over the exact
        body bytes first; only then are origin, size and root read from the body.
Rule 2: strict text: UTF-8, no control characters but newline, every limit below enforced before any work;
        base64 must be canonical standard base64 (RFC 4648 §4, padded), the size decimal has no leading zeros.
Rule 3: signatures from keys we were not given (another name *or* another key id) are ignored (signed-note
        spec); a signature that claims our name and key id but does not verify rejects the whole note;
        at least one valid signature by our key is required.
Rule 4: our checkpoints have exactly three body lines; extension lines are refused (the spec allows them but
        does not recommend them, and this log never writes them).
Rule 5: origin and key names are printable ASCII without space or ``+`` (the spec's recommendation, enforced).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.core.errors import LimitExceeded, ProofInvalid, SignatureRejected
from gateway.core.merkle import HASH_SIZE, MAX_TREE_SIZE

# the spec asks verifiers to accept at least 16 signatures and warns post-quantum ones reach ~5 kB each
MAX_NOTE_BYTES = 128 * 1024
MAX_SIGNATURES = 32  # twice the spec's floor of 16; every extra line is work an attacker chooses for us
MAX_NAME_LENGTH = 255  # origins and key names are schema-less URLs; nothing legitimate is longer
MAX_SIGNATURE_BYTES = 8 * 1024  # decoded key id + signature; covers the largest post-quantum signatures
BODY_LINES = 3  # origin, size, root (Rule 4)

ED25519_TYPE = b"\x01"  # signed-note signature type identifier for Ed25519
KEY_ID_SIZE = 4
ED25519_SIGNATURE_SIZE = 64
SIGNATURE_PREFIX = "\u2014 "  # em dash + space opens every signature line

_NAME = re.compile(rf"[!-*,-~]{{1,{MAX_NAME_LENGTH}}}")  # 0x21..0x7E without "+" (0x2B)
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")  # ASCII decimal, no leading zeros, below 10**19
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A tree head: the log's ``origin``, its ``size`` in leaves and the RFC 9162 ``root`` at that size."""

    origin: str
    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class SignatureLine:
    key_name: str
    key_id: bytes
    signature: bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, field: str) -> bytes:
    """Strict standard base64: alphabet, padding and canonical trailing bits (re-encoding must match)."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ProofInvalid("not standard base64", field=field) from exc
    if _b64(data) != text:
        raise ProofInvalid("not canonical base64", field=field)
    return data


def _check_name(name: str, field: str) -> None:
    if not _NAME.fullmatch(name):
        raise ProofInvalid(f"must be 1..{MAX_NAME_LENGTH} printable ASCII characters without space or '+'", field=field)


def _public_bytes(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key_name: str, public_key: Ed25519PublicKey, key_type: bytes = ED25519_TYPE) -> bytes:
    """The 4-byte signed-note key id: ``SHA-256(name || 0x0A || type || 32-byte key)[:4]`` (type 0x01 for a
    log's Ed25519 key, 0x04 for an Ed25519 witness cosignature key: ``core.cosignature``)."""
    material = key_name.encode("utf-8") + b"\n" + key_type + _public_bytes(public_key)
    return hashlib.sha256(material).digest()[:KEY_ID_SIZE]


def verifier_key_string(key_name: str, public_key: Ed25519PublicKey, key_type: bytes = ED25519_TYPE) -> str:
    """The ``<name>+<hex key id>+<base64(type || key)>`` text auditors put in their configuration."""
    _check_name(key_name, "key_name")
    encoded = _b64(key_type + _public_bytes(public_key))
    return f"{key_name}+{key_id(key_name, public_key, key_type).hex()}+{encoded}"


def parse_verifier_key(vkey: str, key_type: bytes = ED25519_TYPE) -> tuple[str, Ed25519PublicKey]:
    """The inverse of :func:`verifier_key_string`; checks the key type and that the embedded key id matches."""
    if len(vkey) > MAX_NAME_LENGTH + 64:
        raise LimitExceeded("verifier key too long", field="vkey")
    parts = vkey.split("+", 2)  # the base64 key itself may contain "+"
    if len(parts) != 3:
        raise ProofInvalid("expected <name>+<key id>+<key>", field="vkey")
    name, hex_id, encoded = parts
    _check_name(name, "vkey.name")
    raw = _unb64(encoded, "vkey.key")
    if len(raw) != 33 or raw[:1] != key_type:
        raise ProofInvalid(f"not an Ed25519 note verifier key of type 0x{key_type.hex()}", field="vkey.key")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    if not re.fullmatch(r"[0-9a-f]{8}", hex_id) or bytes.fromhex(hex_id) != key_id(name, public_key, key_type):
        raise ProofInvalid("key id does not match the name and key", field="vkey.id")
    return name, public_key


def checkpoint_body(checkpoint: Checkpoint) -> bytes:
    """The note body (origin, size, base64 root, each with its newline) that signatures cover."""
    _check_name(checkpoint.origin, "checkpoint.origin")
    if not 0 <= checkpoint.size <= MAX_TREE_SIZE:
        raise ProofInvalid(f"size outside 0..{MAX_TREE_SIZE}", field="checkpoint.size")
    if len(checkpoint.root) != HASH_SIZE:
        raise ProofInvalid(f"root must be {HASH_SIZE} bytes", field="checkpoint.root")
    return f"{checkpoint.origin}\n{checkpoint.size}\n{_b64(checkpoint.root)}\n".encode("ascii")


def sign_checkpoint(cp: Checkpoint, key_name: str, key: Ed25519PrivateKey) -> bytes:
    """The whole signed note (body, blank line, one signature line) for ``cp``, signed by ``key``."""
    _check_name(key_name, "key_name")
    body = checkpoint_body(cp)
    blob = key_id(key_name, key.public_key()) + key.sign(body)
    return body + f"\n{SIGNATURE_PREFIX}{key_name} {_b64(blob)}\n".encode()


def split_note(unverified_note: bytes) -> tuple[bytes, list[SignatureLine]]:
    """Body bytes and parsed signature lines of a signed note (nothing in the body is trusted yet)."""
    if len(unverified_note) > MAX_NOTE_BYTES:
        raise LimitExceeded(f"note larger than {MAX_NOTE_BYTES} bytes", field="note")
    try:
        text = unverified_note.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProofInvalid("note is not UTF-8", field="note") from exc
    if _CONTROL.search(text):
        raise ProofInvalid("note contains control characters", field="note")
    if not text.endswith("\n"):
        raise ProofInvalid("note does not end with a newline", field="note")
    cut = text.rfind("\n\n")
    if cut < 0:
        raise ProofInvalid("no blank line between body and signatures", field="note")
    body, block = text[: cut + 1], text[cut + 2 :]
    lines = block[:-1].split("\n") if block else []
    if not lines:
        raise ProofInvalid("note has no signature lines", field="note.signatures")
    if len(lines) > MAX_SIGNATURES:
        raise LimitExceeded(f"more than {MAX_SIGNATURES} signatures", field="note.signatures")
    return body.encode("utf-8"), [_parse_signature_line(line, i) for i, line in enumerate(lines)]


def _parse_signature_line(line: str, number: int) -> SignatureLine:
    field = f"note.signatures[{number}]"
    if not line.startswith(SIGNATURE_PREFIX):
        raise ProofInvalid("signature line must start with an em dash and a space", field=field)
    parts = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(parts) != 2:
        raise ProofInvalid("signature line must be '— <name> <base64>'", field=field)
    name, encoded = parts
    if not name or "+" in name or any(c.isspace() for c in name):
        raise ProofInvalid("key name must be non-empty, without spaces or '+'", field=field)
    if len(encoded) > MAX_SIGNATURE_BYTES * 4 // 3 + 4:
        raise LimitExceeded("signature too long", field=field)
    blob = _unb64(encoded, field)
    if len(blob) <= KEY_ID_SIZE:
        raise ProofInvalid("signature shorter than its key id", field=field)
    return SignatureLine(name, blob[:KEY_ID_SIZE], blob[KEY_ID_SIZE:])


def peek_origin(unverified_note: bytes) -> str:
    """The origin line of a note, read strictly but NOT verified: only to choose the keys to verify it with
    (a witness looks the log up by it); trust nothing in the note until a signature verified."""
    body, _ = split_note(unverified_note)
    origin = body.decode("utf-8").split("\n", 1)[0]
    _check_name(origin, "note.origin")
    return origin


def parse_body(body: bytes) -> Checkpoint:
    """Origin, size and root from verified body bytes (Rule 4: exactly three non-empty lines)."""
    lines = body.decode("utf-8")[:-1].split("\n")
    if len(lines) != BODY_LINES:
        raise ProofInvalid(f"checkpoint body must have {BODY_LINES} lines, has {len(lines)}", field="note.body")
    origin, size_text, root_text = lines
    _check_name(origin, "note.origin")
    if not _SIZE.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
        raise ProofInvalid("tree size must be a decimal without leading zeros", field="note.size")
    root = _unb64(root_text, "note.root")
    if len(root) != HASH_SIZE:
        raise ProofInvalid(f"root hash must be {HASH_SIZE} bytes", field="note.root")
    return Checkpoint(origin=origin, size=int(size_text), root=root)


def verify_checkpoint(
    note: bytes, key_name: str, public_key: Ed25519PublicKey, *, origin: str | None = None
) -> Checkpoint:
    """The checkpoint in ``note`` once a signature by (``key_name``, ``public_key``) verifies over its body.

    ``origin``, when given, must equal the checkpoint's origin (guards against a checkpoint of another log
    signed with a shared key)."""
    checkpoint, _ = verify_checkpoint_by_any(note, key_name, (public_key,), origin=origin)
    return checkpoint


def verify_checkpoint_by_any(
    note: bytes, key_name: str, public_keys: Sequence[Ed25519PublicKey], *, origin: str | None = None
) -> tuple[Checkpoint, frozenset[bytes]]:
    """The checkpoint in ``note`` and the key ids of those of ``public_keys`` (all named ``key_name``) whose
    signatures verify over its body; at least one must (a log's key history: which one was in force at the
    checkpoint's size is for the caller to decide, see ``core.keyhistory``)."""
    _check_name(key_name, "key_name")
    body, signatures = split_note(note)
    wanted = {key_id(key_name, public_key): public_key for public_key in public_keys}
    verified: set[bytes] = set()
    for number, line in enumerate(signatures):
        public_key = wanted.get(line.key_id) if line.key_name == key_name else None
        if public_key is None:
            continue  # Rule 3: somebody else's signature (a witness, an unknown key): not ours to judge
        try:
            if len(line.signature) != ED25519_SIGNATURE_SIZE:
                raise InvalidSignature
            public_key.verify(line.signature, body)
        except InvalidSignature as exc:
            raise SignatureRejected(
                f"signature by {key_name} ({line.key_id.hex()}) does not verify",
                field=f"note.signatures[{number}]",
                public="the checkpoint signature could not be verified",
            ) from exc
        verified.add(line.key_id)
    if not verified:
        ids = ", ".join(sorted(k.hex() for k in wanted))
        raise SignatureRejected(
            f"no signature by {key_name} with a known key ({ids})",
            field="note.signatures",
            public="the checkpoint signature could not be verified",
        )
    checkpoint = parse_body(body)
    if origin is not None and checkpoint.origin != origin:
        raise ProofInvalid(f"checkpoint is for {checkpoint.origin!r}, expected {origin!r}", field="note.origin")
    return checkpoint, frozenset(verified)
