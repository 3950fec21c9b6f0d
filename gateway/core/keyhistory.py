"""Checkpoint key rotation: the published key history, and the ledger events that say when each key took over.

Rule 1: the history is what an auditor trusts, taken from the federation files, never from the gateway being
        audited: ``checkpoint.keys``, one base64 raw Ed25519 public key per line (the ``checkpoint.pub``
        format), oldest first, the key in use now last. Every key's signed-note name is the log's origin.
Rule 2: a rotation is an ``admin`` ledger event ``{"action": "checkpoint_key_rotated", "old_key", "new_key"}``
        naming both keys as C2SP verifier key strings (``<name>+<key id>+<key>``). The gateway records it
        before it signs anything with the new key, so the first checkpoint by the new key covers it.
Rule 3: the key in force for a checkpoint of size N is the history's first key, moved on by every rotation
        event among the first N entries. A rotation must start from the key in force and end at a key of the
        history; one naming the key already in force as its new key (two processes of one shared ledger
        recording the same rotation) changes nothing.
Rule 4: a checkpoint is accepted only when signed by the key in force at its size: a key outside the history
        is refused, and so is a history key out of its time (the old key after the rotation: exactly what an
        attacker holding a retired key would try; the new key before it).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.checkpoint import key_id, verifier_key_string
from gateway.core.errors import Invalid, LimitExceeded, ProofInvalid, SignatureRejected

MAX_KEYS = 64  # a key rotated monthly for five years; a longer history is a broken file, not a real one
ROTATION_ACTION = "checkpoint_key_rotated"
# RFC 8785 sorts keys, and "action" sorts before "at", "event", "new_key" and "old_key": every rotation leaf
# starts with these bytes, so one prefix compare (not a search) passes over all the other leaves.
_PREFIX = b'{"action":"checkpoint_key_rotated",'
_PUBLIC = "the checkpoint signature could not be verified"


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """One history line / the ``checkpoint.pub`` content: base64 of the raw 32-byte key."""
    return base64.b64encode(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def parse_public_key(text: str, field_path: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise Invalid("not standard base64", field=field_path) from exc
    if len(raw) != 32:
        raise Invalid(f"an Ed25519 public key is 32 bytes, not {len(raw)}", field=field_path)
    return Ed25519PublicKey.from_public_bytes(raw)


@dataclass(frozen=True, slots=True)
class KeyHistory:
    """Every checkpoint key of one log (signed-note name ``name``), oldest first; ``keys[-1]`` is in use."""

    name: str
    keys: tuple[Ed25519PublicKey, ...]
    vkeys: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise Invalid("the checkpoint key history is empty", field="checkpoint.keys")
        if len(self.keys) > MAX_KEYS:
            raise LimitExceeded(f"more than {MAX_KEYS} checkpoint keys", field="checkpoint.keys")
        vkeys = tuple(verifier_key_string(self.name, key) for key in self.keys)
        ids = [key_id(self.name, key) for key in self.keys]
        if len(set(ids)) != len(ids):  # a repeated key, or two keys sharing a 4-byte id: ambiguous
            raise Invalid("the checkpoint key history lists a key id twice", field="checkpoint.keys")
        object.__setattr__(self, "vkeys", vkeys)

    @property
    def current(self) -> Ed25519PublicKey:
        return self.keys[-1]

    def key_id_of(self, vkey: str) -> bytes:
        return key_id(self.name, self.keys[self.vkeys.index(vkey)])

    def rotated(self, new: Ed25519PublicKey) -> KeyHistory:
        return KeyHistory(self.name, (*self.keys, new))


def parse_key_history(text: str, name: str) -> KeyHistory:
    """The history file (Rule 1): non-empty lines, each a base64 raw Ed25519 key."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > MAX_KEYS:
        raise LimitExceeded(f"more than {MAX_KEYS} checkpoint keys", field="checkpoint.keys")
    return KeyHistory(name, tuple(parse_public_key(line, f"checkpoint.keys[{i}]") for i, line in enumerate(lines)))


def history_text(history: KeyHistory) -> str:
    return "".join(public_key_text(key) + "\n" for key in history.keys)


def rotation_event(old_vkey: str, new_vkey: str, at: datetime) -> AuditEvent:
    """The ledger event of Rule 2."""
    return AuditEvent(EventKind.ADMIN, at, {"action": ROTATION_ACTION, "old_key": old_vkey, "new_key": new_vkey})


def parse_rotation(data: bytes, index: int) -> tuple[str, str] | None:
    """(old, new) verifier keys when leaf ``data`` is a rotation event, else None (most leaves: one compare)."""
    if not data.startswith(_PREFIX):
        return None
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise ProofInvalid(f"first bad index {index}: not JSON", field=f"entries[{index}]") from exc
    if not isinstance(value, dict) or value.get("event") != EventKind.ADMIN or value.get("action") != ROTATION_ACTION:
        return None  # the words appear inside some other event's value
    old, new = value.get("old_key"), value.get("new_key")
    if not isinstance(old, str) or not isinstance(new, str):
        raise ProofInvalid(f"first bad index {index}: rotation without old_key/new_key", field=f"entries[{index}]")
    return old, new


class KeyInForce:
    """Walks a ledger in index order and knows which key must sign a checkpoint of the size reached (Rule 3)."""

    def __init__(self, history: KeyHistory) -> None:
        self._history = history
        self.vkey = history.vkeys[0]
        self.rotations = 0

    def apply(self, index: int, data: bytes) -> None:
        rotation = parse_rotation(data, index)
        if rotation is None:
            return
        old, new = rotation
        if new == self.vkey:
            return  # the same rotation recorded twice
        if old != self.vkey:
            raise ProofInvalid(
                f"first bad index {index}: rotation from {old}, but {self.vkey} is in force",
                field=f"entries[{index}].old_key",
            )
        if new not in self._history.vkeys:
            raise SignatureRejected(
                f"first bad index {index}: rotation to {new}, which is not in the published key history",
                field=f"entries[{index}].new_key",
                public=_PUBLIC,
            )
        self.vkey = new
        self.rotations += 1

    def check_signer(self, signers: frozenset[bytes], size: int) -> None:
        """Rule 4: one of the note's verified signatures must be by the key in force at ``size``."""
        if self._history.key_id_of(self.vkey) in signers:
            return
        names = ", ".join(v for v in self._history.vkeys if self._history.key_id_of(v) in signers)
        raise SignatureRejected(
            f"the checkpoint of size {size} is signed by {names}, but the ledger says {self.vkey} was in force",
            field="note.signatures",
            public=_PUBLIC,
        )
