"""HTTPS webhook delivery: one stored message, POSTed as a signed CloudEvent (``gateway.core.pushevent``).

``WebhookDeliverer`` implements ``gateway.interfaces.protocols.Deliverer`` for endpoints of kind ``webhook``.

Rule 1: HTTPS only, the server certificate verified against the system store, the federation anchors and the
        configured extra CAs; redirects are not followed (the registry URL is the contract).
Rule 2: byte-identical retries: the body and its detached signature are rebuilt deterministically from the
        stored message (``gateway.core.pushevent`` signs deterministically), so attempt N sends exactly the
        bytes of attempt 1.
Rule 3: every attempt has one total timeout; timeouts, connection and TLS errors, 408, 425, 429 and 5xx are
        retryable; 2xx is delivered; any other status is a permanent refusal (dead letter at once).
Rule 4: aiohttp objects and exceptions never leave this module; the response body is read up to
        :data:`MAX_RESPONSE_BYTES` and discarded (never logged).
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import aiohttp

from gateway.core.model import Endpoint, Member
from gateway.core.pushevent import CONTENT_TYPE, PushEvent, build_push_event
from gateway.core.signing import chain_x5c
from gateway.exchange.state import Identity
from gateway.interfaces.protocols import DeliveryAttempt, InboxItem

SIGNATURE_HEADER = "Cgw-Signature"
# A receiver answers with a status; a few KiB of body is plenty for an error text we do not keep anyway.
MAX_RESPONSE_BYTES = 4096
# Connections kept to all webhook hosts together (the worker bounds pushes per recipient on top of it).
MAX_CONNECTIONS = 64
RETRYABLE_STATUSES = frozenset({408, 425, 429})


def webhook_tls(anchors: Path, extra_ca: Path | None = None) -> ssl.SSLContext:
    """TLS 1.2+ client context: system CAs, the federation anchors and an optional extra CA file."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cafile=str(anchors))
    if extra_ca is not None:
        context.load_verify_locations(cafile=str(extra_ca))
    return context


class WebhookDeliverer:
    kind = "webhook"

    def __init__(self, *, identity: Identity, source: str, tls: ssl.SSLContext, timeout_seconds: float) -> None:
        self._identity = identity
        self._x5c = chain_x5c(identity.private_key, identity.chain)
        self._source = source
        self._tls = tls
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def event(self, recipient: Member, item: InboxItem) -> PushEvent:
        """The exact bytes pushed for this item (the same on every attempt)."""
        message = item.message
        return build_push_event(
            sender=message.sender,
            message_id=message.message_id,
            message_type=message.type,
            recipients=message.recipients,
            jws=message.jws,
            payload=message.payload,
            receipt=message.receipt,
            evidence_sha256=message.digest,
            received_at=message.received_at,
            ledger_index=message.leaf_index,
            recipient=recipient.id,
            cursor=item.cursor,
            source=self._source,
            key=self._identity.private_key,
            x5c=self._x5c,
        )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(ssl=self._tls, limit=MAX_CONNECTIONS)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def deliver(self, recipient: Member, endpoint: Endpoint, item: InboxItem) -> DeliveryAttempt:
        if not endpoint.url.lower().startswith("https://"):
            return DeliveryAttempt(delivered=False, retryable=False, status="refused-scheme", detail="https only")
        event = self.event(recipient, item)
        headers = {"Content-Type": CONTENT_TYPE, SIGNATURE_HEADER: event.signature}
        try:
            async with self._client().post(
                endpoint.url, data=event.body, headers=headers, allow_redirects=False
            ) as response:
                await response.content.read(MAX_RESPONSE_BYTES)
                status = response.status
        except TimeoutError:
            return DeliveryAttempt(delivered=False, retryable=True, status="timeout")
        except aiohttp.ClientSSLError as exc:
            return DeliveryAttempt(delivered=False, retryable=True, status="tls-error", detail=type(exc).__name__)
        except (aiohttp.ClientError, OSError) as exc:
            return DeliveryAttempt(delivered=False, retryable=True, status="connect-error", detail=type(exc).__name__)
        if 200 <= status < 300:
            return DeliveryAttempt(delivered=True, retryable=False, status=str(status))
        retryable = status in RETRYABLE_STATUSES or status >= 500
        return DeliveryAttempt(delivered=False, retryable=retryable, status=str(status))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            await asyncio.sleep(0)  # let the connector finish closing its transports
