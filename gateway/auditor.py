"""Auditor tooling: re-check a whole ledger offline against the latest published signed checkpoint.

Rule 1: the only thing trusted is the checkpoint key history (``checkpoint.keys``, else ``checkpoint.pub``),
        taken from the federation files, never from the gateway being audited; a checkpoint must be signed by
        the key the ledger's rotation events put in force at its size (``core.keyhistory``).
Rule 2: two sources, one check (``core.ledgercheck.verify_ledger``): the gateway's own store file (offline, on
        the gateway host) or the REST audit endpoints (as an auditor member over mTLS).
"""

from __future__ import annotations

import errno
from pathlib import Path

from gateway.client import GatewayClient, MemberCredentials
from gateway.core.errors import Unavailable
from gateway.core.ledgercheck import LedgerReport, verify_ledger
from gateway.infra.backends import open_store
from gateway.infra.files import load_checkpoint_history, write_public
from gateway.settings import Settings, load_settings

CHECKPOINT_FILE = "checkpoint.note"
# Entries fetched per request/query while streaming the ledger (bounded memory per page).
PAGE = 1000


def publish_checkpoint_file(data_dir: Path, note: bytes) -> None:
    """Atomically replace the published checkpoint file (``files.write_public``). Blocking: run in a thread.

    A failure (a full disk) raises ``Unavailable``; the next checkpoint publishes again (``gateway/ledger.py``)."""
    try:
        write_public(data_dir / CHECKPOINT_FILE, note)
    except OSError as exc:
        why = "disk full" if exc.errno == errno.ENOSPC else exc.strerror
        raise Unavailable(f"cannot publish the checkpoint: {why}") from None


def _verify(entries: list[tuple[int, bytes]], note: bytes, settings: Settings) -> LedgerReport:
    history = load_checkpoint_history(settings.checkpoint_key, settings.origin)
    return verify_ledger(
        entries, note, settings.origin, history.current, origin=settings.origin, earlier_keys=history.keys[:-1]
    )


async def verify_from_store(settings: Settings, note: bytes | None = None) -> LedgerReport:
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
    return _verify(entries, note, settings)


async def verify_over_rest(url: str, federation_dir: Path, member_id: str, note: bytes | None = None) -> LedgerReport:
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
    return _verify(entries, note, settings)
