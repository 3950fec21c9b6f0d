"""How the Redis store spells its values: message hashes, key suffixes, times, script replies.

Rule 1: a (sender, id) pair becomes ONE key suffix with the sender's byte length first, so no choice of sender
        or id can make two pairs collide (no separator can be forged).
Rule 2: times are stored as RFC 3339 with microseconds (as the SQLite store) or, where Redis must compare
        them (retry due times), as integer microseconds since the epoch.
Rule 3: pure functions of bytes and values; no redis-py object is used or returned here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.core.audit import rfc3339
from gateway.core.errors import Internal
from gateway.infra.redis_scripts import MESSAGE_FIELDS
from gateway.interfaces.protocols import (
    DeliveryOutcome,
    DeliveryState,
    RecipientState,
    Relays,
    StoredMessage,
    relay_peer,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def suffix(sender: str, message_id: str) -> bytes:
    s = sender.encode()
    return str(len(s)).encode() + b":" + s + b":" + message_id.encode()


def unsuffix(key: bytes) -> tuple[str, str]:
    length, _, rest = key.partition(b":")
    n = int(length)
    return rest[:n].decode(), rest[n + 1 :].decode()


def aware(at: datetime, name: str) -> datetime:
    if at.utcoffset() is None:
        raise Internal(f"{name} must be timezone-aware", field=name)
    return at


def micros(at: datetime, name: str) -> int:
    return (aware(at, name) - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def message_fields(message: StoredMessage, receipt: bytes, index: int) -> list[tuple[str, bytes | str | int]]:
    """The message hash as (field, value) pairs, in ``MESSAGE_FIELDS`` order."""
    values: dict[str, bytes | str | int] = {
        "type": message.type,
        "recipients": json.dumps(list(message.recipients)),
        "jws": message.jws,
        "payload": message.payload,
        "digest": message.digest,
        "received_at": rfc3339(message.received_at),
        "receipt": receipt,
        "leaf_index": index,
    }
    return [(name, values[name]) for name in MESSAGE_FIELDS]


def message(sender: str, message_id: str, fields: dict[bytes, bytes]) -> StoredMessage:
    return StoredMessage(
        sender=sender,
        message_id=message_id,
        type=fields[b"type"].decode(),
        recipients=tuple(str(r) for r in json.loads(fields[b"recipients"])),
        jws=fields[b"jws"].decode(),
        payload=bytes(fields[b"payload"]),
        digest=fields[b"digest"].decode(),
        received_at=datetime.fromisoformat(fields[b"received_at"].decode()).astimezone(UTC),
        receipt=bytes(fields[b"receipt"]),
        leaf_index=int(fields[b"leaf_index"]),
    )


def items(flat: list[Any]) -> list[tuple[int, bytes, dict[bytes, bytes]]]:
    """Split a flat script reply {cursor, key, n, field, value, ...} into (cursor, key, fields)."""
    found: list[tuple[int, bytes, dict[bytes, bytes]]] = []
    i = 0
    while i < len(flat):
        end = i + 3 + int(flat[i + 2])
        found.append((int(flat[i]), flat[i + 1], dict(zip(flat[i + 3 : end : 2], flat[i + 4 : end : 2], strict=True))))
        i = end
    return found


def delivery_state(cursor: int, owner: bytes, fields: dict[bytes, bytes]) -> DeliveryState:
    """A ``d:<cursor>`` hash; ``owner`` is the cursors-hash value (recipient, newline, message suffix)."""
    recipient, _, key = owner.partition(b"\n")
    sender, message_id = unsuffix(key)
    next_at = fields.get(b"next_at", b"")
    return DeliveryState(
        cursor=cursor,
        recipient=recipient.decode(),
        sender=sender,
        message_id=message_id,
        attempts=int(fields[b"attempts"]),
        outcome=DeliveryOutcome(fields[b"outcome"].decode()),
        last_status=fields[b"status"].decode(),
        updated_at=datetime.fromisoformat(fields[b"updated_at"].decode()),
        next_attempt_at=from_micros(int(next_at)) if next_at else None,
        receipt=bytes(fields.get(b"receipt", b"")),
        code=fields.get(b"code", b"").decode(),
    )


def relays_field(relays: Relays) -> str:
    """The message hash field "relays": JSON {peer: [remote recipients]} (redis_scripts key layout)."""
    return json.dumps({peer: list(members) for peer, members in sorted(relays.items())}, separators=(",", ":"))


def recipient_states(key: bytes, flat: list[Any]) -> list[RecipientState]:
    """The ``STATES`` script reply for the message ``key`` (a suffix): its recipients' states, oldest cursor first.
    An entry stored before the ``s:`` hash existed and no longer in its inbox has cursor 0 and no settled time."""
    if not flat:
        return []
    n = int(flat[0])
    state = dict(zip(flat[1 : 1 + n : 2], flat[2 : 1 + n : 2], strict=True))
    relays: dict[str, list[object]] = json.loads(state[b"relays"]) if b"relays" in state else {}
    found: list[RecipientState] = []
    i = 1 + n
    while i < len(flat):
        recipient, cursor, waiting, count = flat[i].decode(), int(flat[i + 1]), flat[i + 2] == b"1", int(flat[i + 3])
        fields = dict(zip(flat[i + 4 : i + 4 + count : 2], flat[i + 5 : i + 4 + count : 2], strict=True))
        i += 4 + count
        settled = state.get(b"s:" + recipient.encode())
        recall = state.get(b"w:" + recipient.encode())
        owner = recipient.encode() + b"\n" + key
        peer = relay_peer(recipient)
        # a relay entry stands for each remote recipient it carries (ports.Store Rule 4)
        names = [recipient] if peer is None else [str(r) for r in relays.get(peer, ())]
        for name in names:
            found.append(
                RecipientState(
                    recipient=name,
                    cursor=cursor,
                    settled_at=None if waiting or settled is None else datetime.fromisoformat(settled.decode()),
                    delivery=delivery_state(cursor, owner, fields) if fields else None,
                    withdrawn_by=None if recall is None else unsuffix(recall),
                    peer=peer,
                )
            )
    return sorted(found, key=lambda s: s.cursor)
