"""Auditor tooling: re-check a whole ledger offline against the latest published signed checkpoint.

Rule 1: the only thing trusted is the checkpoint verifier key, taken from the federation files, never from
        the gateway being audited.
Rule 2: two sources, one check (``core.ledgercheck.verify_ledger``): the gateway's own store file (offline, on
        the gateway host) or the REST audit endpoints (as an auditor member over mTLS).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.client import GatewayClient, MemberCredentials
from gateway.core.errors import Unavailable
from gateway.core.ledgercheck import LedgerReport, verify_ledger
from gateway.infra.backends import open_store
from gateway.infra.files import load_private_key
from gateway.settings import Settings, load_settings

CHECKPOINT_FILE = "checkpoint.note"
# Entries fetched per request/query while streaming the ledger (bounded memory per page).
PAGE = 1000


def publish_checkpoint_file(data_dir: Path, note: bytes) -> None:
    """Atomically replace the published checkpoint file (write, fsync, rename). Blocking: run in a thread."""
    target = data_dir / CHECKPOINT_FILE
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(note)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    tmp.replace(target)


def _checkpoint_public_key(settings: Settings) -> Ed25519PublicKey:
    pub = settings.checkpoint_key.with_suffix(".pub")
    if pub.exists():
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(pub.read_text().strip()))
    key = load_private_key(settings.checkpoint_key)
    if not isinstance(key, Ed25519PrivateKey):
        raise Unavailable("the checkpoint key must be Ed25519")
    return key.public_key()


async def verify_from_store(settings: Settings) -> LedgerReport:
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
    return verify_ledger(entries, note, settings.origin, _checkpoint_public_key(settings), origin=settings.origin)


async def verify_over_rest(url: str, federation_dir: Path, member_id: str) -> LedgerReport:
    settings = load_settings(federation_dir / "gateway.toml")
    public_key = _checkpoint_public_key(settings)
    async with GatewayClient(url, MemberCredentials.from_federation(federation_dir, member_id)) as client:
        note = await client.checkpoint()
        entries: list[tuple[int, bytes]] = []
        while True:
            page = await client.entries(len(entries), len(entries) + PAGE)
            entries.extend(page)
            if len(page) < PAGE:
                break
    return verify_ledger(entries, note, settings.origin, public_key, origin=settings.origin)
