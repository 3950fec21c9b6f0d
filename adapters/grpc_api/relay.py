"""Relay to a peer gateway over gRPC: ``cgw.v1.Exchange/Relay`` at the peer's ``grpc_target`` (issue 19).

The gRPC twin of ``gateway.infra.relay_client.RelayClient`` (a ``gateway.interfaces.protocols.Relayer``), chosen by
``[federation] relay_transport = "grpc"`` for peers whose directory entry names a ``grpc_target``.

Rule 1: mutual TLS: the peer's server certificate must chain to ITS ``tls_anchors`` in the directory in force (and
        match the target's host), and this gateway presents its gateway client certificate. One channel per peer,
        kept while the directory lists the same target and anchors; grpc's own retries are off (one attempt is one
        call: the delivery worker owns retries and backoff).
Rule 2: byte-identical retries: the request is the sender's compact JWS and the payload bytes as accepted.
Rule 3: OK is delivered only with a receipt that verifies (``gateway.core.peerreceipt``): exactly as over REST, a
        reply without one, or with one that does not verify, is a failed, retryable attempt (``receipt-invalid``)
        and nothing of it is kept.
Rule 4: a refusal is classified as over REST (``gateway.core.peerreceipt.retryable_status``): the stable code of
        the peer's ``google.rpc.ErrorInfo`` names an error kind, whose HTTP status in ``adapters.status`` decides.
        Without an ErrorInfo (the channel itself failed, or no gateway answered), UNAVAILABLE, DEADLINE_EXCEEDED,
        RESOURCE_EXHAUSTED, ABORTED, INTERNAL and UNKNOWN are retryable, any other code is final.
Rule 5: every call has one deadline; grpc and protobuf objects never leave this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Final

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from google.rpc import error_details_pb2, status_pb2

from adapters.status import STATUS
from gateway.core.directory import PeerGateway
from gateway.core.errors import ErrorKind, GatewayError, SignatureRejected
from gateway.core.forwarding import stored_header
from gateway.core.peerreceipt import MAX_RECEIPT_CHARS, recall_retryable, retryable_status, verify_peer_receipt
from gateway.interfaces.protocols import DeliveryAttempt, InboxItem
from gateway.wire.cgw.v1 import exchange_pb2, exchange_pb2_grpc

STATUS_DETAILS_KEY: Final = "grpc-status-details-bin"
RETRYABLE_WITHOUT_INFO: Final = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
# The reply is one MessageStatus with the peer's receipt; anything near this size is not one.
MAX_RESPONSE_BYTES: Final = MAX_RECEIPT_CHARS + 16 * 1024
# Our request is the sender's envelope and payload: the gateway's body bound (2 MiB default) with room.
MAX_REQUEST_BYTES: Final = 8 * 1024 * 1024
_CHANNEL_OPTIONS: Final = (
    ("grpc.enable_retries", 0),  # Rule 1
    ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
    ("grpc.max_send_message_length", MAX_REQUEST_BYTES),
)


@dataclass(frozen=True, slots=True)
class ClientPem:
    """This gateway's TLS client certificate chain and private key (PEM), as read from ``[federation]``."""

    cert_pem: bytes
    key_pem: bytes


