"""The AEO registry's own persistence: one SQLite file (``aeo.db`` in the data directory).

Kept apart from the message store (``gateway.db``) on purpose: it is reference data with another life cycle
(bulk imports by an operator's CLI while the gateway runs), and the shared ``Store`` port stays about messages.

Rule 1: one row per (issuing administration, authorisation number), the current state only; history is in
        the ledger (the accepted ``aeo.status.v1`` message and the reload events), never here.
Rule 2: writes are one transaction each (a whole import or one message's updates), ``synchronous=FULL`` in
        WAL mode, so a reader (the running gateway) sees all of an import or none of it.
Rule 3: ``data_version`` changes when ANOTHER connection committed (SQLite's ``PRAGMA data_version``): the
        gateway polls it to notice a CLI import and rebuild its in-memory index.
Rule 4: rows are re-checked by ``parse_authorisation`` when loaded: the file is data, not trusted code.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from gateway.app.settings import Settings
from gateway.core.aeo import Authorisation, MraTable, administration_of
from gateway.core.aeolist import (
    MAX_IMPORT_BYTES,
    ImportReport,
    parse_admin,
    parse_authorisation,
    parse_list,
    parse_mra_table,
)
from gateway.core.errors import GatewayError, LimitExceeded, Unavailable
from gateway.core.model import Registry
from gateway.features.aeo.recognition import Recognition, Recorder
from gateway.infra.sqlite_schema import sqlite_unavailable

FILENAME = "aeo.db"
MRA_FILENAME = "mra.json"
MAX_MRA_BYTES = 1024 * 1024  # a few hundred arrangements are ~300 KiB of JSON
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 5_000  # an import holding the write lock for a moment must not fail the gateway's write

_DDL = (
    "CREATE TABLE IF NOT EXISTS aeo_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS authorisations (
        admin      TEXT NOT NULL,
        number     TEXT NOT NULL,
        record     TEXT NOT NULL,
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (admin, number)
    ) WITHOUT ROWID""",
    # aeo.status.v1 messages whose updates are stored (written in the same transaction as the updates).
    """CREATE TABLE IF NOT EXISTS applied (
        sender     TEXT NOT NULL,
        message_id TEXT NOT NULL,
        PRIMARY KEY (sender, message_id)
    ) WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
)


class AeoStore:
    """Synchronous and small; callers on the event loop run writes in a thread (``asyncio.to_thread``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._init_schema()
        except sqlite3.Error as exc:
            raise sqlite_unavailable(exc, f"aeo store {path}") from None

    @classmethod
    def in_directory(cls, data_dir: Path) -> AeoStore:
        return cls(data_dir / FILENAME)

    def _init_schema(self) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _DDL:
                    self._conn.execute(statement)
                row = self._conn.execute("SELECT version FROM aeo_schema WHERE id = 1").fetchone()
                if row is None:
                    self._conn.execute("INSERT INTO aeo_schema (id, version) VALUES (1, ?)", (SCHEMA_VERSION,))
                elif row[0] != SCHEMA_VERSION:
                    raise Unavailable(f"aeo store schema version {row[0]} is not {SCHEMA_VERSION}")
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

    def upsert(self, authorisations: Sequence[Authorisation], message: tuple[str, str] | None = None) -> int:
        """Insert or replace each authorisation (one transaction); returns how many rows were written.

        ``message`` (sender, message id) marks the ``aeo.status.v1`` message they came from as applied."""
        rows = [(a.admin, a.number, json.dumps(a.record(), separators=(",", ":"))) for a in authorisations]
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(
                    "INSERT INTO authorisations (admin, number, record) VALUES (?, ?, ?) "
                    "ON CONFLICT (admin, number) DO UPDATE SET record = excluded.record, "
                    "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                    rows,
                )
                if message is not None:
                    self._conn.execute("INSERT OR IGNORE INTO applied (sender, message_id) VALUES (?, ?)", message)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise sqlite_unavailable(exc, "aeo store write failed") from None
        return len(rows)

    def load(self) -> list[Authorisation]:
        """Every stored authorisation, re-checked (Rule 4); a row that no longer parses stops the load."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT number, admin, record FROM authorisations ORDER BY admin, number"
            ).fetchall()
        out: list[Authorisation] = []
        for number, admin, record in rows:
            data = json.loads(record)
            try:
                out.append(parse_authorisation(data, admin=admin, source=str(data.get("source", "")), path=number))
            except GatewayError as exc:
                raise Unavailable(f"aeo store row {number} does not parse: {exc.detail}", field=exc.field) from None
        return out

    def is_applied(self, sender: str, message_id: str) -> bool:
        with self._lock:
            row = self._conn.execute(
                "SELECT 1 FROM applied WHERE sender = ? AND message_id = ?", (sender, message_id)
            ).fetchone()
        return row is not None

    def ledger_scanned(self) -> int:
        """The ledger size up to which every accepted ``aeo.status.v1`` is known to be applied."""
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = 'ledger_scanned'").fetchone()
        return int(row[0]) if row else 0

    def set_ledger_scanned(self, size: int) -> None:
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('ledger_scanned', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (size,),
                )
            except sqlite3.Error as exc:  # a full disk: Unavailable, like every write of this store
                raise sqlite_unavailable(exc, "aeo store write failed") from None

    def data_version(self) -> int:
        """Changes whenever another connection committed (Rule 3)."""
        with self._lock:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def load_mra_table(policies_dir: Path) -> MraTable:
    """``mra.json`` beside the policies (deployer-maintained data); without one, no MRA is applied."""
    path = policies_dir / MRA_FILENAME
    if not path.is_file():
        return MraTable(version="none", arrangements=(), home_benefits=())
    if path.stat().st_size > MAX_MRA_BYTES:
        raise Unavailable(f"{path} is larger than {MAX_MRA_BYTES} bytes", field=str(path))
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise Unavailable(f"{path} is not readable JSON: {exc}", field=str(path)) from None
    return parse_mra_table(document, source=MRA_FILENAME)


def open_recognition(settings: Settings, registry: Registry, record: Recorder | None) -> Recognition:
    """The composition root's one call: store in ``data_dir``, MRA table from ``policies_dir``, home from the
    registry (its member's country, mapped to its administration)."""
    home = registry.get(settings.member_id)
    if home is None:
        raise Unavailable(f"the home member {settings.member_id} is not in the registry", field="gateway.member_id")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Recognition(
        AeoStore.in_directory(settings.data_dir),
        load_mra_table(settings.policies_dir),
        home_member=home.id,
        home_admin=administration_of(home.country),
        record=record,
    )


def import_list_file(data_dir: Path, path: Path, *, issuer: str, fmt: str | None = None) -> ImportReport:
    """Read a partner's (or the home administration's) list file, store every good row in one transaction and
    return the per-row report. ``fmt`` is ``csv`` or ``json`` (default: from the file suffix)."""
    admin = parse_admin(issuer)
    kind = fmt or ("csv" if path.suffix.lower() == ".csv" else "json")
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise LimitExceeded(f"{path.name} is larger than {MAX_IMPORT_BYTES} bytes", field="file")
        data = path.read_bytes()
    except OSError as exc:
        raise Unavailable(f"cannot read {path}: {exc.strerror}", field=str(path)) from None
    report = parse_list(data, fmt=kind, admin=admin, source=f"import:{admin}:{path.name}")
    data_dir.mkdir(parents=True, exist_ok=True)
    store = AeoStore.in_directory(data_dir)
    try:
        store.upsert(report.authorisations)
    finally:
        store.close()
    return report
