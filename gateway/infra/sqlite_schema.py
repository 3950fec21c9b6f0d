"""The SQLite schema of the embedded store, its version check and the connection settings.

Rule 1: the schema carries its version in ``schema_version``; a database written by a NEWER gateway is refused
        with ``Unavailable`` (fail closed: we never guess at a layout we do not know).
Rule 2: the write connection runs in WAL mode with ``synchronous=FULL`` (a commit returns only after the WAL
        is fsync'd) and foreign keys on; read connections are ``query_only``.
Rule 3: the ledger is append-only and dense, enforced by the database itself as well as by the code: triggers
        refuse UPDATE, DELETE and any index other than the next one.
Rule 4: times are stored as RFC 3339 UTC text (messages) or integer microseconds since the epoch (replay
        expiry, so the purge can use an index range).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from gateway.core.errors import Internal, Unavailable

SCHEMA_VERSION = 7

# A writer waits this long for a lock held by another process (e.g. a backup tool) before failing closed.
BUSY_TIMEOUT_MS = 5_000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Version 2: push delivery state, one row per inbox item ever attempted (version 1 files are migrated).
_DDL_V2 = """
CREATE TABLE deliveries (
    cursor          INTEGER PRIMARY KEY REFERENCES inbox (cursor),
    recipient       TEXT NOT NULL,
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    outcome         TEXT NOT NULL CHECK (outcome IN ('delivered', 'retry', 'dead')),
    last_status     TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    next_attempt_at INTEGER
);
CREATE INDEX deliveries_dead ON deliveries (recipient, cursor) WHERE outcome = 'dead';
"""

# Version 3: forwards (which message forwards which original) and withdrawals (inbox entries a recall withdrew).
_DDL_V3 = """
CREATE TABLE forwards (
    sender          TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    original_sender TEXT NOT NULL,
    original_id     TEXT NOT NULL,
    PRIMARY KEY (sender, message_id),
    FOREIGN KEY (sender, message_id) REFERENCES messages (sender, message_id),
    FOREIGN KEY (original_sender, original_id) REFERENCES messages (sender, message_id)
);
CREATE INDEX forwards_original ON forwards (original_sender, original_id);
CREATE TABLE withdrawals (
    cursor        INTEGER PRIMARY KEY REFERENCES inbox (cursor),
    recall_sender TEXT NOT NULL,
    recall_id     TEXT NOT NULL
);
"""

# Version 4: a forward's PARENT (the message it forwards; what a recall withdraws follows the parents,
# ``gateway.core.forwarding.recalled_copies``). A forward kept by version 3 has NULL here: it counts as a child
# of the root original it links to (a recall then withdraws less, never more).
_DDL_V4 = """
ALTER TABLE forwards ADD COLUMN parent_sender TEXT;
ALTER TABLE forwards ADD COLUMN parent_id TEXT;
"""

# Version 5: the port release streams (issue 8), moved from their own ports.db into this database so that a
# port decision, its ledger event and a gate-out's alert are ONE transaction (issue 17; one
# ``gateway.infra.sqlite_ports`` apply is one request of the group-commit writer).
_DDL_V5 = """
CREATE TABLE port_stream (
    port TEXT NOT NULL, seq INTEGER NOT NULL, record TEXT NOT NULL, PRIMARY KEY (port, seq)
) WITHOUT ROWID;
CREATE TABLE port_standings (
    port TEXT NOT NULL, transport_document TEXT NOT NULL, container TEXT NOT NULL, open INTEGER NOT NULL,
    record TEXT NOT NULL, PRIMARY KEY (port, transport_document, container)
) WITHOUT ROWID;
CREATE INDEX port_standings_container ON port_standings (port, container);
CREATE TABLE port_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE port_applied (
    sender TEXT NOT NULL, message_id TEXT NOT NULL, PRIMARY KEY (sender, message_id)
) WITHOUT ROWID;
"""

# Version 6: gateway-to-gateway relay (issue 19). A relay entry is an inbox row of ``ports.relay_queue(peer)``;
# ``relays`` says which of the message's recipients it carries, and a delivered relay keeps the peer's receipt.
_DDL_V6 = """
CREATE TABLE relays (
    cursor     INTEGER PRIMARY KEY REFERENCES inbox (cursor),
    peer       TEXT NOT NULL,
    recipients TEXT NOT NULL
);
ALTER TABLE deliveries ADD COLUMN receipt BLOB;
"""

# Version 7: the stable error code of a relay entry's last failed attempt (the peer's answer; status and
# dead-letter listings show it). NULL for push entries and for relays the peer answered without one.
_DDL_V7 = """
ALTER TABLE deliveries ADD COLUMN last_code TEXT;
"""

# What each version adds, in order: a file of version v is migrated by running every later step.
_STEPS = {2: _DDL_V2, 3: _DDL_V3, 4: _DDL_V4, 5: _DDL_V5, 6: _DDL_V6, 7: _DDL_V7}

_DDL = """
CREATE TABLE schema_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
CREATE TABLE ledger (
    idx  INTEGER PRIMARY KEY CHECK (idx >= 0),
    data BLOB NOT NULL
);
CREATE TRIGGER ledger_dense BEFORE INSERT ON ledger
WHEN NEW.idx IS NOT (SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger)
BEGIN SELECT RAISE(ABORT, 'ledger indexes are dense'); END;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY,
    sender      TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    type        TEXT NOT NULL,
    recipients  TEXT NOT NULL,
    jws         TEXT NOT NULL,
    payload     BLOB NOT NULL,
    digest      TEXT NOT NULL,
    received_at TEXT NOT NULL,
    receipt     BLOB NOT NULL,
    leaf_index  INTEGER NOT NULL UNIQUE REFERENCES ledger (idx),
    UNIQUE (sender, message_id)
);
CREATE TABLE inbox (
    cursor     INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient  TEXT NOT NULL,
    sender     TEXT NOT NULL,
    message_id TEXT NOT NULL,
    acked_at   TEXT,
    FOREIGN KEY (sender, message_id) REFERENCES messages (sender, message_id)
);
CREATE INDEX inbox_pending ON inbox (recipient, cursor) WHERE acked_at IS NULL;
CREATE TABLE replay (
    key     TEXT PRIMARY KEY,
    expires INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX replay_expires ON replay (expires);
"""


def sqlite_unavailable(exc: sqlite3.Error, what: str) -> Unavailable:
    """An ``sqlite3.Error`` of ``what`` (a store) as ``Unavailable``; a full disk says so in those words (the
    one cause an operator must act on), whatever statement met it."""
    if getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_FULL:
        error = Unavailable(f"{what}: disk full")
    else:
        error = Unavailable(f"{what}: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def to_micros(at: datetime) -> int:
    """Microseconds since the Unix epoch (``at`` must be timezone-aware)."""
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def require_aware(at: datetime, field: str) -> datetime:
    """Naive datetimes would be read as local time; the store refuses them instead of guessing."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise Internal(f"{field} must be timezone-aware", field=field)
    return at


def connect_writer(path: Path) -> sqlite3.Connection:
    """The one write connection, with the schema checked or created. The group-commit writer uses it from the
    event loop (statements) and its thread (BEGIN, COMMIT), never from both at once (``gateway.infra.sqlite_writer``:
    one side at a time)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise Unavailable(f"sqlite store: WAL mode refused (journal_mode={mode})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        _ensure_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def connect_reader(path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A read connection (one per reader thread, and the event loop's own); it can never write."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA query_only = ON")
    return conn


def _ensure_schema(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
        if exists is None:
            others = conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if others:
                raise Unavailable("sqlite store: the file holds tables but no schema version")
            for statement in _statements(_DDL + "".join(_STEPS.values())):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (id, version) VALUES (1, ?)", (SCHEMA_VERSION,))
        else:
            row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
            version = row[0] if row else None
            if isinstance(version, int) and 1 <= version < SCHEMA_VERSION:  # additive steps, in one transaction
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _statements(_STEPS[step]):
                        conn.execute(statement)
                conn.execute("UPDATE schema_version SET version = ? WHERE id = 1", (SCHEMA_VERSION,))
                version = SCHEMA_VERSION
            if version != SCHEMA_VERSION:
                raise Unavailable(
                    f"sqlite store: schema version {version!r} is not {SCHEMA_VERSION} "
                    "(written by another gateway version; refusing to guess)"
                )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(ddl: str) -> list[str]:
    """Split the DDL into statements, keeping trigger bodies (``BEGIN ...; END;``) whole."""
    out: list[str] = []
    current = ""
    for line in ddl.strip().splitlines():
        current += line + "\n"
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return out
