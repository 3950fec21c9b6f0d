"""ports.WitnessStore contract, on SQLite and on a real Redis: the latest cosigned state per origin, changed only
by an atomic compare-and-set (C2SP tlog-witness: the size check and the persist are one step)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.core.witness import Cosigned
from gateway.infra.witness_store import RedisWitnessStore, SqliteWitnessStore
from gateway.interfaces.protocols import WitnessStore
from tests.contract.conftest import REDIS_URL

ORIGIN = "cgw.cn-gacc.example/ledger"
Opener = Callable[[], Awaitable[WitnessStore]]


def _state(size: int, tag: str = "") -> Cosigned:
    return Cosigned(size, hashlib.sha256(f"{tag}{size}".encode()).digest())


@pytest.fixture(params=["sqlite", "redis"])
async def opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Opener]:
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    opened: list[WitnessStore] = []

    async def open_store() -> WitnessStore:
        store: WitnessStore
        if request.param == "sqlite":
            store = SqliteWitnessStore.in_directory(tmp_path)
        else:
            store = RedisWitnessStore.open(REDIS_URL, key_prefix=prefix)
        opened.append(store)
        return store

    yield open_store
    if request.param == "redis":
        cleaner = RedisWitnessStore.open(REDIS_URL, key_prefix=prefix)
        await cleaner.delete_all()
        await cleaner.close()
    for store in opened:
        await store.close()


async def test_nothing_cosigned_then_first_state_then_growth(opener: Opener) -> None:
    store = await opener()
    assert await store.latest(ORIGIN) is None
    assert await store.compare_and_set(ORIGIN, None, _state(5))
    assert await store.latest(ORIGIN) == _state(5)
    assert await store.compare_and_set(ORIGIN, _state(5), _state(9))
    assert await store.latest(ORIGIN) == _state(9)
    assert await store.latest("other.example/log") is None


async def test_a_stale_expectation_writes_nothing(opener: Opener) -> None:
    store = await opener()
    assert await store.compare_and_set(ORIGIN, None, _state(5))
    assert not await store.compare_and_set(ORIGIN, None, _state(7))  # someone cosigned first
    assert not await store.compare_and_set(ORIGIN, _state(5, "fork"), _state(7))  # same size, other root
    assert not await store.compare_and_set(ORIGIN, _state(3), _state(7))
    assert await store.latest(ORIGIN) == _state(5)


async def test_concurrent_requests_from_one_state_exactly_one_wins(opener: Opener) -> None:
    first, second = await opener(), await opener()  # two connections (two gateway processes on Redis)
    assert await first.compare_and_set(ORIGIN, None, _state(5))
    candidates = [_state(6 + i) for i in range(20)]
    results = await asyncio.gather(
        *((first if i % 2 else second).compare_and_set(ORIGIN, _state(5), c) for i, c in enumerate(candidates))
    )
    assert sum(results) == 1
    assert await first.latest(ORIGIN) == candidates[results.index(True)]


async def test_the_state_survives_a_reopen(opener: Opener) -> None:
    store = await opener()
    assert await store.compare_and_set(ORIGIN, None, _state(11))
    await store.close()
    reopened = await opener()
    assert await reopened.latest(ORIGIN) == _state(11)
