"""Auditor tooling: re-check a whole ledger offline against the latest published signed checkpoint.

Rule 1: the only thing trusted is the checkpoint key history (``checkpoint.keys``, else ``checkpoint.pub``),
        taken from the federation files, never from the gateway being audited; a checkpoint must be signed by
        the key the ledger's rotation events put in force at its size (``core.keyhistory``).
Rule 2: two sources, one check (``core.ledgercheck.verify_ledger``): the gateway's own store file (offline, on
        the gateway host) or the REST audit endpoints (as an auditor member over mTLS).
Rule 3: with a federation directory (``Witnesses``), the checkpoint's cosignatures are verified with the witness
        keys the directory lists for the *other* gateways (the audited gateway's own witness never counts), and
        fewer than ``require`` of them fails. The directory is verified with the operator's key (beside it, or
        given), never taken from the audited gateway.
Rule 4: checkpoints of the same log collected elsewhere (``compare``: e.g. the one a peer showed its own
        auditors) must each verify, and must agree with the checked ledger: two roots for one size, a root that
        is not the ledger's at its size, or a size the ledger does not reach, is a *split view* (``ProofInvalid``,
        "split view: ..."). Compare checkpoints collected before the ledger is read.
"""

from __future__ import annotations

import base64
import dataclasses
import errno
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.app.settings import Settings, load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.core.checkpoint import Checkpoint
from gateway.core.cosignature import check_single_view, verify_cosigned
from gateway.core.errors import ProofInvalid, Unavailable
from gateway.core.keyhistory import KeyHistory
from gateway.core.ledgercheck import LedgerReport, verify_ledger
from gateway.infra.backends import open_store
from gateway.infra.federationfiles import OPERATOR_PUB, load_operator_key, read_directory
from gateway.infra.files import load_checkpoint_history, write_public

CHECKPOINT_FILE = "checkpoint.note"
# Entries fetched per request/query while streaming the ledger (bounded memory per page).
PAGE = 1000


def publish_checkpoint_file(data_dir: Path, note: bytes) -> None:
    """Atomically replace the published checkpoint file (``files.write_public``). Blocking: run in a thread.

    A failure (a full disk) raises ``Unavailable``; the next checkpoint publishes again (``gateway/ops/ledger.py``)."""
    try:
        write_public(data_dir / CHECKPOINT_FILE, note)
    except OSError as exc:
        why = "disk full" if exc.errno == errno.ENOSPC else exc.strerror
        raise Unavailable(f"cannot publish the checkpoint: {why}") from None


@dataclass(frozen=True, slots=True)
class Witnesses:
    """What an auditor asks of the checkpoint's cosignatures (Rules 3-4)."""

    directory: Path  # the signed federation directory (directory.jws)
    require: int = 0  # at least this many peer witnesses must have cosigned
    operator_key: Path | None = None  # default: operator.pub beside the directory
    compare: tuple[bytes, ...] = ()  # other checkpoints of this log, collected elsewhere


def _verify(
    entries: list[tuple[int, bytes]], note: bytes, settings: Settings, witnesses: Witnesses | None = None
) -> LedgerReport:
    history = load_checkpoint_history(settings.checkpoint_key, settings.origin)
    others = [] if witnesses is None else [_other(history, n, i) for i, n in enumerate(witnesses.compare)]
    report = verify_ledger(
        entries,
        note,
        settings.origin,
        history.current,
        origin=settings.origin,
        earlier_keys=history.keys[:-1],
        sizes=[c.size for c in others],
    )
    if witnesses is None:
        return report
    assert report.checkpoint is not None
    check_single_view([report.checkpoint, *others])
    for number, other in enumerate(others):
        if other.size > report.size:
            raise ProofInvalid(
                f"split view: {other.origin} signed size {other.size}, its ledger has {report.size} entries "
                "(a fork, or a truncated ledger)",
                field=f"compare[{number}]",
                public="split view: the log signed a tree that is not its ledger",
            )
        root = report.roots_at.get(other.size)
        if root is not None and root != other.root:
            raise ProofInvalid(
                f"split view: {other.origin} signed root {base64.b64encode(other.root).decode()} for size "
                f"{other.size}, but its ledger has {base64.b64encode(root).decode()} there",
                field=f"compare[{number}]",
                public="split view: the log signed a tree that is not its ledger",
            )
    return dataclasses.replace(report, cosigners=_cosigners(note, history, settings.origin, witnesses))


def _other(history: KeyHistory, note: bytes, number: int) -> Checkpoint:
    try:
        checkpoint, _, _ = verify_cosigned(note, history.name, history.keys, (), origin=history.name)
    except ProofInvalid as exc:
        raise ProofInvalid(exc.detail, field=f"compare[{number}].{exc.field}") from exc
    return checkpoint


def _cosigners(note: bytes, history: KeyHistory, origin: str, witnesses: Witnesses) -> tuple[str, ...]:
    """Rule 3: the peer witnesses whose cosignatures of ``note`` verify; fewer than required fails."""
    operator = load_operator_key(witnesses.operator_key or witnesses.directory.parent / OPERATOR_PUB)
    directory = read_directory(witnesses.directory, operator, datetime.now(UTC))
    peers = [g.witness for g in directory.gateways.values() if g.origin != origin]
    _, _, found = verify_cosigned(note, origin, history.keys, peers, origin=origin)
    if len(found) < witnesses.require:
        raise ProofInvalid(
            f"the checkpoint is cosigned by {len(found)} peer witness(es) of directory version "
            f"{directory.version}, {witnesses.require} required",
            field="note.signatures",
            public="the checkpoint lacks the required witness cosignatures",
        )
    return tuple(c.witness for c in found)


async def verify_from_store(
    settings: Settings, note: bytes | None = None, witnesses: Witnesses | None = None
) -> LedgerReport:
    """The store's ledger against ``note`` (default: the checkpoint the gateway last published)."""
    if note is None:
        note_path = settings.data_dir / CHECKPOINT_FILE
        if not note_path.exists():
            raise Unavailable(f"no published checkpoint at {note_path}")
        note = note_path.read_bytes()
    store = await open_store(settings)
    try:
        size = await store.ledger_size()
        entries: list[tuple[int, bytes]] = []
        for start in range(0, size, PAGE):
            entries.extend((e.index, e.data) for e in await store.ledger_entries(start, min(size, start + PAGE)))
    finally:
        await store.close()
    return _verify(entries, note, settings, witnesses)


async def verify_over_rest(
    url: str, federation_dir: Path, member_id: str, note: bytes | None = None, witnesses: Witnesses | None = None
) -> LedgerReport:
    """The gateway's ledger over REST against ``note`` (default: its current checkpoint)."""
    settings = load_settings(federation_dir / "gateway.toml")
    async with GatewayClient(url, MemberCredentials.from_federation(federation_dir, member_id)) as client:
        if note is None:
            note = await client.checkpoint()
        entries: list[tuple[int, bytes]] = []
        while True:
            page = await client.entries(len(entries), len(entries) + PAGE)
            entries.extend(page)
            if len(page) < PAGE:
                break
    return _verify(entries, note, settings, witnesses)
