"""SOAP adapter over HTTP: ``GET ?wsdl`` and ``POST`` of SOAP 1.1 / 1.2 envelopes, translated to the one pipeline.

Rule 1: a translator only. Submissions go to ``Pipeline.submit`` as an ``Inbound`` carrying the signed envelope
        (``SignedDocument``); the pipeline's SOAP ``DocumentVerifier`` checks WS-Security. Status, inbox pull and
        ack authenticate the transport (mTLS or bearer token) exactly like REST.
Rule 2: the body is bounded before it is read (the REST body limit, capped by ``document.MAX_DOCUMENT_BYTES``)
        and parsed only by ``document.parse_document``.
Rule 3: every error leaves as a SOAP fault of the request's SOAP version through ``replies.fault`` (the one status
        table), after ``endpoint`` (the adapter's one error boundary) reported it to the pipeline, which records
        it (gateway/exchange/rejections.py) with adapter ``soap``; every success is a response signed by the gateway.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import structlog
from aiohttp import web
from lxml import etree

from adapters.httpedge import http_credentials, report_rejection
from adapters.soap import description, names, replies
from adapters.soap.document import MAX_DOCUMENT_BYTES, parse_document
from adapters.soap.mapping import qname
from adapters.soap.submission import body_operation
from adapters.soap.wssecurity import envelope_parts
from gateway.core.errors import BadRequest, GatewayError, Internal, LimitExceeded, UnsupportedMediaType
from gateway.exchange.inbox import MessageStatus
from gateway.exchange.pipeline import Inbound, Pipeline, SignedDocument
from gateway.exchange.state import GatewayState
from gateway.interfaces.protocols import Clock, InboxItem, StoredMessage

log = structlog.get_logger("gateway.soap")

# Query operations carry a handful of small values; 64 KiB is plenty and bounds the parse.
MAX_QUERY_BYTES: Final = 64 * 1024
_MAX_INT_DIGITS: Final = 18


@dataclass(frozen=True, slots=True)
class SoapServices:
    pipeline: Pipeline
    state: GatewayState
    clock: Clock
    audience: str  # the gateway's stable URN, accepted as WS-Addressing To besides the endpoint URL


SOAP_SERVICES: Final = web.AppKey("soap_services", SoapServices)


def _address(request: web.Request) -> str:
    return str(request.url.with_query(None))


async def wsdl(request: web.Request) -> web.Response:
    kind = request.query.get("wsdl")
    if kind not in ("", "delivery") or set(request.query) != {"wsdl"}:
        raise web.HTTPNotFound()
    document = description.wsdl_document(_address(request), delivery=kind == "delivery")
    return web.Response(body=document, content_type="text/xml", charset="utf-8")


def _soap_version(request: web.Request) -> str:
    if request.content_type == names.MEDIA_SOAP12:
        return names.SOAP12
    if request.content_type == names.MEDIA_SOAP11:
        return names.SOAP11
    raise UnsupportedMediaType("use text/xml (SOAP 1.1) or application/soap+xml (SOAP 1.2)", field="Content-Type")


async def endpoint(request: web.Request) -> web.Response:
    soap_ns = names.SOAP11
    try:
        soap_ns = _soap_version(request)
        reply = await _handle(request, soap_ns)
    except GatewayError as exc:
        await report_rejection(request.app[SOAP_SERVICES].pipeline, exc, request, adapter="soap")
        reply = replies.fault(exc, soap_ns)
    except Exception:
        log.exception("unhandled error in SOAP handler")
        error = Internal("unhandled")
        await report_rejection(request.app[SOAP_SERVICES].pipeline, error, request, adapter="soap")
        reply = replies.fault(error, soap_ns)
    return web.Response(body=reply.body, status=reply.status, content_type=reply.content_type, charset="utf-8")


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise LimitExceeded(f"body larger than {limit} bytes", field="body")
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise LimitExceeded(f"body larger than {limit} bytes", field="body")
    return raw


async def _handle(request: web.Request, soap_ns: str) -> replies.Reply:
    services = request.app[SOAP_SERVICES]
    limit = min(services.state.limits.max_body_bytes, MAX_DOCUMENT_BYTES)
    raw = await _read_body(request, limit)
    root = parse_document(raw, max_bytes=limit)
    declared_ns, header, body = envelope_parts(root)
    if declared_ns != soap_ns:
        raise BadRequest("the Content-Type does not match the SOAP version of the Envelope", field="Content-Type")
    operation, element = body_operation(body)
    relates_to = _unverified_message_id(header)  # echoed only, never trusted
    if operation in names.SUBMIT_OPERATIONS:
        document = SignedDocument(unverified=raw, audiences=(_address(request), services.audience))
        inbound = Inbound(
            adapter="soap", credentials=http_credentials(request), unverified_jws="", payload=b"", document=document
        )
        outcome = await services.pipeline.submit(inbound)
        result = _status_element(operation + "Response", outcome.message, duplicate=outcome.duplicate)
    elif operation in names.QUERY_OPERATIONS:
        if len(raw) > MAX_QUERY_BYTES:
            raise LimitExceeded(f"a query is at most {MAX_QUERY_BYTES} bytes", field="body")
        result = await _query(services, request, operation, element)
    else:
        raise BadRequest(f"unknown operation {operation[:40]!r}", field="Body")
    identity = services.state.identity
    return replies.signed_response(
        soap_ns,
        operation,
        result,
        relates_to=relates_to,
        key=identity.private_key,
        certificate=identity.chain[0],
        now=services.clock.now(),
    )


def _unverified_message_id(header: etree._Element) -> str | None:
    found = header.find(f"{{{names.WSA}}}MessageID")
    text = (found.text or "").strip() if found is not None else ""
    return text[:200] if text and text.isprintable() else None


# -- queries --------------------------------------------------------------------------------------------------


def _values(element: etree._Element, allowed: dict[str, bool]) -> dict[str, list[str]]:
    """Children of a query element as text values; ``allowed`` maps each name to whether it may repeat."""
    out: dict[str, list[str]] = {}
    for child in element:
        name = etree.QName(child).localname
        if etree.QName(child).namespace != names.CGW or name not in allowed or len(child) or child.attrib:
            raise BadRequest(f"unexpected element {name[:40]!r}", field=name[:40])
        if name in out and not allowed[name]:
            raise BadRequest("element may occur once", field=name)
        out.setdefault(name, []).append((child.text or "").strip())
    return out


def _integer(values: dict[str, list[str]], name: str, default: int | None) -> int:
    if name not in values:
        if default is None:
            raise BadRequest(f"{name} is required", field=name)
        return default
    text = values[name][0]
    if not text.isdigit() or len(text) > _MAX_INT_DIGITS:
        raise BadRequest(f"{name} must be a non-negative integer", field=name)
    return int(text)


async def _query(
    services: SoapServices, request: web.Request, operation: str, element: etree._Element
) -> etree._Element:
    caller = await services.pipeline.authenticate(http_credentials(request))
    pipeline = services.pipeline
    if operation == "GetStatus":
        values = _values(element, {"from": False, "messageId": False})
        for name in ("from", "messageId"):
            if name not in values:
                raise BadRequest(f"{name} is required", field=name)
        status = await pipeline.status(caller, values["from"][0], values["messageId"][0])
        response = etree.Element(qname("GetStatusResponse"), nsmap={None: names.CGW})
        element = _status_element("status", status.message, duplicate=None)
        _append_states(element, status)
        response.append(element)
        return response
    if operation == "PullInbox":
        values = _values(element, {"after": False, "limit": False, "wait": False})
        limits = services.state.limits
        items = await pipeline.pull(
            caller,
            after=_integer(values, "after", 0),
            limit=max(1, _integer(values, "limit", limits.max_pull_items)),
            wait=float(_integer(values, "wait", 0)),
        )
        response = etree.Element(qname("PullInboxResponse"), nsmap={None: names.CGW})
        for item in items:
            response.append(inbox_item_element(item))
        etree.SubElement(response, qname("nextAfter")).text = str(
            items[-1].cursor if items else values.get("after", ["0"])[0]
        )
        return response
    values = _values(element, {"cursor": True})
    cursors = values.get("cursor", [])
    if not cursors or len(cursors) > services.state.limits.max_ack_items:
        raise BadRequest(f"1..{services.state.limits.max_ack_items} cursors", field="cursor")
    parsed = []
    for i, text in enumerate(cursors):
        if not text.isdigit() or len(text) > _MAX_INT_DIGITS or int(text) < 1:
            raise BadRequest("cursor must be a positive integer", field=f"cursor[{i}]")
        parsed.append(int(text))
    count = await pipeline.ack(caller, parsed)
    response = etree.Element(qname("AckInboxResponse"), nsmap={None: names.CGW})
    etree.SubElement(response, qname("acknowledged")).text = str(count)
    return response


def _time(message: StoredMessage) -> str:
    return message.received_at.isoformat().replace("+00:00", "Z")


def _status_element(name: str, message: StoredMessage, *, duplicate: bool | None) -> etree._Element:
    element = etree.Element(qname(name), nsmap={None: names.CGW})
    values: list[tuple[str, str]] = [("messageId", message.message_id), ("from", message.sender)]
    values += [("to", r) for r in message.recipients]
    values += [
        ("type", message.type),
        ("received", _time(message)),
        ("ledgerIndex", str(message.leaf_index)),
        ("evidenceSha256", message.digest),
        ("receipt", message.receipt.decode("ascii")),
    ]
    if duplicate is not None:
        values.append(("duplicate", "true" if duplicate else "false"))
    for tag, text in values:
        etree.SubElement(element, qname(tag)).text = text
    return element


def _stamp(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def _append_states(element: etree._Element, status: MessageStatus) -> None:
    """GetStatus: each recipient's state and the forwards, after the message's own fields (as many as
    ``gateway.exchange.inbox`` lets the reader see: all for the sender, home administration and auditors)."""
    for state in status.recipients:
        delivery, recall = state.delivery, state.withdrawn_by
        values = [
            ("member", state.recipient),
            ("cursor", str(state.cursor)),
            ("state", state.disposition.value),
            ("settled", _stamp(state.settled_at)),
        ]
        if delivery is not None:
            values += [
                ("attempts", str(delivery.attempts)),
                ("outcome", delivery.outcome.value),
                ("lastStatus", delivery.last_status),
                ("updated", _stamp(delivery.updated_at)),
                ("nextAttempt", _stamp(delivery.next_attempt_at)),
            ]
        if recall is not None:
            values += [("withdrawnByFrom", recall[0]), ("withdrawnByMessageId", recall[1])]
        if state.peer is not None:  # a relay entry (issue 19)
            values.append(("peer", state.peer))
            if delivery is not None:
                values += [("lastCode", delivery.code or None), ("peerReceipt", delivery.receipt.decode() or None)]
        _children(etree.SubElement(element, qname("recipientState")), values)
    for forward in status.forwards:
        values = [("from", forward.sender), ("messageId", forward.message_id)]
        values += [("to", r) for r in forward.recipients]
        values += [("received", _time(forward)), ("ledgerIndex", str(forward.leaf_index))]
        _children(etree.SubElement(element, qname("forward")), values)


def _children(parent: etree._Element, values: list[tuple[str, str | None]]) -> None:
    for tag, text in values:
        if text is not None:
            etree.SubElement(parent, qname(tag)).text = text


def inbox_item_element(item: InboxItem, name: str = "item") -> etree._Element:
    """An inbox item: the exact evidence (JWS or signed SOAP envelope) and the payload bytes (base64)."""
    element = etree.Element(qname(name), nsmap={None: names.CGW})
    message = item.message
    for tag, text in (
        ("cursor", str(item.cursor)),
        ("from", message.sender),
        ("messageId", message.message_id),
        ("type", message.type),
        ("received", _time(message)),
        ("evidence", message.jws),
        ("payload", base64.b64encode(message.payload).decode("ascii")),
    ):
        etree.SubElement(element, qname(tag)).text = text
    return element


def build_soap_app(services: SoapServices) -> web.Application:
    """The sub-application mounted at :data:`names.SOAP_PATH` (``/soap/v1``; the WSDL at ``/soap/v1?wsdl``)."""
    app = web.Application()
    app[SOAP_SERVICES] = services
    app.router.add_get("", wsdl)
    app.router.add_post("", endpoint)
    return app
