"""Forwards and recalls in the SQLite store (the :class:`gateway.interfaces.protocols.RelayStore` half of
``SqliteStore``).

Rule 1: every function here runs on the writer or a reader connection handed in by ``SqliteStore``; writes
        run inside the writer's transaction, so a forward or a recall is durable with its message, inbox
        entries and ledger leaf, or not at all.
Rule 2: a forward's link names the ROOT original (a forward of a forward links to what that forward forwards),
        so one lookup finds the whole tree, and its PARENT (the message it forwards), so a recall withdraws only
        what ``gateway.core.forwarding.recalled_copies`` lets it (a version-3 row has no parent: a child of the
        root).
Rule 3: a withdrawn inbox entry is recorded in ``withdrawals`` and marked acknowledged at the recall's time,
        so neither pull nor push delivery returns it again; the ledger says why (the recall's leaf). A relay entry
        (``relays`` row) is an inbox entry too: withdrawn alike, and the remote recipients it carries are no
        local holders of the copy (``ports.RelayStore`` Rule 3).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

from gateway.core.errors import NotFound
from gateway.core.forwarding import MessageKey, recalled_copies
from gateway.interfaces.protocols import Recall, StoredMessage

_FORWARDS_OF = (
    "SELECT sender, message_id, original_sender, original_id FROM forwards WHERE (sender, message_id) IN (VALUES {})"
)
# Bound parameters per statement stay far below SQLite's limit (32766) with two per key.
_KEYS_PER_QUERY = 500
Insert = Callable[[sqlite3.Connection, tuple[str, ...]], StoredMessage]  # stores a message + its inbox rows


def root_of(conn: sqlite3.Connection, key: MessageKey) -> MessageKey:
    """Rule 2: the root original of ``key`` (itself when it is not a forward). ``NotFound`` when unknown."""
    if conn.execute("SELECT 1 FROM messages WHERE sender = ? AND message_id = ?", key).fetchone() is None:
        raise NotFound(f"no message {key[0]}/{key[1]}", field="original")
    row = conn.execute(
        "SELECT original_sender, original_id FROM forwards WHERE sender = ? AND message_id = ?", key
    ).fetchone()
    return key if row is None else (str(row[0]), str(row[1]))


def forward_of(conn: sqlite3.Connection, key: MessageKey) -> MessageKey | None:
    row = conn.execute(
        "SELECT original_sender, original_id FROM forwards WHERE sender = ? AND message_id = ?", key
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def forwards_of(conn: sqlite3.Connection, keys: list[MessageKey]) -> dict[MessageKey, MessageKey]:
    found: dict[MessageKey, MessageKey] = {}
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        chunk = keys[start : start + _KEYS_PER_QUERY]
        rows = conn.execute(
            _FORWARDS_OF.format(", ".join("(?, ?)" for _ in chunk)),  # only placeholders are formatted in
            [part for key in chunk for part in key],
        ).fetchall()
        found.update({(str(r[0]), str(r[1])): (str(r[2]), str(r[3])) for r in rows})
    return found


def accept_forward(
    conn: sqlite3.Connection, message: StoredMessage, original: MessageKey, insert: Insert
) -> StoredMessage:
    root = root_of(conn, original)
    stored = insert(conn, message.recipients)
    conn.execute(
        "INSERT INTO forwards (sender, message_id, original_sender, original_id, parent_sender, parent_id)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (message.sender, message.message_id, *root, *original),
    )
    return stored


def copy_keys(conn: sqlite3.Connection, original: MessageKey) -> list[MessageKey]:
    """The root original and every forward of it, in acceptance order (empty when unknown)."""
    if conn.execute("SELECT 1 FROM messages WHERE sender = ? AND message_id = ?", original).fetchone() is None:
        return []
    rows = conn.execute(
        "SELECT f.sender, f.message_id FROM forwards f JOIN messages m"
        " ON m.sender = f.sender AND m.message_id = f.message_id"
        " WHERE f.original_sender = ? AND f.original_id = ? ORDER BY m.id",
        original,
    ).fetchall()
    return [original, *((str(r[0]), str(r[1])) for r in rows)]


def tree(conn: sqlite3.Connection, root: MessageKey) -> list[tuple[MessageKey, MessageKey]]:
    """Every forward of ``root`` with its parent, in acceptance order (Rule 2)."""
    rows = conn.execute(
        "SELECT f.sender, f.message_id, COALESCE(f.parent_sender, f.original_sender), COALESCE(f.parent_id,"
        " f.original_id) FROM forwards f JOIN messages m ON m.sender = f.sender AND m.message_id = f.message_id"
        " WHERE f.original_sender = ? AND f.original_id = ? ORDER BY m.id",
        root,
    ).fetchall()
    return [((str(r[0]), str(r[1])), (str(r[2]), str(r[3]))) for r in rows]


def recall(
    conn: sqlite3.Connection,
    message: StoredMessage,
    original: MessageKey,
    withdrawn_at: str,
    insert: Insert,
    *,
    whole_tree: bool,
    relayed: frozenset[str] = frozenset(),
) -> Recall:
    """Rule 3; ``relayed``: the recall's own remote recipients (``insert`` gives them relay entries)."""
    root = root_of(conn, original)
    withdrawn = recalled_copies(root, tree(conn, root), original, message.sender, whole_tree=whole_tree)
    holders: set[str] = set(message.recipients)
    cursors: list[int] = []
    for key in withdrawn:
        recipients = conn.execute("SELECT recipients FROM messages WHERE sender = ? AND message_id = ?", key).fetchone()
        rows = conn.execute(
            "SELECT i.cursor, r.recipients FROM inbox i LEFT JOIN relays r ON r.cursor = i.cursor"
            " WHERE i.sender = ? AND i.message_id = ?",
            key,
        ).fetchall()
        remote = {str(m) for row in rows if row[1] is not None for m in json.loads(str(row[1]))}
        holders.update(str(r) for r in json.loads(str(recipients[0])) if str(r) not in remote)
        cursors.extend(int(r[0]) for r in rows)
    holders.discard(message.sender)
    ordered = tuple(sorted(holders))
    stored = insert(conn, ordered)  # the recall's remote recipients (its relays) get their peer's relay entry
    local = tuple(h for h in ordered if h not in relayed)
    conn.executemany(
        "INSERT OR IGNORE INTO withdrawals (cursor, recall_sender, recall_id) VALUES (?, ?, ?)",
        [(cursor, message.sender, message.message_id) for cursor in cursors],
    )
    conn.executemany(
        "UPDATE inbox SET acked_at = ? WHERE cursor = ? AND acked_at IS NULL",
        [(withdrawn_at, cursor) for cursor in cursors],
    )
    return Recall(stored, local, tuple(withdrawn))
