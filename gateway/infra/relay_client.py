"""Relay to a peer gateway: one stored message POSTed to ``{peer.rest_url}/v1/relay/messages`` (issue 19).

``RelayClient`` is what ``gateway.delivery.worker`` calls for a relay entry (``ports.relay_queue``); the worker's retry,
lease and dead-letter rules apply to it as to every push.

Rule 1: mutual TLS: the peer's server certificate must chain to ITS ``tls_anchors`` in the directory in force
        (``relay_tls``; the witness submissions use the same context), and this gateway presents its gateway
        client certificate (``[federation] client_cert/client_key``). Redirects are not followed.
Rule 2: byte-identical retries: the ``Cgw-Envelope`` header is the sender's compact JWS as accepted, the body the
        payload bytes as accepted, ``Content-Type`` the media the sender signed (its header's ``payload.media``).
Rule 3: 201 or 200 is delivered only with a receipt that verifies (``gateway.core.peerreceipt``); a 2xx without
        one, or with one that does not verify, is a failed, retryable attempt (``receipt-invalid``) and nothing of
        it is kept. 408, 425, 429 and 5xx (``gateway.core.peerreceipt.retryable_status``), timeouts, connection and
        TLS errors are retryable; any other status is a refusal that can never succeed (dead letter at once),
        reported with the stable code of the peer's answer. ``adapters.grpc_api.relay`` is the same over gRPC.
Rule 3a: but a recall (``intel.recall.v1``) the peer answers ``NOT_FOUND`` is retried with the same backoff: the
        recalled copy may still be on its way there (relayed by another attempt or process, or the peer's store
        not yet showing it), and a recall must not be given up before its original.
Rule 4: every await is bounded by one total timeout; the response body is read up to :data:`MAX_RESPONSE_BYTES`;
        aiohttp objects and exceptions never leave this module, and no body is ever logged.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp

from gateway.core.directory import PeerGateway
from gateway.core.errors import GatewayError, SignatureRejected
from gateway.core.forwarding import stored_header
from gateway.core.peerreceipt import MAX_RECEIPT_CHARS, recall_retryable, retryable_status, verify_peer_receipt
from gateway.interfaces.protocols import DeliveryAttempt, InboxItem

RELAY_PATH = "/v1/relay/messages"
ENVELOPE_HEADER = "Cgw-Envelope"
# A receipt (a JWS with its x5c chain) inside the accepted-message JSON; an error body is far smaller.
MAX_RESPONSE_BYTES = MAX_RECEIPT_CHARS + 16 * 1024
# Connections kept to all peers together (the worker bounds relays per peer on top of it).
MAX_CONNECTIONS = 32


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """This gateway's TLS client certificate towards its peers (``FederationSettings.client_cert/client_key``)."""

    cert: Path
    key: Path


def relay_tls(peer: PeerGateway, identity: ClientIdentity | None) -> ssl.SSLContext:
    """Rule 1: trust exactly the peer's TLS anchors; present the gateway client certificate when there is one."""
    context = ssl.create_default_context(cadata=b"".join(peer.tls_anchors))  # DER, concatenated
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if identity is not None:
        context.load_cert_chain(certfile=str(identity.cert), keyfile=str(identity.key))
    return context


class RelayClient:
    """Relays stored messages to peer gateways (Rules 1-4). One TLS context and session per peer (kept while the
    directory lists the same anchors), so consecutive relays to one peer reuse their connections."""

    kind = "relay"

    def __init__(
        self,
        *,
        identity: ClientIdentity | None,
        timeout_seconds: float,
        clock: Callable[[], datetime],
    ) -> None:
        self._identity = identity
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._clock = clock
        self._sessions: dict[str, tuple[tuple[bytes, ...], aiohttp.ClientSession]] = {}

    def _session(self, peer: PeerGateway) -> aiohttp.ClientSession:
        known = self._sessions.get(peer.id)
        if known is not None and known[0] == peer.tls_anchors and not known[1].closed:
            return known[1]
        if known is not None:
            asyncio.get_running_loop().create_task(known[1].close())  # the directory changed the peer's anchors
        connector = aiohttp.TCPConnector(ssl=relay_tls(peer, self._identity), limit=MAX_CONNECTIONS)
        session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        self._sessions[peer.id] = (peer.tls_anchors, session)
        return session

    async def relay(self, peer: PeerGateway, item: InboxItem) -> DeliveryAttempt:
        message = item.message
        try:
            media = stored_header(message.jws).payload.media
        except GatewayError as exc:  # evidence that is not a compact JWS (a SOAP document) cannot go this way
            return DeliveryAttempt(delivered=False, retryable=False, status="not-relayable", detail=exc.detail[:200])
        url = peer.rest_url.rstrip("/") + RELAY_PATH
        headers = {ENVELOPE_HEADER: message.jws, "Content-Type": media}
        try:
            async with self._session(peer).post(
                url, data=message.payload, headers=headers, allow_redirects=False
            ) as response:
                body = await response.content.read(MAX_RESPONSE_BYTES)
                status = response.status
        except TimeoutError:
            return DeliveryAttempt(delivered=False, retryable=True, status="timeout")
        except aiohttp.ClientSSLError as exc:
            return DeliveryAttempt(delivered=False, retryable=True, status="tls-error", detail=type(exc).__name__)
        except (aiohttp.ClientError, OSError) as exc:
            return DeliveryAttempt(delivered=False, retryable=True, status="connect-error", detail=type(exc).__name__)
        if status in (200, 201):
            return self._accepted(peer, item, status, body)
        code = _error_code(body)
        retryable = retryable_status(status) or recall_retryable(message.type, code)  # Rule 3, 3a
        return DeliveryAttempt(delivered=False, retryable=retryable, status=str(status), detail=code, code=code)

    def _accepted(self, peer: PeerGateway, item: InboxItem, status: int, body: bytes) -> DeliveryAttempt:
        """Rule 3: delivered only with B's receipt for exactly this message, verified against B's anchors."""
        message = item.message
        try:
            answer = json.loads(body)
            receipt = answer.get("receipt") if isinstance(answer, dict) else None
            if not isinstance(receipt, str):
                raise SignatureRejected("the peer's answer carries no receipt", field="receipt")
            kept = receipt.encode("ascii")
            verify_peer_receipt(
                receipt,
                peer=peer.id,
                signing_anchors=peer.signing_anchors,
                sender=message.sender,
                message_id=message.message_id,
                evidence_sha256=message.digest,
                at=self._clock(),
            )
        except (ValueError, GatewayError) as exc:
            detail = exc.detail if isinstance(exc, GatewayError) else "the answer is not JSON"
            return DeliveryAttempt(delivered=False, retryable=True, status="receipt-invalid", detail=detail[:200])
        return DeliveryAttempt(delivered=True, retryable=False, status=str(status), receipt=kept)

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for _, session in sessions.values():
            await session.close()
        await asyncio.sleep(0)  # let the connectors finish closing their transports


def _error_code(body: bytes) -> str:
    """The stable ``code`` of a standard error body (``gateway.core.errors``), or "" when there is none."""
    try:
        answer = json.loads(body)
    except ValueError:
        return ""
    code = answer.get("code") if isinstance(answer, dict) else None
    return code[:64] if isinstance(code, str) else ""
