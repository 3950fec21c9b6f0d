"""Offline ledger audit: a real ledger of audit events, a real signed checkpoint, every kind of tampering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import ledgercheck
from gateway.core.audit import AuditEvent, EventKind
from gateway.core.checkpoint import Checkpoint, sign_checkpoint
from gateway.core.errors import LimitExceeded, ProofInvalid, SignatureRejected
from gateway.core.ledgercheck import verify_ledger
from gateway.core.merkle import MerkleTree, leaf_hash

NAME = "cgw.cn-gacc.example/ledger"
KEY = Ed25519PrivateKey.from_private_bytes(b"\x07" * 32)
PUBLIC = KEY.public_key()
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
KINDS = [EventKind.ACCEPTED, EventKind.DELIVERED, EventKind.ACKNOWLEDGED, EventKind.REJECTED]


def make_entries(count: int) -> list[tuple[int, bytes]]:
    entries = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        fields = {"from": "CARRIER-COSCO", "to": ["CN-GACC"], "id": f"msg-{i}", "n": i}
        event = AuditEvent(kind, START + timedelta(seconds=i), fields)
        entries.append((i, event.canonical()))
    return entries


def note_for(entries: list[tuple[int, bytes]], size: int | None = None) -> bytes:
    tree = MerkleTree(leaf_hash(data) for _, data in entries)
    size = tree.size if size is None else size
    return sign_checkpoint(Checkpoint(NAME, size, tree.root(size)), NAME, KEY)


ENTRIES = make_entries(37)
NOTE = note_for(ENTRIES)


def test_clean_ledger_verifies() -> None:
    report = verify_ledger(iter(ENTRIES), NOTE, NAME, PUBLIC)
    assert report.size == report.checkpoint_size == 37
    assert report.unverified_tail == 0
    assert report.root == MerkleTree(leaf_hash(d) for _, d in ENTRIES).root()
    assert dict(report.events_by_kind) == {"accepted": 10, "delivered": 9, "acknowledged": 9, "rejected": 9}
    assert report.checkpoint is not None
    assert report.checkpoint.origin == NAME


def test_checkpoint_for_a_prefix_reports_the_tail() -> None:
    report = verify_ledger(ENTRIES, note_for(ENTRIES, 30), NAME, PUBLIC)
    assert (report.size, report.checkpoint_size, report.unverified_tail) == (37, 30, 7)
    assert sum(report.events_by_kind.values()) == 37


def test_empty_ledger_and_empty_checkpoint() -> None:
    report = verify_ledger([], note_for([]), NAME, PUBLIC)
    assert (report.size, report.checkpoint_size) == (0, 0)
    report = verify_ledger(ENTRIES[:3], note_for([]), NAME, PUBLIC)
    assert report.unverified_tail == 3


def test_wrong_key_or_origin_is_refused_before_reading_entries() -> None:
    def exploding() -> Iterator[tuple[int, bytes]]:
        raise AssertionError("entries must not be read before the checkpoint verifies")
        yield (0, b"")  # pragma: no cover - makes this a generator

    other = Ed25519PrivateKey.from_private_bytes(b"\x08" * 32).public_key()
    with pytest.raises(SignatureRejected):
        verify_ledger(exploding(), NOTE, NAME, other)
    with pytest.raises(ProofInvalid):
        verify_ledger(exploding(), NOTE, NAME, PUBLIC, origin="cgw.nl-douane.example/ledger")


def test_missing_entry_fails_at_its_index() -> None:
    entries = ENTRIES[:12] + ENTRIES[13:]
    with pytest.raises(ProofInvalid) as caught:
        verify_ledger(entries, NOTE, NAME, PUBLIC)
    assert caught.value.field == "entries[12].index"
    assert "first bad index 12" in caught.value.detail


def test_duplicated_entry_fails_at_its_index() -> None:
    entries = [*ENTRIES[:9], ENTRIES[8], *ENTRIES[9:]]
    with pytest.raises(ProofInvalid) as caught:
        verify_ledger(entries, NOTE, NAME, PUBLIC)
    assert "first bad index 9" in caught.value.detail


def test_reordered_entries_fail_at_the_first_swapped_index() -> None:
    entries = list(ENTRIES)
    entries[5], entries[20] = entries[20], entries[5]
    with pytest.raises(ProofInvalid) as caught:
        verify_ledger(entries, NOTE, NAME, PUBLIC)
    assert "first bad index 5" in caught.value.detail


def test_reordered_data_under_correct_indexes_fails_on_the_root() -> None:
    entries = list(ENTRIES)
    entries[5], entries[20] = (5, ENTRIES[20][1]), (20, ENTRIES[5][1])
    with pytest.raises(ProofInvalid) as caught:
        verify_ledger(entries, NOTE, NAME, PUBLIC)
    assert caught.value.field == "checkpoint.root"
    assert "[0, 37)" in caught.value.detail


def test_truncated_ledger_fails_at_the_first_missing_index() -> None:
    with pytest.raises(ProofInvalid) as caught:
        verify_ledger(ENTRIES[:30], NOTE, NAME, PUBLIC)
    assert "first bad index 30" in caught.value.detail


def test_tail_after_checkpoint_is_still_checked() -> None:
    entries = [*ENTRIES[:36], (36, b'{"at":"x","event":"accepted"}')]
    with pytest.raises(ProofInvalid) as caught:
        verify_ledger(entries, note_for(ENTRIES, 30), NAME, PUBLIC)
    assert caught.value.field == "entries[36].at"


def altered(data: bytes, key: str, value: object) -> bytes:
    body = json.loads(data)
    body[key] = value
    return rfc8785.dumps(body)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.replace(b'":', b'": ', 1), "entries[7]"),  # not canonical (whitespace)
        (lambda d: json.dumps(json.loads(d), sort_keys=False).encode(), "entries[7]"),
        (lambda d: d[:-1], "entries[7]"),  # not JSON
        (lambda d: b"\xef\xbb\xbf" + d, "entries[7]"),  # BOM
        (lambda d: d.decode().encode("utf-16"), "entries[7]"),
        (lambda d: b'{"at":"2026-03-01T08:00:07.000000Z","event":"a","event":"b"}', "entries[7]"),
        (lambda d: b"[1,2]", "entries[7]"),
        (lambda d: b'{"a":NaN}', "entries[7]"),
        (lambda d: b'{"a":9007199254740993}', "entries[7]"),  # beyond JCS integer domain
        (lambda d: b"[" * 5000 + b"]" * 5000, "entries[7]"),
        (lambda d: altered(d, "event", 7), "entries[7].event"),
        (lambda d: altered(d, "event", "Accepted Now"), "entries[7].event"),
        (
            lambda d: rfc8785.dumps({k: v for k, v in json.loads(d).items() if k != "event"}),
            "entries[7].event",
        ),
        (lambda d: altered(d, "at", "2026-03-01T08:00:07Z"), "entries[7].at"),
        (lambda d: altered(d, "at", "2026-02-30T08:00:07.000000Z"), "entries[7].at"),
        (lambda d: altered(d, "n", 8), "checkpoint.root"),  # canonical but altered: only the root tells
    ],
)
def test_altered_entry_fails(mutate: object, field: str) -> None:
    assert callable(mutate)
    entries = list(ENTRIES)
    entries[7] = (7, mutate(entries[7][1]))
    with pytest.raises(ProofInvalid) as caught:
        verify_ledger(entries, NOTE, NAME, PUBLIC)
    assert caught.value.field == field
    if field.startswith("entries"):
        assert "first bad index 7" in caught.value.detail


def test_limits() -> None:
    big = altered(ENTRIES[0][1], "pad", "x" * ledgercheck.MAX_ENTRY_BYTES)
    with pytest.raises(LimitExceeded):
        verify_ledger([(0, big)], note_for([]), NAME, PUBLIC)
    many = [
        (i, AuditEvent(EventKind.ADMIN, START, {}).canonical().replace(b'"admin"', f'"k{i}"'.encode()))
        for i in range(ledgercheck.MAX_EVENT_KINDS + 1)
    ]
    with pytest.raises(LimitExceeded):
        verify_ledger(many, note_for([]), NAME, PUBLIC)


def test_non_pair_entries_are_refused() -> None:
    with pytest.raises(ProofInvalid):
        verify_ledger([(True, ENTRIES[0][1])], note_for([]), NAME, PUBLIC)  # type: ignore[list-item]
    with pytest.raises(ProofInvalid):
        verify_ledger([(0, ENTRIES[0][1].decode())], note_for([]), NAME, PUBLIC)  # type: ignore[list-item]


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_any_single_alteration_is_detected(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, len(ENTRIES)), label="checkpoint size")
    note = note_for(ENTRIES, size)
    victim = data.draw(st.integers(0, size - 1), label="victim")
    action = data.draw(st.sampled_from(["alter", "drop", "duplicate", "swap"]), label="action")
    entries = list(ENTRIES)
    if action == "alter":
        entries[victim] = (victim, altered(entries[victim][1], "id", "forged"))
    elif action == "drop":
        del entries[victim]
    elif action == "duplicate":
        entries.insert(victim, entries[victim])
    else:
        other = data.draw(st.integers(0, len(ENTRIES) - 1).filter(lambda i: i != victim), label="other")
        entries[victim], entries[other] = entries[other], entries[victim]
    with pytest.raises(ProofInvalid) as caught:
        verify_ledger(entries, note, NAME, PUBLIC)
    if action == "alter":
        assert caught.value.field == "checkpoint.root"
    elif action == "swap":
        assert f"first bad index {min(victim, other)}" in caught.value.detail
    else:
        expected = victim + 1 if action == "duplicate" else victim
        assert f"first bad index {expected}" in caught.value.detail
