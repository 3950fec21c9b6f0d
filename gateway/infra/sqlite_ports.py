"""Port release standings and streams on SQLite, in the message store's own database (``gateway.db``, schema
v5): ``gateway.interfaces.protocols.PortStreamStore``.

Rule 1: one ``apply`` is one request of the store's group-commit writer, so ONE transaction: read the
        standings, plan (pure), append the stream entries, upsert the standings, mark the message applied, store
        a refused gate-out's alert (message, home inbox entry, ledger leaf, receipt) and append the
        ``port_update`` ledger leaf; ``synchronous = FULL`` makes it durable before ``apply`` returns. The port
        tables live in ``gateway.db`` because SQLite's transactions over ATTACHed WAL databases are atomic per
        file, not across files (sqlite.org/lang_attach.html): a separate ``ports.db`` could never share a
        transaction with the ledger (issue 17).
Rule 2: a snapshot is read in one read transaction, so its standings are exactly those at the seq it returns.
Rule 3: every ``sqlite3.Error`` becomes ``Unavailable`` (the store's reader and writer do it); no sqlite object
        leaves the infra package.
Rule 4: untrusted numbers are bounded (:data:`NOTICES_PAGE_MAX`); SQL is parameterised, never formatted.
Rule 5: a ``<data_dir>/ports.db`` left by an earlier version is imported once, in one transaction, into empty
        port tables, then renamed ``ports.db.imported`` (kept for the operator, never read again).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.core.release import (
    Plan,
    PortNotice,
    Standing,
    notice_record,
    parse_notice_record,
    parse_standing_record,
    standing_record,
)
from gateway.infra.sqlite_schema import sqlite_unavailable
from gateway.interfaces.protocols import PortDecide, PortRecord, PortStreamStore

if TYPE_CHECKING:
    from gateway.infra.sqlite import SqliteStore

# Entries one notices() call returns at most (the REST limit is lower).
NOTICES_PAGE_MAX = 1_000
# The file the port tables lived in before schema v5 (Rule 5), and what it is renamed to once imported.
LEGACY_FILE = "ports.db"
IMPORTED_SUFFIX = ".imported"
_TABLES = ("port_stream", "port_standings", "port_meta", "port_applied")


class SqlitePortStreams:
    """The port half of a :class:`SqliteStore` (same database, same writer). ``close`` leaves the store open."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    @classmethod
    async def open(cls, store: SqliteStore, legacy: Path | None = None) -> SqlitePortStreams:
        """The port streams of ``store``, importing ``legacy`` (an old ports.db) first when it exists."""
        if legacy is not None and await asyncio.to_thread(legacy.exists):
            await import_legacy(store, legacy)
        return cls(store)

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
        return await self._store.port_apply(
            lambda conn: apply(conn, port, key, transport_document, containers, decide=decide), record
        )

    async def notices(self, port: str, after: int, limit: int) -> list[PortNotice]:
        limit = max(0, min(limit, NOTICES_PAGE_MAX))

        def op(conn: sqlite3.Connection) -> list[PortNotice]:
            rows = conn.execute(
                "SELECT record FROM port_stream WHERE port = ? AND seq > ? ORDER BY seq LIMIT ?",
                (port, max(after, 0), limit),
            ).fetchall()
            return [parse_notice_record(json.loads(r[0])) for r in rows]

        return await self._store.port_read(op)

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

        return await self._store.port_read(op)

    async def applied(self, key: tuple[str, str]) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            return _applied(conn, key)

        return await self._store.port_read(op)

    async def ledger_scanned(self) -> int:
        def op(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT value FROM port_meta WHERE name = 'ledger_scanned'").fetchone()
            return int(row[0]) if row else 0

        return await self._store.port_read(op)

    async def set_ledger_scanned(self, size: int) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO port_meta (name, value) VALUES ('ledger_scanned', ?)", (size,))

        await self._store.port_write(op)

    async def close(self) -> None:
        """Nothing of its own to close: the store owns the database."""


def apply(
    conn: sqlite3.Connection,
    port: str,
    key: tuple[str, str],
    transport_document: str,
    containers: Sequence[str],
    *,
    decide: PortDecide,
) -> Plan | None:
    """Rule 1, the port half (inside the writer's transaction): None when ``key`` was applied before."""
    if _applied(conn, key):
        return None
    current = _standings(conn, port, transport_document, containers)
    plan = decide(current).numbered(_head(conn, port) + 1)
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
    return plan


async def import_legacy(store: SqliteStore, legacy: Path) -> None:
    """Rule 5."""

    def read() -> dict[str, list[tuple[object, ...]]]:
        conn = sqlite3.connect(legacy)
        try:
            return {table: conn.execute(f"SELECT * FROM {table}").fetchall() for table in _TABLES}  # noqa: S608 - names are ours
        finally:
            conn.close()

    def write(conn: sqlite3.Connection, tables: dict[str, list[tuple[object, ...]]]) -> int:
        if any(conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in _TABLES):  # noqa: S608
            return 0  # imported before (the rename did not happen): the database has them
        for table, rows in tables.items():
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608 - names are ours
        return sum(len(rows) for rows in tables.values())

    try:
        tables = await asyncio.to_thread(read)
    except sqlite3.Error as exc:
        raise sqlite_unavailable(exc, f"port streams: cannot import {legacy}") from exc
    await store.port_write(lambda conn: write(conn, tables))
    await asyncio.to_thread(legacy.rename, legacy.with_name(legacy.name + IMPORTED_SUFFIX))


def _applied(conn: sqlite3.Connection, key: tuple[str, str]) -> bool:
    return bool(conn.execute("SELECT 1 FROM port_applied WHERE sender = ? AND message_id = ?", key).fetchone())


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
