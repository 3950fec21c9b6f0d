"""Port release standings and streams on Redis: ``gateway.interfaces.protocols.PortStreamStore`` for several processes.

Keys, all under the store's hash tag ``{key_prefix}:`` (one slot, like the message store)::

    port:<LOCODE>:stream          LIST   stream entries (JSON); entry seq N is at index N-1
    port:<LOCODE>:state           HASH   "<B/L>\\x1f<container>" -> standing (JSON); container "" = the B/L
    port:<LOCODE>:bl:<B/L>        SET    containers with a standing under the B/L ("" included)
    port:<LOCODE>:cbl:<container> SET    B/Ls the container has a standing under
    port-applied                  SET    "<sender>\\x1f<message id>" of every applied message
    port-ledger-scanned           STRING the ledger size start-up recovery has looked at

Rule 1: ``apply`` is optimistic: read the stream's length and the standings, plan (pure), build the ledger
        writes, then hand the appended entries, standings, indexes, the applied mark, the ``port_update`` leaf
        and a gate-out's alert to the message store's sequencer as ONE operation of its SEQUENCE script
        (``gateway.infra.redis_sequencer``: written only while the stream still has the length the plan was
        numbered from, under the ledger's fencing token). Every change appends to the stream, so a concurrent change of
        the same port makes the plan stale (``PortMoved``) and it is redone on fresh data (jittered backoff, at
        most :data:`APPLY_ATTEMPTS_MAX` times, then ``Unavailable``). Sequence numbers stay dense, and no entry
        is ever written without its ledger event (issue 17). Within one process the applies of one port take
        turns (a lock per port), so only other processes can conflict.
Rule 2: a snapshot is one MULTI (LLEN + HGETALL): the standings exactly as of the seq it returns.
Rule 3: every redis-py exception becomes ``Unavailable``; no redis object leaves this module.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.core.errors import DuplicateConflict, Unavailable
from gateway.core.release import (
    Plan,
    PortNotice,
    Standing,
    notice_record,
    parse_notice_record,
    parse_standing_record,
    standing_record,
)
from gateway.infra.redis_client import text_client
from gateway.infra.redis_sequencer import PortMoved, PortWrite
from gateway.interfaces.protocols import PortDecide, PortLedger, PortRecord, PortStreamStore

if TYPE_CHECKING:
    from gateway.infra.redis_store import RedisStore

# Redoing a plan more often than this means the port is written by many processes at once: fail, let retry.
APPLY_ATTEMPTS_MAX = 32
# Backoff between redone plans grows by this per attempt (jittered): at most ~0.5 s in all.
RETRY_DELAY_SECONDS = 0.001
NOTICES_PAGE_MAX = 1_000
POOL_CONNECTIONS_MAX = 16
_SEP = "\x1f"


class RedisPortStreams:
    def __init__(self, client: aioredis.Redis, key_prefix: str, store: RedisStore | None) -> None:
        self._client = client
        self._store = store  # the message store on the same Redis and prefix: its sequencer writes (Rule 1)
        self._base = "{" + key_prefix + "}:"
        self._locks: dict[str, asyncio.Lock] = {}  # per port: this process applies one message at a time

    @classmethod
    async def open(
        cls, url: str, *, key_prefix: str, store: RedisStore | None = None, password: str | None = None
    ) -> RedisPortStreams:
        """Connect (``store``, on the same Redis and prefix, already checked its persistence); without a store
        the streams can be read and cleaned, not applied to."""
        client = text_client(url, password=password, what="port streams", max_connections=POOL_CONNECTIONS_MAX)
        return cls(client, key_prefix, store)

    def _key(self, port: str, *parts: str) -> str:
        return self._base + ":".join(("port", port, *parts))

    async def apply(
        self,
        port: str,
        key: tuple[str, str],
        transport_document: str,
        containers: Sequence[str],
        decide: PortDecide,
        *,
        record: PortRecord,
    ) -> Plan | None:
        if self._store is None:
            raise Unavailable("port streams: opened without the message store (read-only)")
        mark = key[0] + _SEP + key[1]
        async with self._locks.setdefault(port, asyncio.Lock()):  # Rule 1: no contention within a process
            for attempt in range(APPLY_ATTEMPTS_MAX):
                if attempt:  # another process appended first: back off a little, with jitter
                    await asyncio.sleep(random.uniform(0, RETRY_DELAY_SECONDS * attempt))  # noqa: S311 - jitter
                read = await self._read(port, mark, transport_document, containers)
                if read is None:
                    return None  # applied before (a recovery pass or another process)
                head, current = read
                plan = decide(current).numbered(head + 1)
                try:
                    return await self._write(self._store, PortWrite(port, mark, head, [], plan), record(plan))
                except (PortMoved, DuplicateConflict):  # DuplicateConflict: the alert came first (re-checked)
                    continue
        raise Unavailable(f"port streams: port {port} changed {APPLY_ATTEMPTS_MAX} times during one apply")

    async def _read(
        self, port: str, mark: str, transport_document: str, containers: Sequence[str]
    ) -> tuple[int, list[Standing]] | None:
        """(the stream's length, the standings the plan sees), or None when the message was applied before."""
        try:
            if await self._client.sismember(self._base + "port-applied", mark):
                return None
            head = int(await self._client.llen(self._key(port, "stream")))  # read first: the script checks it
            return head, await self._current(self._client, port, transport_document, containers)
        except RedisError as exc:
            raise Unavailable(f"port streams: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    async def _write(store: RedisStore, write: PortWrite, ledger: PortLedger) -> Plan | None:
        """The plan's entries, standings, mark and ledger writes as one sequencer operation (Rule 1)."""
        plan: Plan = write.result
        if ledger.alert is not None:
            alert = ledger.alert.message
            if await store.find_message(alert.sender, alert.message_id) is not None:
                ledger = PortLedger(ledger.event)  # raised before (by a version that wrote it on its own)
        for change in plan.changes:
            standing = change.standing()
            write.changes.append(
                (
                    json.dumps(notice_record(change)),
                    standing.transport_document + _SEP + standing.container,
                    json.dumps(standing_record(standing)),
                    standing.transport_document,
                    standing.container,
                )
            )
        written = await store.port_apply(write, ledger)
        return None if written is None else plan

    async def _current(
        self, pipe: Any, port: str, transport_document: str, containers: Sequence[str]
    ) -> list[Standing]:
        fields = [transport_document + _SEP + c for c in await pipe.smembers(self._key(port, "bl", transport_document))]
        for container in dict.fromkeys(containers):
            for bl in await pipe.smembers(self._key(port, "cbl", container)):
                if bl != transport_document:
                    fields.append(bl + _SEP + container)
        if not fields:
            return []
        raw = await pipe.hmget(self._key(port, "state"), fields)
        return [parse_standing_record(port, json.loads(r)) for r in raw if r is not None]

    async def notices(self, port: str, after: int, limit: int) -> list[PortNotice]:
        limit = max(0, min(limit, NOTICES_PAGE_MAX))
        if limit == 0:
            return []
        start = max(after, 0)
        try:
            raw = await self._client.lrange(self._key(port, "stream"), start, start + limit - 1)
        except RedisError as exc:
            raise Unavailable(f"port streams: {type(exc).__name__}: {exc}") from exc
        return [parse_notice_record(json.loads(r)) for r in raw]

    async def snapshot(self, port: str) -> tuple[int, list[Standing]]:
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.llen(self._key(port, "stream"))
                pipe.hgetall(self._key(port, "state"))
                head, state = await pipe.execute()
        except RedisError as exc:
            raise Unavailable(f"port streams: {type(exc).__name__}: {exc}") from exc
        standings = [parse_standing_record(port, json.loads(r)) for r in state.values()]
        standings.sort(key=lambda s: (s.transport_document, s.container))
        return int(head), [s for s in standings if s.open]

    async def applied(self, key: tuple[str, str]) -> bool:
        try:
            return bool(await self._client.sismember(self._base + "port-applied", key[0] + _SEP + key[1]))
        except RedisError as exc:
            raise Unavailable(f"port streams: {type(exc).__name__}: {exc}") from exc

    async def ledger_scanned(self) -> int:
        try:
            raw = await self._client.get(self._base + "port-ledger-scanned")
        except RedisError as exc:
            raise Unavailable(f"port streams: {type(exc).__name__}: {exc}") from exc
        return int(raw) if raw else 0

    async def set_ledger_scanned(self, size: int) -> None:
        try:
            await self._client.set(self._base + "port-ledger-scanned", size)
        except RedisError as exc:
            raise Unavailable(f"port streams: {type(exc).__name__}: {exc}") from exc

    async def delete_all(self) -> None:
        """Tests: remove every port key under this prefix."""
        async for name in self._client.scan_iter(match=self._base.replace("{", "[{]").replace("}", "[}]") + "port*"):
            await self._client.delete(name)

    async def close(self) -> None:
        await self._client.aclose()


if __debug__:

    def _satisfies_the_port(streams: RedisPortStreams) -> PortStreamStore:  # mypy checks the protocol
        return streams
