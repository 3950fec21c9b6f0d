"""Seaport release synchronisation's part in the pipeline (``gateway.exchange.handlers``), over
``gateway.features.release.portstream``.

Rule 1: a release notice or gate-out is checked before the accept (``PortStreams.check``: who may decide for a
        port, DO_NOT_LOAD reaches a carrier, a gate-out comes from a subscribed port) and applied to its port's
        stream once durable (``PortStreams.accepted``, idempotent per message).
Rule 2: a replay (the recovery loop, ``gateway.exchange.recovery``) applies a notice or gate-out the port store
        has not applied; the mark of the loop is kept in the port store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.core.payloads import ValidatedPayload
from gateway.core.release import GATE_OUT_TYPE, NOTICE_TYPE
from gateway.exchange.handlers import Accepted, Handler, LedgerMark, Submission
from gateway.exchange.state import GatewayState
from gateway.features.release.portstream import PortStreams


class _Mark:
    def __init__(self, ports: PortStreams) -> None:
        self._ports = ports

    async def scanned(self) -> int:
        return await self._ports.streams.ledger_scanned()

    async def set_scanned(self, size: int) -> None:
        await self._ports.streams.set_ledger_scanned(size)


class ReleaseHandler(Handler[None]):
    name = "release"
    types = frozenset({NOTICE_TYPE, GATE_OUT_TYPE})

    def __init__(self, ports: PortStreams, state: GatewayState) -> None:
        self._ports = ports
        self._state = state
        self._mark = _Mark(ports)

    def begin(self, submission: Submission) -> None:
        return None

    def check(self, submission: Submission, state: None, payload: ValidatedPayload) -> None:
        """Rule 1: raises; nothing is stored."""
        registry = self._state.require_trust().registry
        envelope = submission.envelope
        member, relayed_by = submission.caller.member, submission.relayed_by  # a peer's notice: decide_release
        self._ports.check(envelope.header, member, envelope.payload, registry, relayed_by=relayed_by)

    async def after_commit(self, accepted: Accepted, state: None) -> bool:
        """Rules 1 and 2: failures are logged by ``PortStreams.accepted`` and retried by the next recovery."""
        message = accepted.message
        if accepted.replayed and await self._ports.applied((message.sender, message.message_id)):
            return False
        return await self._ports.accepted(message, accepted.media, accepted.sender) is not None

    def ledger_mark(self) -> LedgerMark | None:
        return self._mark

    def replays(self, event: Mapping[str, Any]) -> bool:
        return event.get("type") in self.types
