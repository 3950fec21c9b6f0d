"""The message rows of the SQLite store: storing an accepted message, finding one, reading rows back.

These are the operations ``SqliteStore`` (:mod:`gateway.infra.sqlite`) runs on a connection: writes inside the
group-commit writer's transaction, reads on a reader connection. They never touch asyncio.

Rule 1: :func:`inserter` builds the one write op that stores a message: the duplicate check first (a duplicate
        leaves no trace, no receipt), then the ledger leaf, the receipt for that leaf's index, the message row
        and one inbox row per recipient (a relay row beside the inbox row of a relayed recipient), so they are
        committed together or not at all.
Rule 2: the ledger index is ``MAX(idx) + 1`` read inside the writer's transaction (:func:`append_leaf`), so
        indexes are dense and in submission order.
Rule 3: :func:`find_rows` reads a batch of lookups in one read transaction, one snapshot for all of them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import msgspec

from gateway.core.audit import AuditEvent, rfc3339
from gateway.core.errors import DuplicateConflict, Internal
from gateway.infra.sqlite_schema import require_aware
from gateway.interfaces.protocols import (
    ReceiptFactory,
    Relays,
    StoredMessage,
    inbox_targets,
    relay_peer,
    relay_queue,
)

# The message columns in the order message_from_row reads them (pull puts the cursor first).
FIND_SQL = (
    "SELECT m.sender, m.message_id, m.type, m.recipients, m.jws, m.payload, m.digest, m.received_at,"
    " m.receipt, m.leaf_index FROM messages m WHERE m.sender = ? AND m.message_id = ?"
)


def find_rows(conn: sqlite3.Connection, keys: Sequence[tuple[str, str]]) -> list[Any]:
    """The message row (or None) of each (sender, message_id), all from one snapshot (Rule 3)."""
    if len(keys) == 1:
        return [conn.execute(FIND_SQL, keys[0]).fetchone()]
    conn.execute("BEGIN")
    try:
        rows = [conn.execute(FIND_SQL, key).fetchone() for key in keys]
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")  # read-only: this only ends the snapshot
    return rows


PULL_SQL = (
    "SELECT i.cursor, m.sender, m.message_id, m.type, m.recipients, m.jws, m.payload, m.digest,"
    " m.received_at, m.receipt, m.leaf_index FROM inbox i"
    " JOIN messages m ON m.sender = i.sender AND m.message_id = i.message_id"
    " WHERE i.recipient = ? AND i.cursor > ? AND i.acked_at IS NULL ORDER BY i.cursor LIMIT ?"
)


def inserter(
    message: StoredMessage, event: AuditEvent, make_receipt: ReceiptFactory, relays: Relays | None = None
) -> Callable[[sqlite3.Connection, tuple[str, ...]], StoredMessage]:
    """The write op that stores ``message`` with ``event``'s ledger leaf, its receipt and one inbox row per
    recipient in ``inbox`` (``message.recipients`` for a plain accept; every holder for a recall), except that
    the recipients in ``relays`` get one relay row per peer instead (ports.Store Rule 4)."""
    received_at = rfc3339(require_aware(message.received_at, "received_at"))
    leaf = event.canonical()
    recipients_json = _RECIPIENTS.encode(list(message.recipients)).decode()  # compact: read back with json.loads
    relayed = {
        relay_queue(peer): _RECIPIENTS.encode(list(members)).decode() for peer, members in (relays or {}).items()
    }

    def op(conn: sqlite3.Connection, inbox: tuple[str, ...]) -> StoredMessage:
        targets = inbox_targets(inbox, relays) if relays else inbox
        inbox_rows = [(r, message.sender, message.message_id) for r in dict.fromkeys(targets)]
        if stored(conn, message.sender, message.message_id):  # before the receipt: a duplicate leaves no trace
            raise DuplicateConflict(f"{message.sender}/{message.message_id} already accepted", field="id")
        index = append_leaf(conn, leaf)
        receipt = make_receipt(index, message.received_at)
        if not isinstance(receipt, bytes):
            raise Internal("the receipt factory returned no bytes")
        conn.execute(
            "INSERT INTO messages (sender, message_id, type, recipients, jws, payload, digest,"
            " received_at, receipt, leaf_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message.sender,
                message.message_id,
                message.type,
                recipients_json,
                message.jws,
                message.payload,
                message.digest,
                received_at,
                receipt,
                index,
            ),
        )
        if relayed:
            for row in inbox_rows:
                cursor = conn.execute(_INBOX_SQL, row).lastrowid
                if row[0] in relayed:
                    conn.execute(_RELAY_SQL, (cursor, relay_peer(row[0]), relayed[row[0]]))
        elif len(inbox_rows) == 1:
            conn.execute(_INBOX_SQL, inbox_rows[0])
        else:
            conn.executemany(_INBOX_SQL, inbox_rows)
        return message.with_receipt(receipt, index)

    return op


_RECIPIENTS = msgspec.json.Encoder()
_INBOX_SQL = "INSERT INTO inbox (recipient, sender, message_id) VALUES (?, ?, ?)"
_RELAY_SQL = "INSERT INTO relays (cursor, peer, recipients) VALUES (?, ?, ?)"


def stored(conn: sqlite3.Connection, sender: str, message_id: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM messages WHERE sender = ? AND message_id = ?", (sender, message_id)).fetchone()
        is not None
    )


def append_leaf(conn: sqlite3.Connection, leaf: bytes) -> int:
    """Append one ledger leaf at the next dense index (only ever inside the group-commit writer's transaction)."""
    index = conn.execute(_APPEND_LEAF_SQL, (leaf,)).lastrowid  # idx is the rowid (INTEGER PRIMARY KEY)
    if index is None:
        raise Internal("the ledger append returned no index")
    return index


# One statement: the next index and the row. A scalar subquery in VALUES: ``INSERT ... SELECT ... FROM ledger``
# (the same table) makes SQLite stage the row in a temporary table first and cost twice as much (~24 us).
_APPEND_LEAF_SQL = "INSERT INTO ledger (idx, data) VALUES ((SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger), ?)"


def message_from_row(row: Sequence[Any]) -> StoredMessage:
    sender, message_id, type_, recipients, jws, payload, digest, received_at, receipt, leaf_index = row
    return StoredMessage(
        sender=str(sender),
        message_id=str(message_id),
        type=str(type_),
        recipients=tuple(str(r) for r in json.loads(str(recipients))),
        jws=str(jws),
        payload=bytes(payload),
        digest=str(digest),
        received_at=datetime.fromisoformat(str(received_at)),
        receipt=bytes(receipt),
        leaf_index=int(leaf_index),
    )
