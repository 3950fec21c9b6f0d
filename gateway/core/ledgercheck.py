"""Offline audit of the ledger: recompute every leaf and the tree root, and check them against a checkpoint.

An auditor exports the ledger entries ``(index, data)`` and the latest signed checkpoint, and runs this with
the gateway's published verifier key; nothing here trusts the gateway beyond that key.

Rule 1: the checkpoint signature is verified first; the entries are then streamed once, in O(log n) memory.
Rule 2: indexes must be dense from 0 and strictly in order: a gap, a duplicate or a reordering fails at the
        first bad index, with that index in the error detail and the field path ``entries[<index>]``.
Rule 3: every entry must be RFC 8785 canonical JSON (decoded, re-encoded, compared byte for byte) of an object
        with a string ``event`` name and an ``at`` timestamp in the one spelling of ``audit.rfc3339``.
Rule 4: the root over the first ``checkpoint.size`` entries must equal the signed root; entries after that are
        checked by Rules 2-3 and counted as the un-checkpointed tail. Fewer entries than the checkpoint covers
        is a truncated ledger and fails at the first missing index.
Rule 5: a leaf whose bytes were altered but stay canonical can only be caught by the root: the error then
        names the range of indexes the checkpoint covers, since one root cannot tell which leaf changed.
Rule 6: across checkpoint key rotations (``core.keyhistory``), the note must be signed by the key that the
        ledger's rotation events put in force at the checkpoint's size; earlier keys are given oldest first.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.core.audit import EventKind
from gateway.core.checkpoint import Checkpoint, verify_checkpoint_by_any
from gateway.core.errors import LimitExceeded, ProofInvalid
from gateway.core.keyhistory import KeyHistory, KeyInForce
from gateway.core.merkle import TreeFrontier, leaf_hash

# An event holds codes, ids and digests, never key material, tokens or payload bodies (``gateway.core.audit``):
# far below this.
MAX_ENTRY_BYTES = 64 * 1024
MAX_REASON_CHARS = 160  # parser messages quoted in error details stay one short line
MAX_EVENT_KINDS = 64  # the gateway defines a handful of kinds; thousands of names means a garbage ledger
_EVENT = re.compile(r"[a-z][a-z0-9_.]{0,63}", re.ASCII)  # event names as audit.EventKind spells them
_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z", re.ASCII)  # audit.rfc3339 output only


@dataclass(frozen=True, slots=True)
class LedgerReport:
    """What an offline audit established.

    ``size`` entries were checked (canonical, dense) and ``root`` is the tree hash over all of them; the first
    ``checkpoint_size`` of them are proven to be exactly what the gateway signed. ``events_by_kind`` counts
    every checked entry, tail included."""

    size: int
    root: bytes
    checkpoint_size: int
    events_by_kind: Mapping[str, int]
    checkpoint: Checkpoint | None = None
    signed_by: str = ""  # the verifier key (C2SP vkey) in force at the checkpoint's size, which signed it
    key_rotations: int = 0  # checkpoint key rotations recorded in the checked entries
    cosigners: tuple[str, ...] = ()  # witness verifier keys whose cosignatures of the checkpoint verified
    # the tree root at each size asked for (``sizes``) that the ledger reaches
    roots_at: Mapping[int, bytes] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def unverified_tail(self) -> int:
        """Entries after the checkpoint: well-formed, but not yet covered by a signed root."""
        return self.size - self.checkpoint_size


def _fail(index: int, reason: str, suffix: str = "") -> ProofInvalid:
    return ProofInvalid(f"first bad index {index}: {reason}", field=f"entries[{index}]{suffix}")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate object key")
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _check_entry(index: int, data: bytes) -> str:
    """Rule 3 for one entry; returns its event name."""
    if len(data) > MAX_ENTRY_BYTES:
        raise LimitExceeded(
            f"first bad index {index}: entry exceeds {MAX_ENTRY_BYTES} bytes", field=f"entries[{index}]"
        )
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_reject_duplicate_keys,
            parse_constant=_reject_constant,
        )
        canonical = rfc8785.dumps(value)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # ValueError covers JSON and JCS errors
        reason = str(exc)[:MAX_REASON_CHARS] or type(exc).__name__  # a position or one offending number
        raise _fail(index, f"not canonical JSON: {reason}") from exc
    if canonical != data:
        raise _fail(index, "not RFC 8785 canonical JSON (re-encoding differs)")
    if not isinstance(value, dict):
        raise _fail(index, "not a JSON object")
    event, at = value.get("event"), value.get("at")
    if not isinstance(event, str) or not _EVENT.fullmatch(event):
        raise _fail(index, "missing or malformed 'event'", ".event")
    if not isinstance(at, str) or not _AT.fullmatch(at):
        raise _fail(index, "missing or malformed 'at'", ".at")
    try:
        datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ")  # only checks that the date exists
    except ValueError as exc:
        raise _fail(index, "'at' is not a real date and time", ".at") from exc
    return event


def verify_ledger(
    entries: Iterable[tuple[int, bytes]],
    note: bytes,
    key_name: str,
    public_key: Ed25519PublicKey,
    *,
    origin: str | None = None,
    earlier_keys: Sequence[Ed25519PublicKey] = (),
    sizes: Iterable[int] = (),
) -> LedgerReport:
    """Check ``entries`` (in index order) against the signed checkpoint ``note``; raise on the first problem.

    ``public_key`` is the log's current checkpoint key and ``earlier_keys`` the ones it rotated away from,
    oldest first (Rule 6). Raises ``SignatureRejected`` / ``ProofInvalid`` for a bad note or a note signed by
    a key not in force at its size, and ``ProofInvalid`` (``LimitExceeded`` for oversize entries) naming the
    first bad index for a bad ledger. ``sizes``: the report's ``roots_at`` gives the root at each of them that the
    ledger reaches (an auditor compares other checkpoints of the log with them)."""
    history = KeyHistory(key_name, (*earlier_keys, public_key))
    checkpoint, signers = verify_checkpoint_by_any(note, key_name, history.keys, origin=origin)
    in_force = KeyInForce(history)
    frontier = TreeFrontier()
    counts: Counter[str] = Counter()
    wanted = set(sizes)
    roots_at: dict[int, bytes] = {}
    if 0 in wanted:
        roots_at[0] = frontier.root()
    if checkpoint.size == 0:
        _compare_root(frontier, checkpoint)
        in_force.check_signer(signers, 0)
    signed_by = in_force.vkey
    for index, data in entries:
        expected = frontier.size
        if type(index) is not int or not isinstance(data, bytes):
            raise _fail(expected, "entry is not an (int, bytes) pair")
        if index != expected:
            why = "missing" if index > expected else "duplicated or out of order"
            raise _fail(expected, f"expected index {expected}, got {index} (entry {why})", ".index")
        event = _check_entry(index, data)
        if event not in counts and len(counts) >= MAX_EVENT_KINDS:
            raise LimitExceeded(f"more than {MAX_EVENT_KINDS} event kinds", field=f"entries[{index}].event")
        counts[event] += 1
        if event == EventKind.ADMIN:
            in_force.apply(index, data)
        frontier.append(leaf_hash(data))
        if frontier.size in wanted:
            roots_at[frontier.size] = frontier.root()
        if frontier.size == checkpoint.size:
            _compare_root(frontier, checkpoint)
            in_force.check_signer(signers, checkpoint.size)
            signed_by = in_force.vkey
    if frontier.size < checkpoint.size:
        raise _fail(
            frontier.size,
            f"ledger ends after {frontier.size} entries, the checkpoint covers {checkpoint.size} (truncated)",
        )
    return LedgerReport(
        size=frontier.size,
        root=frontier.root(),
        checkpoint_size=checkpoint.size,
        events_by_kind=MappingProxyType(dict(sorted(counts.items()))),
        checkpoint=checkpoint,
        signed_by=signed_by,
        key_rotations=in_force.rotations,
        roots_at=MappingProxyType(roots_at),
    )


def _compare_root(frontier: TreeFrontier, checkpoint: Checkpoint) -> None:
    if frontier.root() != checkpoint.root:  # public values: no need for a constant-time compare
        raise ProofInvalid(
            f"root over entries [0, {checkpoint.size}) differs from the signed checkpoint root: "
            f"an entry in that range was altered, replaced or reordered",
            field="checkpoint.root",
        )
