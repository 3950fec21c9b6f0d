"""Several RedisStore instances (each with its own sequencer thread and connections, as separate processes
have) on ONE key prefix: one dense ledger, receipts signed for the index they are stored at, one winner per
(sender, id). Real Redis at 127.0.0.1:6379, own prefix, deleted afterwards."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from gateway.core.errors import DuplicateConflict
from gateway.infra.redis_store import RedisStore
from gateway.interfaces.protocols import StoredMessage
from tests.contract.conftest import Kit
from tests.redisenv import REDIS_URL

pytestmark = pytest.mark.redis

WRITERS = 3


@pytest.fixture
async def stores() -> AsyncIterator[list[RedisStore]]:
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    opened = [await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True) for _ in range(WRITERS)]
    try:
        yield opened
    finally:
        await opened[0].delete_all()
        for store in opened:
            await store.close()


async def test_concurrent_writers_share_one_dense_ledger(stores: list[RedisStore]) -> None:
    kit = Kit()
    messages = [kit.message(recipients=("CN-GACC", "NL-DOUANE")) for _ in range(300)]
    events = [kit.event(n) for n in range(60)]

    results = await asyncio.gather(
        *(stores[n % WRITERS].accept(m, kit.accepted(m), kit.make_receipt) for n, m in enumerate(messages)),
        *(stores[n % WRITERS].record(e) for n, e in enumerate(events)),
    )

    stored = [r for r in results if isinstance(r, StoredMessage)]
    recorded = [r for r in results if isinstance(r, int)]
    assert sorted([s.leaf_index for s in stored] + recorded) == list(range(360))
    entries = {}
    for start in range(0, 360, 100):
        entries.update({e.index: e.data for e in await stores[1].ledger_entries(start, start + 100)})
    for s in stored:
        assert kit.receipt_valid(s.receipt, s.leaf_index, s.received_at)  # signed for the index it is stored at
        assert entries[s.leaf_index] == kit.accepted(s).canonical()
        assert await stores[2].find_message(s.sender, s.message_id) == s
    for n, index in enumerate(recorded):
        assert entries[index] == events[n].canonical()
    # every inbox entry exactly once, in one cursor order whichever process wrote it
    inbox = await stores[0].pull("NL-DOUANE", 0, 1000)
    assert sorted(i.message.message_id for i in inbox) == sorted(m.message_id for m in messages)
    assert [i.cursor for i in inbox] == sorted({i.cursor for i in inbox})
    assert sum(s.batches for s in stores) >= 1


async def test_the_same_message_raced_at_every_writer_is_accepted_once(stores: list[RedisStore]) -> None:
    kit = Kit()
    for _ in range(20):
        message = kit.message()
        results = await asyncio.gather(
            *(s.accept(message, kit.accepted(message), kit.make_receipt) for s in stores), return_exceptions=True
        )
        won = [r for r in results if isinstance(r, StoredMessage)]
        assert len(won) == 1
        assert all(isinstance(r, DuplicateConflict) for r in results if r not in won)
        assert await stores[0].find_message(message.sender, message.message_id) == won[0]
    assert await stores[0].ledger_size() == 20


async def test_close_finishes_queued_writes(stores: list[RedisStore]) -> None:
    kit = Kit()
    writes = [asyncio.ensure_future(stores[1].record(kit.event(n))) for n in range(200)]
    await asyncio.sleep(0)
    await stores[1].close()
    assert sorted(await asyncio.gather(*writes)) == list(range(200))
    assert await stores[0].ledger_size() == 200