def _subclasses(cls: type[GatewayError]) -> Iterator[type[GatewayError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@cache
def _kind_of(code: str) -> ErrorKind | None:
    """The error kind of a stable code (every ``GatewayError`` class loaded; one code, one kind)."""
    classes: list[type[GatewayError]] = [GatewayError, *_subclasses(GatewayError)]
    return next((c.kind for c in classes if c.code == code), None)


def _error_info(error: grpc.aio.AioRpcError) -> str:
    """Rule 4: the peer's stable code from its ErrorInfo detail ("" when there is none)."""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                status = status_pb2.Status.FromString(value)
            except ValueError:  # protobuf's DecodeError: not a status we can read
                return ""
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason[:64]
    return ""


def classify(error: grpc.aio.AioRpcError, message_type: str = "") -> DeliveryAttempt:
    """Rule 4: a failed call as a failed attempt, retryable as the REST relay would judge the same refusal."""
    code = _error_info(error)
    kind = _kind_of(code) if code else None
    retryable = retryable_status(STATUS[kind].http) if kind is not None else error.code() in RETRYABLE_WITHOUT_INFO
    retryable = retryable or recall_retryable(message_type, code)
    return DeliveryAttempt(
        delivered=False, retryable=retryable, status=error.code().name, detail=code or error.code().name, code=code
    )


def _anchors_pem(peer: PeerGateway) -> bytes:
    return b"".join(
        x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM) for der in peer.tls_anchors
    )


class GrpcRelayClient:
    """Relays stored messages to peer gateways over gRPC (Rules 1-5)."""

    kind = "relay"

    def __init__(self, *, identity: ClientPem | None, timeout_seconds: float, clock: Callable[[], datetime]) -> None:
        self._identity = identity
        self._timeout = timeout_seconds
        self._clock = clock
        self._channels: dict[str, tuple[tuple[str, tuple[bytes, ...]], grpc.aio.Channel]] = {}

    def _stub(self, peer: PeerGateway) -> exchange_pb2_grpc.ExchangeStub:
        known = self._channels.get(peer.id)
        key = (peer.grpc_target, peer.tls_anchors)
        if known is not None and known[0] == key:
            return exchange_pb2_grpc.ExchangeStub(known[1])
        if known is not None:  # the directory changed the peer's target or anchors: calls in flight finish
            asyncio.get_running_loop().create_task(known[1].close(grace=self._timeout))
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_anchors_pem(peer),
            private_key=None if self._identity is None else self._identity.key_pem,
            certificate_chain=None if self._identity is None else self._identity.cert_pem,
        )
        channel = grpc.aio.secure_channel(peer.grpc_target, credentials, options=_CHANNEL_OPTIONS)
        self._channels[peer.id] = (key, channel)
        return exchange_pb2_grpc.ExchangeStub(channel)

    async def relay(self, peer: PeerGateway, item: InboxItem) -> DeliveryAttempt:
        message = item.message
        try:
            stored_header(message.jws)  # evidence that is not a compact JWS (a SOAP document) cannot go this way
        except GatewayError as exc:
            return DeliveryAttempt(delivered=False, retryable=False, status="not-relayable", detail=exc.detail[:200])
        if not peer.grpc_target:
            return DeliveryAttempt(delivered=False, retryable=False, status="not-relayable", detail="no grpc_target")
        request = exchange_pb2.SubmitRequest(envelope=message.jws, payload=message.payload)
        try:
            reply = await self._stub(peer).Relay(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            return classify(exc, message.type)
        return self._accepted(peer, item, reply.message.receipt)

    def _accepted(self, peer: PeerGateway, item: InboxItem, receipt: str) -> DeliveryAttempt:
        """Rule 3: delivered only with the peer's receipt for exactly this message, verified against its anchors."""
        message = item.message
        ok = grpc.StatusCode.OK.name
        try:
            if not receipt:
                raise SignatureRejected("the peer's answer carries no receipt", field="receipt")
            verify_peer_receipt(
                receipt,
                peer=peer.id,
                signing_anchors=peer.signing_anchors,
                sender=message.sender,
                message_id=message.message_id,
                evidence_sha256=message.digest,
                at=self._clock(),
            )
            kept = receipt.encode("ascii")
        except (GatewayError, UnicodeEncodeError) as exc:
            detail = exc.detail if isinstance(exc, GatewayError) else "the receipt is not ASCII"
            return DeliveryAttempt(delivered=False, retryable=True, status="receipt-invalid", detail=detail[:200])
        return DeliveryAttempt(delivered=True, retryable=False, status=ok, receipt=kept)

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for _, channel in channels:
            await channel.close()
