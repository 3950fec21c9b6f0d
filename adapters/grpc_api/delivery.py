"""Push delivery to a member's gRPC endpoint (``cgw.v1.Delivery/Deliver``): ``gateway.interfaces.protocols.Deliverer``.

The member serves ``protos/cgw/v1/delivery.proto``; its registry endpoint is
``{"kind": "grpc", "url": "grpcs://host:port"}``.

Rule 1: byte-identical retries: the request carries the webhook's signed CloudEvent (``gateway.core.pushevent``),
        built by the injected ``events`` function from the stored message, so attempt N sends exactly the bytes of
        attempt 1 (and the same bytes a webhook push would).
Rule 2: TLS only (``grpcs://``), the server certificate verified against the federation anchors (and the
        optional ``[delivery] ca_file``) and the target host name; grpc's own retries are off, so one attempt is
        one call.
Rule 3: every call has one deadline (``[delivery] timeout_seconds``). OK is delivered; UNAVAILABLE (which also
        covers connection and TLS failures), DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED are retryable; any other
        status is a permanent refusal (dead letter at once): the same classification as webhook pushes.
Rule 4: grpc and protobuf objects never leave this module; channels are kept per target and closed by ``close``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

import grpc

from gateway.core.model import Endpoint, Member
from gateway.core.pushevent import CONTENT_TYPE, PushEvent
from gateway.interfaces.protocols import DeliveryAttempt, InboxItem
from gateway.wire.cgw.v1 import delivery_pb2, delivery_pb2_grpc

SCHEME: Final = "grpcs://"
RETRYABLE_CODES: Final = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
# The answer is an event id; anything near this size is not a DeliveryAck we care about.
MAX_RESPONSE_BYTES: Final = 4096
# Our request is one event: the gateway's body bound (2 MiB default) in base64 plus envelope; 8 MiB is ample.
MAX_REQUEST_BYTES: Final = 8 * 1024 * 1024
# Channels kept open at once (one per member target); beyond it the oldest is closed.
MAX_CHANNELS: Final = 256
_CHANNEL_OPTIONS: Final = (
    ("grpc.enable_retries", 0),  # Rule 2: the worker owns retries and backoff
    ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
    ("grpc.max_send_message_length", MAX_REQUEST_BYTES),
)

EventFactory = Callable[[Member, InboxItem], PushEvent]


def delivery_credentials(anchors: Path, extra_ca: Path | None = None) -> grpc.ChannelCredentials:
    """Channel credentials trusting the federation anchors (and an optional extra CA file) only."""
    roots = anchors.read_bytes()
    if extra_ca is not None:
        roots += b"\n" + extra_ca.read_bytes()
    return grpc.ssl_channel_credentials(root_certificates=roots)


def grpc_target(url: str) -> str | None:
    """``host:port`` of a ``grpcs://host:port`` endpoint URL (None: not a URL this deliverer calls)."""
    if not url.lower().startswith(SCHEME):
        return None
    target = url[len(SCHEME) :].rstrip("/")
    if not target or "/" in target or "@" in target:
        return None
    return target


class GrpcDeliverer:
    kind = "grpc"

    def __init__(self, *, events: EventFactory, credentials: grpc.ChannelCredentials, timeout_seconds: float) -> None:
        self._events = events
        self._credentials = credentials
        self._timeout = timeout_seconds
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def _stub(self, target: str) -> delivery_pb2_grpc.DeliveryStub:
        channel = self._channels.get(target)
        if channel is None:
            if len(self._channels) >= MAX_CHANNELS:  # calls on it get their deadline to finish
                await self._channels.pop(next(iter(self._channels))).close(grace=self._timeout)
            channel = grpc.aio.secure_channel(target, self._credentials, options=_CHANNEL_OPTIONS)
            self._channels[target] = channel
        return delivery_pb2_grpc.DeliveryStub(channel)

    async def deliver(self, recipient: Member, endpoint: Endpoint, item: InboxItem) -> DeliveryAttempt:
        target = grpc_target(endpoint.url)
        if target is None:
            return DeliveryAttempt(delivered=False, retryable=False, status="refused-scheme", detail="grpcs only")
        event = self._events(recipient, item)
        request = delivery_pb2.PushEvent(body=event.body, signature=event.signature, content_type=CONTENT_TYPE)
        try:
            await (await self._stub(target)).Deliver(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            return DeliveryAttempt(
                delivered=False, retryable=code in RETRYABLE_CODES, status=code.name, detail=(exc.details() or "")[:200]
            )
        return DeliveryAttempt(delivered=True, retryable=False, status=grpc.StatusCode.OK.name)

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()
