"""The witness's latest cosigned checkpoint per log: ``ports.WitnessStore`` on SQLite and on Redis.

Rule 1 (SQLite): ``<data_dir>/witness.db``, WAL, ``synchronous=FULL``; a compare-and-set is one ``BEGIN
        IMMEDIATE`` transaction (read, compare, write, commit), so it is atomic across threads and processes.
Rule 2 (Redis): one hash ``{key_prefix}:witness`` (origin -> ``<size> <base64 root>``), changed only by a Lua
        script that compares and writes in one step; every gateway process sharing the prefix shares it.
Rule 3: every backend error becomes ``Unavailable`` (the witness answers 503, the log retries later).
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import threading
from pathlib import Path

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.core.errors import Unavailable
from gateway.core.witness import Cosigned
from gateway.infra.redis_client import text_client
from gateway.interfaces.protocols import WitnessStore

FILENAME = "witness.db"
BUSY_TIMEOUT_MS = 5_000

_DDL = "CREATE TABLE IF NOT EXISTS cosigned (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, root BLOB NOT NULL)"

# KEYS[1] the hash; ARGV: origin, the expected value ("" = none), the new value
_CAS = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (current or '') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


def _encode(state: Cosigned | None) -> str:
    return "" if state is None else f"{state.size} {base64.b64encode(state.root).decode('ascii')}"


def _decode(value: str | None) -> Cosigned | None:
    if not value:
        return None
    size, root = value.split(" ", 1)
    return Cosigned(int(size), base64.b64decode(root))


class SqliteWitnessStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute(_DDL)
        except sqlite3.Error as exc:
            raise Unavailable(f"witness store {path}: {exc}") from None

    @classmethod
    def in_directory(cls, data_dir: Path) -> SqliteWitnessStore:
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir / FILENAME)

    def _latest(self, origin: str) -> Cosigned | None:
        row = self._conn.execute("SELECT size, root FROM cosigned WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else Cosigned(int(row[0]), bytes(row[1]))

    def _read(self, origin: str) -> Cosigned | None:
        with self._lock:
            return self._latest(origin)

    def _cas(self, origin: str, expected: Cosigned | None, new: Cosigned) -> bool:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                if self._latest(origin) != expected:
                    self._conn.execute("ROLLBACK")
                    return False
                self._conn.execute(
                    "INSERT INTO cosigned (origin, size, root) VALUES (?, ?, ?) "
                    "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root",
                    (origin, new.size, new.root),
                )
                self._conn.execute("COMMIT")
                return True
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    async def latest(self, origin: str) -> Cosigned | None:
        try:
            return await asyncio.to_thread(self._read, origin)
        except sqlite3.Error as exc:
            raise Unavailable(f"witness store: {exc}") from None

    async def compare_and_set(self, origin: str, expected: Cosigned | None, new: Cosigned) -> bool:
        try:
            return await asyncio.to_thread(self._cas, origin, expected, new)
        except sqlite3.Error as exc:
            raise Unavailable(f"witness store: {exc}") from None

    async def close(self) -> None:
        with self._lock:
            self._conn.close()


class RedisWitnessStore:
    def __init__(self, client: aioredis.Redis, key_prefix: str) -> None:
        self._client = client
        self._key = "{" + key_prefix + "}:witness"
        self._script = client.register_script(_CAS)

    @classmethod
    def open(cls, url: str, *, key_prefix: str, password: str | None = None) -> RedisWitnessStore:
        client = text_client(url, password=password, what="witness store")
        return cls(client, key_prefix)

    async def latest(self, origin: str) -> Cosigned | None:
        try:
            value = await self._client.hget(self._key, origin)
            return _decode(None if value is None else str(value))
        except RedisError as exc:
            raise Unavailable(f"witness store: {type(exc).__name__}: {exc}") from exc

    async def compare_and_set(self, origin: str, expected: Cosigned | None, new: Cosigned) -> bool:
        try:
            written = await self._script(keys=[self._key], args=[origin, _encode(expected), _encode(new)])
        except RedisError as exc:
            raise Unavailable(f"witness store: {type(exc).__name__}: {exc}") from exc
        return bool(written)

    async def delete_all(self) -> None:
        """Tests: forget every cosigned state under this prefix."""
        await self._client.delete(self._key)

    async def close(self) -> None:
        await self._client.aclose()


if __debug__:

    def _satisfies_the_port(sqlite: SqliteWitnessStore, redis: RedisWitnessStore) -> tuple[WitnessStore, ...]:
        return sqlite, redis
