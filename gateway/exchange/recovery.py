"""The one recovery loop: replays the handlers' after-commit effects from the ledger.

An accepted message is durable before its effects happen (an AEO status update applied, a release notice
sequenced on its port's stream); a crash in between, or another gateway process sharing the store, leaves an
``accepted`` ledger event whose effect did not happen here. This loop reads the ledger past each replaying
handler's mark (``gateway.exchange.handlers``: ``Handler.ledger_mark``) and runs the handler's
``after_commit`` again for every event it ``replays``.

Rule 1: one pass reads the ledger once, from the lowest mark of the handlers it serves, page by page; a handler
        sees only events at or past its own mark. A mark beyond the ledger's size belongs to another ledger (a
        new store): that handler reads all of it.
Rule 2: the message is read from the store and its sender from the registry in force; a message or sender that
        is missing, or a handler that refuses the replay (a ``GatewayError``), is logged and skipped: one bad
        entry never stops the others.
Rule 3: each handler's mark moves to the ledger size read at the start, once the pass is complete.
Rule 4: the loop runs at start-up, before the listeners open (``gateway.app.main``), and again whenever a
        handler that follows other processes asks for it (``run(only=...)``); passes never overlap.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import structlog

from gateway.core.errors import GatewayError
from gateway.core.model import Registry
from gateway.core.payloads import MEDIA_JSON, MEDIA_PROTOBUF
from gateway.exchange.handlers import Accepted, Handler, Handlers, LedgerMark
from gateway.interfaces.protocols import Store, StoredMessage

log = structlog.get_logger("gateway.exchange.recovery")

# Ledger entries read per request (one page is at most this many canonical events in memory).
RECOVERY_PAGE = 1000


def stored_media(message: StoredMessage) -> str:
    """The media of a stored JSON or protobuf payload (the only ones a replayed effect reads)."""
    return MEDIA_JSON if message.payload.lstrip()[:1] == b"{" else MEDIA_PROTOBUF


class Recovery:
    def __init__(self, *, store: Store, handlers: Handlers, registry: Callable[[], Registry]) -> None:
        self._store = store
        self._handlers = handlers
        self._registry = registry
        self._lock = asyncio.Lock()

    async def run(self, only: Sequence[str] | None = None) -> dict[str, int]:
        """One pass (Rules 1-3) for every replaying handler, or those named in ``only``; returns, per handler
        name, how many effects happened now."""
        async with self._lock:  # Rule 4
            serving = [(h, m) for h, m in self._handlers.replaying() if only is None or h.name in only]
            return await self._pass(serving)

    async def _pass(self, serving: Sequence[tuple[Handler[Any], LedgerMark]]) -> dict[str, int]:
        counts = {h.name: 0 for h, _ in serving}
        if not serving:
            return counts
        size = await self._store.ledger_size()
        marks: list[tuple[Handler[Any], LedgerMark, int]] = []
        for handler, mark in serving:
            scanned = await mark.scanned()
            marks.append((handler, mark, 0 if scanned > size else scanned))  # Rule 1
        start = min(scanned for _, _, scanned in marks)
        for first in range(start, size, RECOVERY_PAGE):
            for offset, entry in enumerate(await self._store.ledger_entries(first, min(size, first + RECOVERY_PAGE))):
                index = first + offset
                event: Mapping[str, Any] | None = None
                wanting: list[Handler[Any]] = []
                for handler, _, scanned in marks:
                    if index < scanned:
                        continue
                    if event is None:
                        event = json.loads(entry.data)
                        if event.get("event") != "accepted":
                            break
                    if handler.replays(event):
                        wanting.append(handler)
                if event is not None and wanting:
                    await self._replay(event, wanting, counts)
        for handler, mark, _ in marks:  # Rule 3
            await mark.set_scanned(size)
            if counts[handler.name]:
                log.warning("effects recovered from the ledger", handler=handler.name, messages=counts[handler.name])
        return counts

    async def _replay(self, event: Mapping[str, Any], handlers: Sequence[Handler[Any]], counts: dict[str, int]) -> None:
        sender, message_id = str(event.get("sender")), str(event.get("message_id"))
        stored = await self._store.find_message(sender, message_id)
        member = self._registry().get(sender)
        if stored is None or member is None:  # Rule 2
            log.error("message named by the ledger is missing", sender=sender, id=message_id)
            return
        accepted = Accepted(stored, stored_media(stored), member, replayed=True)
        for handler in handlers:
            try:
                if await handler.after_commit(accepted, None):
                    counts[handler.name] += 1
            except GatewayError as exc:  # Rule 2
                log.error("effect not recovered", handler=handler.name, sender=sender, id=message_id, code=exc.code)
