"""A recorded push outcome is final (issue 17 item 8): over a real HTTPS webhook receiver on loopback, every
message gets exactly ONE ``delivered`` leaf and is pushed once, and no item is attempted past ``max_attempts``.

The race these tests catch: the worker read an item's due row, the push of that item already in flight finished
(recorded ``delivered``, left the in-flight set) before the row was filtered against the in-flight set, and the
stale row was pushed again (a second ``delivered`` leaf; or, for a failing receiver, an attempt past
``max_attempts``). Under load (many concurrent submits beside the pushes) that window opens by chance: 1,000
messages showed 5-8 such repeats in 3 of 5 runs before the fix. A store that answers due reads slowly (a loaded
disk) opens it on every read, which makes the race certain with a few messages: on SQLite 13-17 of 20 messages
were pushed twice before the fix. On Redis the push lease's re-read already caught it; both backends run it.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.app.main import Gateway
from gateway.client.rest import GatewayClient
from gateway.demo.samples import release_notice, to_bytes
from gateway.infra.redis_store import RedisStore
from gateway.interfaces.protocols import DueDelivery
from tests.integration.test_push_delivery import NOTICE, PORT, Start, client, ledger, start, wait_until
from tests.integration.test_push_lease import REDIS_URL
from tests.redisenv import REDIS_PARAM

__all__ = ["start"]  # the fixture pytest hands to these tests

MESSAGES = 1_000
SUBMITTERS = 64  # concurrent submits: pushes finish while the worker reads due work
SLOW_READ_SECONDS = 0.05  # a due read answered this late spans the pushes in flight (receiver delay below)


async def submit_many(gateway: Gateway, fed: Path, count: int) -> None:
    async with client(gateway, fed, "CN-GACC") as gacc:
        left = [count]

        async def submitter(member: GatewayClient) -> None:
            while left[0] > 0:
                left[0] -= 1
                await member.submit(NOTICE, [PORT], to_bytes(release_notice()), schema="cgw.v1.ReleaseNotice")

        await asyncio.gather(*(submitter(gacc) for _ in range(SUBMITTERS)))


def slow_due_reads(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real store, answering due reads up to ``SLOW_READ_SECONDS`` after it made them (as under disk load)."""
    read = gateway.store.due_deliveries

    async def late(recipient: str, now: datetime, limit: int) -> list[DueDelivery]:
        rows = await read(recipient, now, limit)
        await asyncio.sleep(random.uniform(0, SLOW_READ_SECONDS))  # pushes start (and so finish) staggered
        return rows

    monkeypatch.setattr(gateway.store, "due_deliveries", late)


async def attempts(gateway: Gateway) -> list[dict[str, Any]]:
    return [e for e in await ledger(gateway) if e["event"] in {"delivered", "delivery_failed"}]


def delivered(count: int, gateway: Gateway) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return sum(e["event"] == "delivered" for e in await attempts(gateway)) >= count

    return check


async def assert_each_delivered_once(gateway: Gateway, pushed: list[bytes], count: int) -> None:
    await asyncio.sleep(0.5)  # a stale re-push would arrive and be recorded now
    events = await attempts(gateway)
    leaves = collections.Counter((e["sender"], e["message_id"]) for e in events if e["event"] == "delivered")
    repeated = {key: n for key, n in leaves.items() if n > 1}
    assert repeated == {}, f"{len(repeated)} of {count} messages have more than one delivered leaf"
    assert len(leaves) == count
    subjects = collections.Counter(json.loads(body)["subject"] for body in pushed)
    assert len(subjects) == count and set(subjects.values()) == {1}  # and each was pushed once


async def test_every_message_to_a_healthy_webhook_has_exactly_one_delivered_leaf(start: Start) -> None:
    gateway, receiver, fed = await start(concurrency_per_recipient=16, poll_interval_seconds=0.01)

    await submit_many(gateway, fed, MESSAGES)
    await wait_until(delivered(MESSAGES, gateway), within=120)

    await assert_each_delivered_once(gateway, [r.body for r in receiver.received], MESSAGES)
    assert {e["event"] for e in await attempts(gateway)} == {"delivered"}


