"""Push delivery state in the SQLite store: the ``deliveries`` table (schema version 2).

These are the write and read operations ``SqliteStore`` hands to its group-commit writer and reader pool; they run
on a connection and never touch asyncio.

Rule 1: an attempt's state change, the inbox acknowledgement of a delivered item and the attempt's ledger
        leaf are written by ONE operation, hence in one transaction (``record_op``).
Rule 2: a recorded outcome is final: an attempt is recorded only when its number follows the stored attempts
        and the item is still pending (not acknowledged, not delivered, not a dead letter). A stale result (an
        attempt dispatched from an outdated read, a late outcome of a concurrent process) writes nothing, no
        ledger leaf either, and is refused with ``DuplicateConflict``.
Rule 3: ``redrive_op`` touches dead letters only, resets their attempts to 0 and makes them due at once.
Rule 4: ``recipient_states_op`` reads one message's inbox entries with their push state and withdrawal in ONE
        statement (one snapshot); an entry's ``acked_at`` is when it left the inbox (ack, delivery or recall). A
        relay entry (``relays`` row) is reported once for each remote recipient it carries, with its peer.
Rule 5: a delivered relay keeps the peer gateway's receipt in its ``deliveries`` row (written with the outcome); a
        failed one keeps the peer's stable error code (``last_code``) until the next attempt.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from gateway.core.audit import rfc3339
from gateway.core.errors import DuplicateConflict, Internal, LimitExceeded, NotFound
from gateway.infra.sqlite_schema import require_aware, to_micros
from gateway.interfaces.protocols import DeliveryOutcome, DeliveryResult, DeliveryState, RecipientState

# Dead letters one listing may return (operators page through larger sets).
DEAD_LETTER_PAGE_MAX = 1_000
# Cursors in one redrive: bounds the work of a single write request.
REDRIVE_CURSORS_MAX = 1_000

_SQLITE_INT_MAX = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

AppendLeaf = Callable[[sqlite3.Connection, bytes], int]

# The deliveries columns in the order _state_from_row reads them.
_STATE_SQL = (
    "SELECT d.cursor, d.recipient, i.sender, i.message_id, d.attempts, d.outcome, d.last_status, d.updated_at,"
    " d.next_attempt_at, d.receipt, d.last_code FROM deliveries d JOIN inbox i ON i.cursor = d.cursor"
)

_DEAD_OF_RECIPIENT = " WHERE d.recipient = ? AND d.outcome = 'dead' AND d.cursor > ? ORDER BY d.cursor LIMIT ?"

# An inbox item with its push state: recipient, acked_at, attempts so far, last outcome (None: never attempted).
_PENDING_SQL = (
    "SELECT i.recipient, i.acked_at, COALESCE(d.attempts, 0), d.outcome FROM inbox i"
    " LEFT JOIN deliveries d ON d.cursor = i.cursor WHERE i.cursor = ?"
)

# Push work: unacked items that were never attempted, or whose retry is due.
DUE_SQL = (
    "SELECT COALESCE(d.attempts, 0), i.cursor, m.sender, m.message_id, m.type, m.recipients, m.jws, m.payload,"
    " m.digest, m.received_at, m.receipt, m.leaf_index FROM inbox i"
    " JOIN messages m ON m.sender = i.sender AND m.message_id = i.message_id"
    " LEFT JOIN deliveries d ON d.cursor = i.cursor"
    " WHERE i.recipient = ? AND i.acked_at IS NULL"
    " AND (d.cursor IS NULL OR (d.outcome = 'retry' AND COALESCE(d.next_attempt_at, 0) <= ?))"
    " ORDER BY i.cursor LIMIT ?"
)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _state_from_row(row: Sequence[object]) -> DeliveryState:
    cursor, recipient, sender, message_id, attempts, outcome, last_status, updated_at, next_at, receipt, code = row
    return DeliveryState(
        cursor=int(str(cursor)),
        recipient=str(recipient),
        sender=str(sender),
        message_id=str(message_id),
        attempts=int(str(attempts)),
        outcome=DeliveryOutcome(str(outcome)),
        last_status=str(last_status),
        updated_at=datetime.fromisoformat(str(updated_at)),
        next_attempt_at=None if next_at is None else from_micros(int(str(next_at))),
        receipt=receipt if isinstance(receipt, bytes) else b"",
        code="" if code is None else str(code),
    )


def record_op(
    result: DeliveryResult, leaf: bytes, append_leaf: AppendLeaf
) -> Callable[[sqlite3.Connection], DeliveryState]:
    """The write operation for ``Store.record_delivery`` (checked here, before it is queued)."""
    updated_at = rfc3339(require_aware(result.at, "result.at"))
    next_at: int | None = None
    if result.outcome is DeliveryOutcome.RETRY:
        if result.next_attempt_at is None:
            raise Internal("a retry needs next_attempt_at", field="next_attempt_at")
        next_at = to_micros(require_aware(result.next_attempt_at, "next_attempt_at"))
    if not 0 < result.cursor <= _SQLITE_INT_MAX:
        raise NotFound(f"no cursor {result.cursor} for {result.recipient}", field="cursor")

    def op(conn: sqlite3.Connection) -> DeliveryState:
        row = conn.execute(_PENDING_SQL, (result.cursor,)).fetchone()
        if row is None or row[0] != result.recipient:
            raise NotFound(f"no cursor {result.cursor} for {result.recipient}", field="cursor")
        _, acked_at, attempts, last_outcome = row
        if acked_at is not None or last_outcome not in (None, "retry") or attempts != result.attempt - 1:
            raise DuplicateConflict(  # Rule 2
                f"attempt {result.attempt} of cursor {result.cursor} is stale: {attempts} recorded,"
                f" {'acknowledged' if acked_at is not None else last_outcome or 'pending'}",
                field="attempt",
            )
        if result.outcome is DeliveryOutcome.DELIVERED:
            conn.execute("UPDATE inbox SET acked_at = ? WHERE cursor = ?", (updated_at, result.cursor))
        conn.execute(
            "INSERT INTO deliveries (cursor, recipient, attempts, outcome, last_status, updated_at, next_attempt_at,"
            " receipt, last_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (cursor) DO UPDATE SET"
            " attempts = excluded.attempts, outcome = excluded.outcome, last_status = excluded.last_status,"
            " updated_at = excluded.updated_at, next_attempt_at = excluded.next_attempt_at,"
            " receipt = excluded.receipt, last_code = excluded.last_code",
            (
                result.cursor,
                result.recipient,
                result.attempt,
                result.outcome.value,
                result.status[:200],
                updated_at,
                next_at,
                result.receipt if result.outcome is DeliveryOutcome.DELIVERED and result.receipt else None,
                result.code[:64] or None,
            ),
        )
        append_leaf(conn, leaf)
        return _state_from_row(conn.execute(_STATE_SQL + " WHERE d.cursor = ?", (result.cursor,)).fetchone())

    return op


def redrive_op(
    cursors: Sequence[int], leaf: bytes, append_leaf: AppendLeaf, at: datetime
) -> Callable[[sqlite3.Connection], int]:
    """The write operation for ``Store.redrive``."""
    if len(cursors) > REDRIVE_CURSORS_MAX:
        raise LimitExceeded(f"{len(cursors)} cursors > {REDRIVE_CURSORS_MAX}", field="cursors")
    wanted = [c for c in dict.fromkeys(cursors) if 0 < c <= _SQLITE_INT_MAX]
    updated_at = rfc3339(require_aware(at, "event.at"))

    def op(conn: sqlite3.Connection) -> int:
        changed = 0
        for cursor in wanted:
            changed += conn.execute(
                "UPDATE deliveries SET attempts = 0, outcome = 'retry', next_attempt_at = NULL, updated_at = ?"
                " WHERE cursor = ? AND outcome = 'dead'",
                (updated_at, cursor),
            ).rowcount
        append_leaf(conn, leaf)
        return changed

    return op


def dead_letters_op(
    recipient: str | None, after: int, limit: int
) -> Callable[[sqlite3.Connection], list[DeliveryState]]:
    """The read operation for ``Store.dead_letters``."""
    if not 1 <= limit <= DEAD_LETTER_PAGE_MAX:
        raise LimitExceeded(f"limit must be in 1..{DEAD_LETTER_PAGE_MAX}", field="limit")
    after = max(0, min(after, _SQLITE_INT_MAX))

    def op(conn: sqlite3.Connection) -> list[DeliveryState]:
        if recipient is None:
            sql = _STATE_SQL + " WHERE d.outcome = 'dead' AND d.cursor > ? ORDER BY d.cursor LIMIT ?"
            rows = conn.execute(sql, (after, limit)).fetchall()
        else:
            rows = conn.execute(_STATE_SQL + _DEAD_OF_RECIPIENT, (recipient, after, limit)).fetchall()
        return [_state_from_row(row) for row in rows]

    return op


def inbox_depths(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT recipient, COUNT(*) FROM inbox WHERE acked_at IS NULL GROUP BY recipient").fetchall()
    return {str(r): int(n) for r, n in rows}


def dead_letter_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM deliveries WHERE outcome = 'dead'").fetchone()[0])


# One message's inbox entries (the status endpoint): inbox, push state, the recall that withdrew the entry.
_RECIPIENTS_SQL = (
    "SELECT i.cursor, i.recipient, i.acked_at, d.cursor, d.recipient, i.sender, i.message_id, d.attempts, d.outcome,"
    " d.last_status, d.updated_at, d.next_attempt_at, d.receipt, d.last_code, w.recall_sender, w.recall_id, r.peer,"
    " r.recipients"
    " FROM inbox i LEFT JOIN deliveries d ON d.cursor = i.cursor LEFT JOIN withdrawals w ON w.cursor = i.cursor"
    " LEFT JOIN relays r ON r.cursor = i.cursor WHERE i.sender = ? AND i.message_id = ? ORDER BY i.cursor"
)


def recipient_states_op(sender: str, message_id: str) -> Callable[[sqlite3.Connection], list[RecipientState]]:
    """The read operation for ``Store.recipient_states`` (Rule 4)."""

    def op(conn: sqlite3.Connection) -> list[RecipientState]:
        states: list[RecipientState] = []
        for row in conn.execute(_RECIPIENTS_SQL, (sender, message_id)).fetchall():
            cursor, recipient, acked_at = row[0:3]
            delivery, (recall_sender, recall_id), (peer, remote) = row[3:14], row[14:16], row[16:18]
            # a relay entry stands for each remote recipient it carries (ports.Store Rule 4)
            names = [str(recipient)] if peer is None else [str(r) for r in json.loads(str(remote))]
            for name in names:
                states.append(
                    RecipientState(
                        recipient=name,
                        cursor=int(cursor),
                        settled_at=None if acked_at is None else datetime.fromisoformat(str(acked_at)),
                        delivery=None if delivery[0] is None else _state_from_row(delivery),
                        withdrawn_by=None if recall_sender is None else (str(recall_sender), str(recall_id)),
                        peer=None if peer is None else str(peer),
                    )
                )
        return states

    return op
