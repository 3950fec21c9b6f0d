"""The audit console's reads over the ledger (``core.exchanges`` holds the rules): bounded, read-only scans.

Rule 1: every read is bounded: a search scans at most :data:`MAX_SCAN` leaves back from ``before`` and returns
        at most ``limit`` hits; a story scans at most :data:`MAX_SCAN` leaves from the message's own leaf; the
        answer says where the scan stopped and whether it covered everything (``complete``), so a caller pages.
Rule 2: leaves are read in pages of :data:`PAGE` and only those whose bytes contain a searched value are parsed
        (a JSON string of a member id, message id or type appears in the leaf as itself).
Rule 3: container and B/L also match an accepted message's payload bytes (manifests and notices carry them);
        at most :data:`MAX_PAYLOAD_READS` payloads are read per search.
Rule 4: who may read is decided by the caller (Cedar ``audit_read``, ``Pipeline.authorize_audit``); this service
        never writes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.core.errors import NotFound
from gateway.core.exchanges import (
    ExchangeQuery,
    RejectionCounts,
    ack_cursors,
    leaf_time,
    matches,
    read_leaf,
    story_step,
    summary,
)
from gateway.interfaces.protocols import Clock, LedgerEntry, Store, StoredMessage

# Leaves one scan reads at most (~50 ms of reading and prefiltering on these machines).
MAX_SCAN = 20_000
# Leaves read per store call (the store's own bound on one ledger range).
PAGE = 1_000
# Payloads one container / B/L search reads at most.
MAX_PAYLOAD_READS = 500
# Owners looked up per store call (the store's bound on cursors per call).
OWNERS_PAGE = 1_000
MAX_HITS = 200
# Leaves are appended in time order, give or take this much (several processes, several clocks).
CLOCK_SLACK = timedelta(minutes=5)
# Without ``since``, rejections are counted over the last day.
DEFAULT_REJECTION_WINDOW = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Story:
    message: StoredMessage
    steps: list[dict[str, Any]]
    scanned_to: int
    complete: bool


def _needle(value: str) -> bytes:
    return json.dumps(value)[1:-1].encode()


class ExchangeLog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def _pages_back(self, before: int, budget: int) -> AsyncIterator[tuple[int, list[LedgerEntry]]]:
        end = before
        while end > 0 and budget > 0:
            start = max(0, end - min(PAGE, budget))
            entries = await self._store.ledger_entries(start, end)
            yield start, list(reversed(entries))
            budget -= end - start
            end = start

    async def search(self, query: ExchangeQuery, *, before: int | None, limit: int) -> dict[str, Any]:
        size = await self._store.ledger_size()
        top = size if before is None else min(before, size)
        needles = [_needle(v) for v in (query.message_id, query.sender, query.recipient, query.type) if v]
        hits: list[dict[str, Any]] = []
        payload_reads = 0
        lowest = top
        async for start, entries in self._pages_back(top, MAX_SCAN):
            for entry in entries:
                lowest = entry.index
                if not all(n in entry.data for n in needles):
                    continue
                event = read_leaf(entry.data)
                if event is None:
                    continue
                hit = matches(event, query)
                if (
                    not hit
                    and query.payload_terms
                    and event.get("event") == "accepted"
                    and matches(event, query, payload_matched=True)
                ):
                    payload_reads += 1
                    hit = payload_reads <= MAX_PAYLOAD_READS and await self._payload_has(event, query)
                if hit:
                    hits.append(summary(entry.index, event))
                    if len(hits) >= limit:
                        return self._page(hits, lowest, top, complete=False)
            lowest = start
            if query.since is not None and self._older_than(entries, query.since):
                return self._page(hits, lowest, top, complete=True)
        return self._page(hits, lowest, top, complete=lowest == 0 and payload_reads <= MAX_PAYLOAD_READS)

    @staticmethod
    def _older_than(entries: list[LedgerEntry], since: datetime) -> bool:
        """The whole page (newest first) was written before ``since``: earlier pages are older still."""
        newest = read_leaf(entries[0].data) if entries else None
        at = leaf_time(newest) if newest is not None else None
        return at is not None and at + CLOCK_SLACK < since  # leaves are written in time order, give or take

    @staticmethod
    def _page(hits: list[dict[str, Any]], lowest: int, top: int, *, complete: bool) -> dict[str, Any]:
        return {"hits": hits, "scanned_from": lowest, "scanned_to": top, "complete": complete}

    async def _payload_has(self, event: dict[str, Any], query: ExchangeQuery) -> bool:
        message = await self._store.find_message(str(event.get("sender")), str(event.get("message_id")))
        return message is not None and all(term.encode() in message.payload for term in query.payload_terms)

    async def story(self, sender: str, message_id: str) -> Story:
        message = await self._store.find_message(sender, message_id)
        if message is None:
            raise NotFound(f"no message {sender}/{message_id}", field="message_id")
        key = (sender, message_id)
        size = await self._store.ledger_size()
        end = min(size, message.leaf_index + MAX_SCAN)
        needle = _needle(message_id)
        candidates: list[tuple[int, dict[str, Any]]] = []
        cursors: list[int] = []
        for start in range(message.leaf_index, end, PAGE):
            for entry in await self._store.ledger_entries(start, min(end, start + PAGE)):
                if needle not in entry.data and b'"event":"acknowledged"' not in entry.data:
                    continue
                event = read_leaf(entry.data)
                if event is not None:
                    candidates.append((entry.index, event))
                    cursors += ack_cursors(event, message.recipients)
        owners: dict[int, tuple[str, str, str]] = {}
        unique = sorted(set(cursors))
        for i in range(0, len(unique), OWNERS_PAGE):
            owners |= await self._store.inbox_owners(unique[i : i + OWNERS_PAGE])
        steps = []
        for index, event in candidates:
            step = story_step(event, key, owners)
            if step is not None:
                steps.append({"index": index, "at": event.get("at"), "step": step, "entry": event})
        return Story(message=message, steps=steps, scanned_to=end, complete=end == size)

    async def rejections(self, since: datetime | None, until: datetime | None, bucket: int) -> dict[str, Any]:
        now = self._clock.now()
        since = since or now - DEFAULT_REJECTION_WINDOW
        until = until or now
        counts = RejectionCounts(bucket, {})
        size = await self._store.ledger_size()
        lowest = size
        complete = True
        async for start, entries in self._pages_back(size, MAX_SCAN):
            lowest = start
            for entry in entries:
                if b'"event":"rejected"' not in entry.data:
                    continue
                event = read_leaf(entry.data)
                at = leaf_time(event) if event is not None else None
                if event is not None and at is not None and since <= at < until:
                    counts.add(event)
            if self._older_than(entries, since):
                break
        else:
            complete = lowest == 0
        return counts.record() | {
            "since": since.isoformat().replace("+00:00", "Z"),
            "until": until.isoformat().replace("+00:00", "Z"),
            "scanned_from": lowest,
            "scanned_to": size,
            "complete": complete,
        }
