"""Port release standings and streams on SQLite (``<data_dir>/ports.db``): ``gateway.ports.PortStreamStore``.

Rule 1: one ``apply`` is one ``BEGIN IMMEDIATE`` transaction: read the standings, plan (pure), append the
        stream entries, upsert the standings, mark the message applied; ``synchronous = FULL`` makes the
        commit durable before ``apply`` returns.
Rule 2: a snapshot is read in one read transaction, so its standings are exactly those at the seq it returns.
Rule 3: every ``sqlite3.Error`` becomes ``Unavailable``; no sqlite object leaves this module.
Rule 4: untrusted numbers are bounded (:data:`NOTICES_PAGE_MAX`); SQL is parameterised, never formatted.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from gateway.core.errors import Unavailable
from gateway.core.release import (
    Plan,
    PortNotice,
    Standing,
    notice_record,
    parse_notice_record,
    parse_standing_record,
    standing_record,
)
from gateway.ports import PortDecide, PortStreamStore

# Entries one notices() call returns at most (the REST limit is lower).
NOTICES_PAGE_MAX = 1_000
# Another process holding the write lock (a CLI) is waited for this long before Unavailable.
BUSY_TIMEOUT_MS = 5_000
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS port_stream (
    port TEXT NOT NULL, seq INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (port, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS port_standings (
    port TEXT NOT NULL, transport_document TEXT NOT NULL, container TEXT NOT NULL, open INTEGER NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (port, transport_document, container)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS port_standings_container ON port_standings (port, container);
CREATE TABLE IF NOT EXISTS port_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS port_applied (
    sender TEXT NOT NULL, message_id TEXT NOT NULL, PRIMARY KEY (sender, message_id)
) WITHOUT ROWID;
"""


class SqlitePortStreams:
    """Build with :meth:`open`; the connection is used from worker threads under one lock."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._lock = threading.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqlitePortStreams:
        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(_SCHEMA)
            return conn

        try:
            return cls(await asyncio.to_thread(connect))
        except sqlite3.Error as exc:
            raise Unavailable(f"port streams: cannot open {path}: {exc}") from exc

    async def apply(
        self, port: str, key: tuple[str, str], transport_document: str, containers: Sequence[str], decide: PortDecide
    ) -> Plan | None:
        def op(conn: sqlite3.Connection) -> Plan | None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute("SELECT 1 FROM port_applied WHERE sender = ? AND message_id = ?", key).fetchone():
                    conn.execute("ROLLBACK")
                    return None
                current = _standings(conn, port, transport_document, containers)
                head = _head(conn, port)
                plan = decide(current).numbered(head + 1)
                for change in plan.changes:
                    conn.execute(
                        "INSERT INTO port_stream (port, seq, record) VALUES (?, ?, ?)",
                        (port, change.seq, json.dumps(notice_record(change))),
                    )
                    standing = change.standing()
                    conn.execute(
                        "INSERT OR REPLACE INTO port_standings VALUES (?, ?, ?, ?, ?)",
                        (
                            port,
                            standing.transport_document,
                            standing.container,
                            int(standing.open),
                            json.dumps(standing_record(standing)),
                        ),
                    )
                conn.execute("INSERT INTO port_applied (sender, message_id) VALUES (?, ?)", key)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return plan

        return await self._run(op)

    async def notices(self, port: str, after: int, limit: int) -> list[PortNotice]:
        limit = max(0, min(limit, NOTICES_PAGE_MAX))

        def op(conn: sqlite3.Connection) -> list[PortNotice]:
            rows = conn.execute(
                "SELECT record FROM port_stream WHERE port = ? AND seq > ? ORDER BY seq LIMIT ?",
                (port, max(after, 0), limit),
            ).fetchall()
            return [parse_notice_record(json.loads(r[0])) for r in rows]

        return await self._run(op)

    async def snapshot(self, port: str) -> tuple[int, list[Standing]]:
        def op(conn: sqlite3.Connection) -> tuple[int, list[Standing]]:
            conn.execute("BEGIN")
            try:
                head = _head(conn, port)
                rows = conn.execute(
                    "SELECT record FROM port_standings WHERE port = ? AND open = 1"
                    " ORDER BY transport_document, container",
                    (port,),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            return head, [parse_standing_record(port, json.loads(r[0])) for r in rows]

        return await self._run(op)

    async def applied(self, key: tuple[str, str]) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return bool(conn.execute("SELECT 1 FROM port_applied WHERE sender = ? AND message_id = ?", key).fetchone())

        return await self._run(op)

    async def ledger_scanned(self) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT value FROM port_meta WHERE name = 'ledger_scanned'").fetchone()
            return int(row[0]) if row else 0

        return await self._run(op)

    async def set_ledger_scanned(self, size: int) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO port_meta (name, value) VALUES ('ledger_scanned', ?)", (size,))

        await self._run(op)

    async def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def _run(self, op: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return op(self._conn)

        try:
            return await asyncio.to_thread(locked)
        except sqlite3.Error as exc:
            raise Unavailable(f"port streams: {type(exc).__name__}: {exc}") from exc


def _head(conn: sqlite3.Connection, port: str) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM port_stream WHERE port = ?", (port,)).fetchone()[0])


def _standings(
    conn: sqlite3.Connection, port: str, transport_document: str, containers: Sequence[str]
) -> list[Standing]:
    rows = conn.execute(
        "SELECT record FROM port_standings WHERE port = ? AND transport_document = ?", (port, transport_document)
    ).fetchall()
    for container in dict.fromkeys(containers):
        rows += conn.execute(
            "SELECT record FROM port_standings WHERE port = ? AND container = ? AND transport_document != ?",
            (port, container, transport_document),
        ).fetchall()
    return [parse_standing_record(port, json.loads(r[0])) for r in rows]


if __debug__:

    def _satisfies_the_port(streams: SqlitePortStreams) -> PortStreamStore:  # mypy checks the protocol
        return streams