@pytest.fixture(params=["sqlite", REDIS_PARAM])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    """The ``[store]`` table of the gateway under test: the default SQLite, or the real Redis under a fresh prefix
    (deleted afterwards)."""
    if request.param == "sqlite":
        yield {}
        return
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    yield {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix, "allow_no_persistence": True}
    store = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
    try:
        await store.delete_all()
    finally:
        await store.close()


async def test_a_due_row_read_before_a_push_finished_is_not_pushed_again(
    start: Start, backend: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway, receiver, fed = await start(backend, concurrency_per_recipient=16, poll_interval_seconds=0.01)
    receiver.delay = SLOW_READ_SECONDS / 2  # pushes finish while due reads are on their way
    slow_due_reads(gateway, monkeypatch)

    async with client(gateway, fed, "CN-GACC") as gacc:
        for _ in range(20):  # each accept wakes the worker while earlier pushes are in flight
            await gacc.submit(NOTICE, [PORT], to_bytes(release_notice()), schema="cgw.v1.ReleaseNotice")
            await asyncio.sleep(SLOW_READ_SECONDS / 5)
    await wait_until(delivered(20, gateway), within=30)

    await assert_each_delivered_once(gateway, [r.body for r in receiver.received], 20)
    assert {e["event"] for e in await attempts(gateway)} == {"delivered"}


async def test_failing_pushes_never_exceed_max_attempts_and_die_once(
    start: Start, backend: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway, receiver, fed = await start(
        backend,
        max_attempts=4,
        concurrency_per_recipient=4,
        poll_interval_seconds=0.01,
        backoff_base_seconds=0.001,
        backoff_max_seconds=0.004,
    )
    receiver.default = 503
    receiver.delay = SLOW_READ_SECONDS / 2
    slow_due_reads(gateway, monkeypatch)
    count = 20

    await submit_many(gateway, fed, count)
    await wait_until(lambda: _dead(gateway, count), within=60)
    await asyncio.sleep(0.5)

    per_message = collections.defaultdict(list)
    for e in await attempts(gateway):
        per_message[(e["sender"], e["message_id"])].append((e["attempt"], e["outcome"]))
    assert len(per_message) == count
    wrong = {k: v for k, v in per_message.items() if v != [(1, "retry"), (2, "retry"), (3, "retry"), (4, "dead")]}
    assert wrong == {}, f"{len(wrong)} of {count} messages: attempts repeated, or past max_attempts"
    assert {d.attempts for d in await gateway.store.dead_letters(None, 0, 1000)} == {4}
    assert len(receiver.received) == 4 * count


async def _dead(gateway: Gateway, count: int) -> bool:
    return await gateway.store.dead_letter_count() >= count


async def test_a_receiver_down_for_a_while_then_up_gets_everything_and_nothing_is_dead_lettered(
    start: Start,
) -> None:
    """Connection errors (the receiver's port refuses) back off like a 5xx, over the default ``max_attempts``:
    the outage is longer than the 8 default attempts of before covered at this backoff scale, shorter than the
    span of the default schedule now (the README's hour, scaled down to backoff_base 0.01 s, backoff_max 0.2 s)."""
    gateway, receiver, fed = await start(backoff_base_seconds=0.01, backoff_max_seconds=0.2)
    port = receiver.port
    await receiver.stop()  # down: every push is a refused connection
    count = 10

    await submit_many(gateway, fed, count)
    await asyncio.sleep(1.2)
    await receiver.start(port)  # up again, same URL
    await wait_until(delivered(count, gateway), within=30)

    assert await gateway.store.dead_letter_count() == 0
    events = await attempts(gateway)
    failed = [e for e in events if e["event"] == "delivery_failed"]
    assert failed and {(e["status"], e["outcome"]) for e in failed} == {("connect-error", "retry")}
    await assert_each_delivered_once(gateway, [r.body for r in receiver.received], count)
    # every retry waited at least the lower bound of its backoff, as after a 5xx
    by_message = collections.defaultdict(list)
    for e in events:
        by_message[e["message_id"]].append((e["attempt"], datetime.fromisoformat(e["at"].replace("Z", "+00:00"))))
    for made in by_message.values():
        for (n, at), (_, then) in itertools.pairwise(sorted(made)):
            assert (then - at).total_seconds() >= min(0.2, 0.01 * 2 ** (n - 1)) / 2
