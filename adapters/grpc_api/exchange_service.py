"""``cgw.v1.Exchange``: Submit, Inbox (server stream), Ack, GetStatus, Relay over the one pipeline.

Rule 1: Submit builds the same ``Inbound`` as REST (the JWS compact string and the payload bytes, unchanged);
        Relay (a peer gateway, issue 19) the same with adapter ``relay-grpc``, for ``Pipeline.relay``.
Rule 2: the Inbox stream sends unacknowledged items with a cursor greater than ``after``, oldest first. Items stay
        in the inbox until acknowledged, so a client that reconnects with ``after`` = its last acknowledged cursor
        gets everything not yet acknowledged again (nothing lost) and nothing it acknowledged (nothing repeated).
Rule 3: backpressure, bounded: the stream holds at most one page (``max_pull_items``) and each send waits for
        HTTP/2 flow control, so a slow consumer slows its own stream; open streams are capped
        (``MAX_INBOX_STREAMS``) and beyond the cap a new stream gets RESOURCE_EXHAUSTED.
Rule 4: deadlines: grpc cancels a call at its deadline; a following stream never waits past it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import grpc

from adapters.grpc_api.edge import GrpcServices, credentials
from gateway.core.errors import BadRequest, LimitExceeded, Overloaded
from gateway.exchange.inbox import MessageStatus
from gateway.exchange.pipeline import Inbound
from gateway.interfaces.protocols import InboxItem, RecipientState, StoredMessage
from gateway.wire.cgw.v1 import exchange_pb2, exchange_pb2_grpc

# Open Inbox streams across all callers: each holds a task and up to one page of messages in memory.
MAX_INBOX_STREAMS = 256
# Message ids and member ids in GetStatus are short; anything longer is not a lookup, it is noise.
MAX_ID_CHARS = 128

Context = grpc.aio.ServicerContext[Any, Any]


def _timestamp(message: StoredMessage) -> str:
    return message.received_at.isoformat().replace("+00:00", "Z")


def message_status(message: StoredMessage) -> exchange_pb2.MessageStatus:
    return exchange_pb2.MessageStatus(
        message_id=message.message_id,
        sender=message.sender,
        recipients=list(message.recipients),
        type=message.type,
        received=_timestamp(message),
        ledger_index=message.leaf_index,
        evidence_sha256=message.digest,
        receipt=message.receipt.decode("ascii"),
    )


def _time(at: datetime | None) -> str:
    return "" if at is None else at.isoformat().replace("+00:00", "Z")


def _recipient_state(state: RecipientState) -> exchange_pb2.RecipientState:
    reply = exchange_pb2.RecipientState(
        member=state.recipient,
        cursor=state.cursor,
        state=state.disposition.value,
        settled=_time(state.settled_at),
        peer=state.peer or "",
    )
    if state.delivery is not None:
        d = state.delivery
        reply.delivery.CopyFrom(
            exchange_pb2.PushState(
                attempts=d.attempts,
                outcome=d.outcome.value,
                last_status=d.last_status,
                updated=_time(d.updated_at),
                next_attempt=_time(d.next_attempt_at),
                last_code=d.code,
                receipt=d.receipt.decode("ascii"),
            )
        )
    if state.withdrawn_by is not None:
        reply.withdrawn_by.CopyFrom(
            exchange_pb2.MessageRef(sender=state.withdrawn_by[0], message_id=state.withdrawn_by[1])
        )
    return reply


def status_reply(status: MessageStatus) -> exchange_pb2.MessageStatus:
    """GetStatus: the message, each recipient's state and the forwards (as many as ``gateway.exchange.inbox`` lets
    the reader see: all for the sender, home administration and auditors)."""
    reply = message_status(status.message)
    reply.recipient_states.extend(_recipient_state(s) for s in status.recipients)
    reply.forwards.extend(
        exchange_pb2.ForwardRef(
            sender=f.sender,
            message_id=f.message_id,
            recipients=list(f.recipients),
            received=_timestamp(f),
            ledger_index=f.leaf_index,
        )
        for f in status.forwards
    )
    return reply


def inbox_item(item: InboxItem) -> exchange_pb2.InboxItem:
    message = item.message
    return exchange_pb2.InboxItem(
        cursor=item.cursor,
        sender=message.sender,
        message_id=message.message_id,
        type=message.type,
        received=_timestamp(message),
        envelope=message.jws,
        payload=message.payload,
    )


class ExchangeService(exchange_pb2_grpc.ExchangeServicer):
    def __init__(self, services: GrpcServices) -> None:
        self._services = services
        self._open_streams = 0

    def _inbound(self, adapter: str, request: exchange_pb2.SubmitRequest, context: Context) -> Inbound:
        limits = self._services.limits
        if not request.envelope:
            raise BadRequest("envelope (JWS compact) is required", field="envelope")
        if len(request.envelope) > limits.max_header_bytes:
            raise LimitExceeded(f"envelope larger than {limits.max_header_bytes} bytes", field="envelope")
        if len(request.payload) > limits.max_body_bytes:
            raise LimitExceeded(f"payload larger than {limits.max_body_bytes} bytes", field="payload")
        return Inbound(
            adapter=adapter,
            credentials=credentials(context),
            unverified_jws=request.envelope,
            payload=request.payload,
        )

    async def Submit(self, request: exchange_pb2.SubmitRequest, context: Context) -> exchange_pb2.SubmitResponse:
        outcome = await self._services.pipeline.submit(self._inbound("grpc", request, context))
        return exchange_pb2.SubmitResponse(message=message_status(outcome.message), duplicate=outcome.duplicate)

    async def Relay(self, request: exchange_pb2.SubmitRequest, context: Context) -> exchange_pb2.SubmitResponse:
        outcome = await self._services.pipeline.relay(self._inbound("relay-grpc", request, context))
        return exchange_pb2.SubmitResponse(message=message_status(outcome.message), duplicate=outcome.duplicate)

    async def Inbox(
        self, request: exchange_pb2.InboxRequest, context: Context
    ) -> AsyncIterator[exchange_pb2.InboxItem]:
        pipeline, limits = self._services.pipeline, self._services.limits
        caller = await pipeline.authenticate(credentials(context))
        if request.after < 0:
            raise BadRequest("after must be >= 0", field="after")
        if self._open_streams >= MAX_INBOX_STREAMS:
            raise Overloaded(f"{MAX_INBOX_STREAMS} inbox streams open")
        self._open_streams += 1
        try:
            after = request.after
            while True:
                wait = 0.0
                if request.follow:
                    remaining = context.time_remaining()
                    wait = limits.max_wait_seconds if remaining is None else min(limits.max_wait_seconds, remaining)
                    wait = max(0.0, wait)
                items = await pipeline.pull(caller, after=after, limit=limits.max_pull_items, wait=wait)
                if not items and not request.follow:
                    return
                for item in items:
                    yield inbox_item(item)  # waits for flow control: the consumer's pace bounds the stream
                    after = item.cursor
        finally:
            self._open_streams -= 1

    async def Ack(self, request: exchange_pb2.AckRequest, context: Context) -> exchange_pb2.AckResponse:
        caller = await self._services.pipeline.authenticate(credentials(context))
        cursors = list(request.cursors)
        if not cursors:
            raise BadRequest("at least one cursor is required", field="cursors")
        if len(cursors) > self._services.limits.max_ack_items:
            raise LimitExceeded(f"at most {self._services.limits.max_ack_items} cursors", field="cursors")
        for i, cursor in enumerate(cursors):
            if cursor < 1:
                raise BadRequest("cursor must be a positive integer", field=f"cursors[{i}]")
        count = await self._services.pipeline.ack(caller, cursors)
        return exchange_pb2.AckResponse(acknowledged=count)

    async def GetStatus(self, request: exchange_pb2.GetStatusRequest, context: Context) -> exchange_pb2.MessageStatus:
        caller = await self._services.pipeline.authenticate(credentials(context))
        for name in ("sender", "message_id"):
            value = getattr(request, name)
            if not value or len(value) > MAX_ID_CHARS:
                raise BadRequest(f"{name} must be 1..{MAX_ID_CHARS} characters", field=name)
        status = await self._services.pipeline.status(caller, request.sender, request.message_id)
        return status_reply(status)
