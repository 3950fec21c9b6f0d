"""The audit ledger service: an in-memory RFC 9162 Merkle tree over the store's ledger leaves.

Rule 1: the store is the source of truth for leaves; this service only mirrors their hashes (catching up from
        the store on demand), so several readers and a restart can never disagree with what is on disk.
Rule 2: checkpoints are C2SP signed notes by the gateway's Ed25519 checkpoint key; one is cached per tree size
        and published once; a publication that failed is tried again at the next checkpoint.
Rule 3: proofs are computed from cached perfect-subtree hashes: O(log n) per proof.
Rule 4: the key signing checkpoints is the last of the published key history (``core.keyhistory``); while
        catching up, the service notes the rotation events it passes, and ``record_key_rotation`` appends one
        when the key in use is not the one the ledger last recorded, before anything is signed with it.
Rule 5: with witnesses (``witnessed``, ``gateway.ops.witnessing``), what is published (the ``publish`` callback, and
        :meth:`published` for the audit API) is the newest checkpoint a witnessing round finished with, its
        cosignature lines appended (:meth:`publish_cosigned`); it never goes back to a smaller tree.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.core.checkpoint import Checkpoint, sign_checkpoint
from gateway.core.errors import Invalid, Unavailable
from gateway.core.keyhistory import KeyHistory, parse_rotation, rotation_event
from gateway.core.merkle import MerkleTree, leaf_hash
from gateway.interfaces.protocols import LedgerEntry, Store

# Catch-up reads from the store are paged so a large ledger does not load in one query, and so that hashing
# one page (~8 us per leaf, on the event loop) holds up the requests in flight for ~2 ms, not ~8 ms: at 1,000
# accepted messages per second the 5-second checkpoint catches up on ~5,000 leaves.
CATCH_UP_PAGE = 256


@dataclass(frozen=True, slots=True)
class SignedHead:
    size: int
    root: bytes
    note: bytes


class Ledger:
    def __init__(
        self,
        store: Store,
        *,
        origin: str,
        key: Ed25519PrivateKey,
        history: KeyHistory | None = None,
        publish: Callable[[bytes], Awaitable[None]] | None = None,
        witnessed: bool = False,
    ) -> None:
        self._store = store
        self._publish = publish
        self._origin = origin
        self._key = key
        self._history = KeyHistory(origin, (key.public_key(),)) if history is None else history
        if self._history.current != key.public_key():
            raise Unavailable(
                "the checkpoint key is not the last key of its published history (checkpoint.keys)",
                field="signing.checkpoint_key",
            )
        self._recorded_key: str | None = None  # new_key of the last rotation event caught up with
        self._tree = MerkleTree()
        self._lock = asyncio.Lock()
        self._head: SignedHead | None = None
        self._published = -1  # the size of the last head published (Rule 2)
        self._cosigned: SignedHead | None = None  # Rule 5
        self._witnessed = witnessed

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def verifier_key(self) -> str:
        return self._history.vkeys[-1]

    @property
    def signing_key(self) -> Ed25519PublicKey:
        return self._key.public_key()

    @property
    def verifier_keys(self) -> tuple[str, ...]:
        """Every key that signed (or signs) this log's checkpoints, oldest first; the last one is in use."""
        return self._history.vkeys

    async def record_key_rotation(self, at: datetime) -> tuple[str, str] | None:
        """Rule 4: record (old, new) when the key in use is not the one in force in the ledger; else None.

        Call before the first checkpoint of a process (the first checkpoint by a new key must cover this)."""
        await self.sync()
        in_force = self._recorded_key or self._history.vkeys[0]
        if in_force == self.verifier_key:
            return None
        await self._store.record(rotation_event(in_force, self.verifier_key, at))
        await self.sync()
        return in_force, self.verifier_key

    async def sync(self) -> int:
        """Bring the in-memory tree up to the store's size; return the size."""
        async with self._lock:
            target = await self._store.ledger_size()
            while self._tree.size < target:
                end = min(target, self._tree.size + CATCH_UP_PAGE)
                for entry in await self._store.ledger_entries(self._tree.size, end):
                    self._tree.append(leaf_hash(entry.data))
                    rotation = parse_rotation(entry.data, entry.index)
                    if rotation is not None:
                        self._recorded_key = rotation[1]
            return self._tree.size

    async def checkpoint(self) -> SignedHead:
        size = await self.sync()
        head = self._head
        if head is None or head.size != size:
            root = self._tree.root(size)
            note = sign_checkpoint(Checkpoint(self._origin, size, root), self._origin, self._key)
            head = self._head = SignedHead(size=size, root=root, note=note)
        if self._publish is not None and not self._witnessed and self._published != head.size:
            await self._publish(head.note)  # when it fails (a full disk), the next checkpoint publishes again
            self._published = head.size
        return head

    async def publish_cosigned(self, head: SignedHead, note: bytes) -> SignedHead:
        """Rule 5: ``head`` with ``note`` (its note with cosignature lines) becomes the published checkpoint,
        unless a larger one already is; returns the published checkpoint."""
        if self._cosigned is None or head.size >= self._cosigned.size:
            self._cosigned = SignedHead(size=head.size, root=head.root, note=note)
            if self._publish is not None:
                await self._publish(note)
        return self._cosigned

    async def published(self) -> SignedHead:
        """The checkpoint to hand out (Rule 5): the last cosigned one, else the current signed one."""
        return self._cosigned if self._cosigned is not None else await self.checkpoint()

    async def inclusion(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        """(leaf hash, proof) for leaf ``index`` in the tree of ``size``."""
        current = await self.sync()
        if index < 0:
            raise Invalid("index must be >= 0", field="index")
        self._check_sizes(index + 1, size, current, "index")
        entries = await self._store.ledger_entries(index, index + 1)
        return leaf_hash(entries[0].data), list(self._tree.inclusion_proof(index, size))

    async def consistency(self, size1: int, size2: int) -> list[bytes]:
        current = await self.sync()
        self._check_sizes(size1, size2, current, "from")
        return list(self._tree.consistency_proof(size1, size2))

    async def entries(self, start: int, end: int) -> list[LedgerEntry]:
        return await self._store.ledger_entries(start, end)

    @staticmethod
    def _check_sizes(low: int, high: int, current: int, field: str) -> None:
        if low < 0 or high > current or low > high:
            raise Invalid(f"need 0 <= {field} < size <= {current}", field=field)
