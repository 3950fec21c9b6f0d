"""Push delivery to a member's SOAP endpoint (zeep), signed with WS-Security:
``gateway.interfaces.protocols.Deliverer``.

The endpoint implements the delivery contract (``description.wsdl_document(..., delivery=True)``, served by the
gateway at ``/soap/v1?wsdl=delivery``): one ``Deliver`` operation carrying the inbox item.

Rule 1: byte-identical business content: the Body carries the stored evidence (JWS or signed SOAP envelope) and
        payload unchanged on every attempt; the WS-Addressing ``MessageID`` is derived from (sender, message id,
        recipient) so the receiver de-duplicates retries; only the WS-Security header (Timestamp, signature) is
        fresh per attempt, as it must be.
Rule 2: the WSDL is ours, loaded from memory: nothing is fetched from the endpoint, and zeep runs with every
        security setting explicit (``clientsecurity.zeep_settings``).
Rule 3: every attempt has one timeout (connect + read, and an overall ``asyncio`` bound around the worker thread);
        timeouts, connection/TLS errors, HTTP 408/425/429/5xx and Receiver faults are retryable, Sender faults
        and other statuses are permanent (the same rules as webhook pushes).
Rule 4: the response must be signed by the recipient itself (federation-validated, signer == recipient) and say
        ``accepted``; otherwise the attempt is not delivered (retryable: the receiver de-duplicates).
Rule 5: zeep, requests and lxml objects never leave this module.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Final

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.transports import Transport
from zeep.wsdl import Document

from adapters.soap import description, names
from adapters.soap.clientsecurity import WsSecurity, zeep_settings
from gateway.core.errors import GatewayError
from gateway.core.model import ChainValidator, Endpoint, Member
from gateway.exchange.state import Identity
from gateway.interfaces.protocols import DeliveryAttempt, InboxItem

RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})
_DELIVERY_NAMESPACE: Final = uuid.UUID("5d0c7a52-2b4e-4c3c-9f6e-6a1f3f2f9c11")  # uuid5 namespace for MessageIDs
_WSDL_PLACEHOLDER: Final = "https://delivery.invalid/soap"


@dataclass(frozen=True, slots=True)
class ClientTls:
    """Files for the HTTPS client: the federation anchors (server verification) and our TLS client pair."""

    anchors: Path
    client_cert: Path | None = None
    client_key: Path | None = None


def delivery_message_id(item: InboxItem, recipient: str) -> str:
    """The WS-Addressing MessageID of a delivery: the same on every attempt (Rule 1)."""
    message = item.message
    return f"urn:uuid:{uuid.uuid5(_DELIVERY_NAMESPACE, f'{message.sender}/{message.message_id}/{recipient}')}"


class SoapDeliverer:
    kind = "soap"

    def __init__(
        self,
        *,
        identity: Identity,
        trust: Callable[[], ChainValidator],
        tls: ClientTls,
        timeout_seconds: float,
        soap12: bool = True,
    ) -> None:
        self._identity = identity
        self._trust = trust  # the current federation trust (it is swapped on reload)
        self._tls = tls
        self._timeout = timeout_seconds
        self._binding = f"{{{names.CGW}}}CustomsDeliverySoap{'12' if soap12 else '11'}"

    @cached_property
    def _document(self) -> Document:
        wsdl = description.wsdl_document(_WSDL_PLACEHOLDER, delivery=True)
        return Document(io.BytesIO(wsdl), Transport(), settings=zeep_settings())

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # no proxy or CA bundle from the environment: requests lets them override verify
        session.verify = str(self._tls.anchors)
        session.max_redirects = 0
        if self._tls.client_cert is not None and self._tls.client_key is not None:
            session.cert = (str(self._tls.client_cert), str(self._tls.client_key))
        return session

    def _call(self, recipient: Member, endpoint: Endpoint, item: InboxItem) -> DeliveryAttempt:
        message = item.message
        security = WsSecurity(
            key=self._identity.private_key, certificate=self._identity.chain[0], response_validator=self._trust()
        )
        session = self._session()
        try:
            transport = Transport(session=session, timeout=self._timeout, operation_timeout=self._timeout)
            client = zeep.Client(wsdl=self._document, wsse=security, transport=transport, settings=zeep_settings())
            service = client.create_service(self._binding, endpoint.url)
            wsa = [
                _wsa("Action", names.action("Deliver")),
                _wsa("MessageID", delivery_message_id(item, recipient.id)),
                _wsa("To", endpoint.url),
            ]
            result: Any = service.Deliver(
                item={
                    "cursor": item.cursor,
                    "from": message.sender,
                    "messageId": message.message_id,
                    "type": message.type,
                    "received": message.received_at,
                    "evidence": message.jws,
                    "payload": message.payload,
                },
                recipient=recipient.id,
                _soapheaders=wsa,
            )
        except zeep.exceptions.Fault as fault:
            code = str(fault.code or "fault")
            permanent = "Client" in code or "Sender" in code
            return DeliveryAttempt(
                delivered=False, retryable=not permanent, status=code[:80], detail=str(fault.message)[:200]
            )
        except zeep.exceptions.TransportError as exc:
            retryable = exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500
            return DeliveryAttempt(delivered=False, retryable=retryable, status=str(exc.status_code))
        except requests.Timeout:
            return DeliveryAttempt(delivered=False, retryable=True, status="timeout")
        except requests.exceptions.SSLError as exc:
            return DeliveryAttempt(delivered=False, retryable=True, status="tls-error", detail=type(exc).__name__)
        except (requests.ConnectionError, OSError) as exc:
            return DeliveryAttempt(delivered=False, retryable=True, status="connect-error", detail=type(exc).__name__)
        except GatewayError as exc:  # the response did not verify (wssecurity)
            return DeliveryAttempt(delivered=False, retryable=True, status="response-unverified", detail=exc.code)
        except (zeep.exceptions.Error, etree.LxmlError, ValueError) as exc:
            return DeliveryAttempt(delivered=False, retryable=True, status="bad-response", detail=type(exc).__name__)
        finally:
            session.close()
        verified = security.last_verified
        if verified is None or verified.certified.member_id != recipient.id:
            return DeliveryAttempt(delivered=False, retryable=True, status="response-unverified", detail="signer")
        if result is not True:
            return DeliveryAttempt(delivered=False, retryable=True, status="not-accepted")
        return DeliveryAttempt(delivered=True, retryable=False, status="200")

    async def deliver(self, recipient: Member, endpoint: Endpoint, item: InboxItem) -> DeliveryAttempt:
        if not endpoint.url.lower().startswith("https://"):
            return DeliveryAttempt(delivered=False, retryable=False, status="refused-scheme", detail="https only")
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(self._call, recipient, endpoint, item), timeout=2 * self._timeout + 1
            )
        except TimeoutError:
            return DeliveryAttempt(delivered=False, retryable=True, status="timeout")

    async def close(self) -> None:
        return None


def _wsa(name: str, text: str) -> etree._Element:
    element = etree.Element(f"{{{names.WSA}}}{name}", nsmap={"wsa": names.WSA})
    element.text = text
    return element
