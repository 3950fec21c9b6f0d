"""Checkpoint key rotation in the offline audit: real Ed25519 keys, real signed notes, a real ledger with a
rotation event; old-key checkpoints verify up to the rotation, new-key ones after it, nothing else."""

from __future__ import annotations

import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.checkpoint import Checkpoint, sign_checkpoint, verifier_key_string
from gateway.core.errors import Invalid, LimitExceeded, ProofInvalid, SignatureRejected
from gateway.core.keyhistory import (
    MAX_KEYS,
    KeyHistory,
    history_text,
    parse_key_history,
    parse_rotation,
    rotation_event,
)
from gateway.core.ledgercheck import verify_ledger
from gateway.core.merkle import MerkleTree, leaf_hash
from tests.unit.test_ledgercheck import NAME, START, make_entries

OLD = Ed25519PrivateKey.from_private_bytes(b"\x11" * 32)
NEW = Ed25519PrivateKey.from_private_bytes(b"\x22" * 32)
UNRELATED = Ed25519PrivateKey.from_private_bytes(b"\x33" * 32)
OLD_V = verifier_key_string(NAME, OLD.public_key())
NEW_V = verifier_key_string(NAME, NEW.public_key())
ROTATED_AT = 10  # index of the rotation event


def ledger(*rotations: tuple[str, str]) -> list[tuple[int, bytes]]:
    """Ten events, the rotation event(s) from index 10 on, then five more."""
    entries = make_entries(ROTATED_AT)
    for old, new in rotations:
        entries.append((len(entries), rotation_event(old, new, START).canonical()))
    return entries + [(len(entries) + i, data) for i, (_, data) in enumerate(make_entries(5))]


ENTRIES = ledger((OLD_V, NEW_V))


def note(entries: list[tuple[int, bytes]], size: int, key: Ed25519PrivateKey) -> bytes:
    tree = MerkleTree(leaf_hash(data) for _, data in entries)
    return sign_checkpoint(Checkpoint(NAME, size, tree.root(size)), NAME, key)


def audit(entries: list[tuple[int, bytes]], signed: bytes) -> object:
    return verify_ledger(entries, signed, NAME, NEW.public_key(), origin=NAME, earlier_keys=[OLD.public_key()])


@pytest.mark.parametrize("size", [0, 1, ROTATED_AT])
def test_old_key_checkpoints_up_to_the_rotation_verify(size: int) -> None:
    report = verify_ledger(ENTRIES, note(ENTRIES, size, OLD), NAME, NEW.public_key(), earlier_keys=[OLD.public_key()])
    assert report.checkpoint_size == size
    assert report.signed_by == OLD_V
    assert report.key_rotations == 1


@pytest.mark.parametrize("size", [ROTATED_AT + 1, len(ENTRIES)])
def test_new_key_checkpoints_after_the_rotation_verify(size: int) -> None:
    report = verify_ledger(ENTRIES, note(ENTRIES, size, NEW), NAME, NEW.public_key(), earlier_keys=[OLD.public_key()])
    assert report.signed_by == NEW_V
    assert report.size == len(ENTRIES)


@pytest.mark.parametrize("size", [ROTATED_AT + 1, len(ENTRIES)])
def test_the_old_key_after_the_rotation_is_refused(size: int) -> None:
    expected = f"size {size} is signed by {re.escape(OLD_V)}.*{re.escape(NEW_V)} was in force"
    with pytest.raises(SignatureRejected, match=expected):
        audit(ENTRIES, note(ENTRIES, size, OLD))


def test_the_new_key_before_the_rotation_is_refused() -> None:
    with pytest.raises(SignatureRejected, match="was in force"):
        audit(ENTRIES, note(ENTRIES, ROTATED_AT, NEW))


@pytest.mark.parametrize("size", [0, ROTATED_AT, len(ENTRIES)])
def test_a_key_outside_the_history_is_refused(size: int) -> None:
    with pytest.raises(SignatureRejected, match=r"no signature by .* with a known key"):
        audit(ENTRIES, note(ENTRIES, size, UNRELATED))


def test_without_the_history_the_old_checkpoints_no_longer_verify() -> None:
    """What the key history is for: with only the current key, a pre-rotation checkpoint is unverifiable."""
    with pytest.raises(SignatureRejected):
        verify_ledger(ENTRIES, note(ENTRIES, ROTATED_AT, OLD), NAME, NEW.public_key())


def test_a_rotation_to_an_unpublished_key_is_refused() -> None:
    rogue = verifier_key_string(NAME, UNRELATED.public_key())
    entries = ledger((OLD_V, rogue))
    with pytest.raises(SignatureRejected, match=rf"first bad index {ROTATED_AT}: rotation to .* not in the published"):
        audit(entries, note(entries, len(entries), NEW))
    with pytest.raises(SignatureRejected, match=r"with a known key"):
        audit(entries, note(entries, len(entries), UNRELATED))  # the rogue key's own checkpoint
    with pytest.raises(SignatureRejected) as err:
        audit(entries, note(entries, ROTATED_AT, OLD))  # the bad rotation is caught even in the unsigned tail
    assert err.value.field == f"entries[{ROTATED_AT}].new_key"


def test_a_rotation_from_a_key_not_in_force_is_refused() -> None:
    rogue = verifier_key_string(NAME, UNRELATED.public_key())
    entries = ledger((rogue, NEW_V))
    with pytest.raises(ProofInvalid, match=f"first bad index {ROTATED_AT}: rotation from {re.escape(rogue)}"):
        audit(entries, note(entries, ROTATED_AT, OLD))


def test_the_same_rotation_recorded_twice_counts_once() -> None:
    entries = ledger((OLD_V, NEW_V), (OLD_V, NEW_V))
    report = audit(entries, note(entries, len(entries), NEW))
    assert report.key_rotations == 1  # type: ignore[attr-defined]


def test_parse_rotation_reads_only_admin_rotation_events() -> None:
    assert parse_rotation(ENTRIES[ROTATED_AT][1], ROTATED_AT) == (OLD_V, NEW_V)
    assert parse_rotation(ENTRIES[0][1], 0) is None
    lookalike = b'{"action":"checkpoint_key_rotated","at":"x","event":"rejected"}'  # not an admin event
    assert parse_rotation(lookalike, 3) is None
    with pytest.raises(ProofInvalid, match="first bad index 4: rotation without old_key/new_key"):
        parse_rotation(b'{"action":"checkpoint_key_rotated","at":"x","event":"admin","old_key":"a"}', 4)


def test_history_file_round_trip_and_limits() -> None:
    history = KeyHistory(NAME, (OLD.public_key(), NEW.public_key()))
    assert parse_key_history(history_text(history), NAME) == history
    assert history.vkeys == (OLD_V, NEW_V)
    assert history.current == NEW.public_key()
    with pytest.raises(Invalid, match="twice"):
        KeyHistory(NAME, (OLD.public_key(), OLD.public_key()))
    with pytest.raises(Invalid, match="empty"):
        parse_key_history("\n", NAME)
    with pytest.raises(Invalid, match="32 bytes"):
        parse_key_history("AAAA\n", NAME)
    with pytest.raises(Invalid) as err:
        parse_key_history(history_text(history) + "not base64!\n", NAME)
    assert err.value.field == "checkpoint.keys[2]"
    many = "".join(
        history_text(KeyHistory(NAME, (Ed25519PrivateKey.generate().public_key(),))) for _ in range(MAX_KEYS + 1)
    )
    with pytest.raises(LimitExceeded):
        parse_key_history(many, NAME)
