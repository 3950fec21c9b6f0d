"""REST adapter: HTTP <-> the one pipeline. A translator only: no business rules live here.

Rule 1: the signed header travels in the ``Cgw-Envelope`` request header (JWS compact); the body is the payload,
        byte for byte, with its media type as ``Content-Type``. Nothing re-encodes the payload.
Rule 2: every error leaves as RFC 9457 ``application/problem+json`` through ``adapters.status`` (one table).
Rule 3: limits are named in ``Settings.limits`` and enforced before work is done (body size before reading,
        list lengths before iterating, long-poll waits bounded).
Rule 4: the problem middleware is the adapter's one error boundary: every refusal is reported to the pipeline
        (``adapters.httpedge.report_rejection``), which records it (gateway/exchange/rejections.py).
Rule 5: ``POST /v1/relay/messages`` (a peer gateway relaying its member's message, issue 19) has the shape of
        ``POST /v1/messages``: the sender's envelope unchanged in ``Cgw-Envelope``, the payload as the body, the
        same answer (this gateway's receipt); only the pipeline entry differs (``Pipeline.relay``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import msgspec
import structlog
from aiohttp import web

from adapters.httpedge import edge_middleware, hide_server_software, http_credentials, report_rejection
from adapters.rest.consoleroutes import add_console_routes
from adapters.rest.openapi import MAX_WITNESS_BODY_BYTES, openapi_document
from adapters.rest.operations import add_operation_routes
from adapters.rest.portroutes import add_port_routes
from adapters.status import problem_json, status_of
from gateway.core.errors import (
    BadRequest,
    GatewayError,
    Internal,
    LimitExceeded,
    MethodNotAllowed,
    NotFound,
    Unavailable,
    UnsupportedMediaType,
)
from gateway.core.model import Caller
from gateway.exchange.inbox import MessageStatus
from gateway.exchange.pipeline import Inbound, Outcome, Pipeline
from gateway.features.aeo.recognition import Recognition
from gateway.features.release.portstream import PortStreams
from gateway.interfaces.config import Limits
from gateway.interfaces.protocols import InboxItem, RecipientState, StoredMessage
from gateway.ops.exchangelog import ExchangeLog
from gateway.ops.ledger import Ledger
from gateway.ops.operations import Operations
from gateway.ops.witnessing import WitnessService

ENVELOPE_HEADER = "Cgw-Envelope"
# The token endpoint takes one short form; 16 KiB is generous for an assertion with an x5c chain.
MAX_TOKEN_FORM_BYTES = 16 * 1024
# Ack bodies are a list of integers (max_ack_items) and nothing else.
MAX_ACK_BODY_BYTES = 64 * 1024

log = structlog.get_logger("gateway.rest")


@dataclass(frozen=True, slots=True)
class RestServices:
    pipeline: Pipeline
    ledger: Ledger
    limits: Limits
    ready: Callable[[], bool]
    operations: Operations | None = None  # readiness, /metrics and the dead-letter admin API
    aeo: Recognition | None = None  # AEO mutual recognition; None: /v1/aeo/* answers 503
    # Policy hot reload for an authenticated caller (gateway/ops/policyadmin.py): the ledger record of the reload.
    reload_policies: Callable[[Caller], Awaitable[dict[str, object]]] | None = None
    # Trust hot reload (anchors, CRL, registry; gateway/ops/trustadmin.py): the ledger record of the reload.
    reload_trust: Callable[[Caller], Awaitable[dict[str, object]]] | None = None
    ports: PortStreams | None = (
        None  # port release streams (gateway/features/release/portstream.py); None: /v1/ports/* answer 503
    )
    exchanges: ExchangeLog | None = None  # the audit console's ledger reads; None: /v1/audit/exchanges etc. answer 503
    witness: WitnessService | None = None  # the C2SP witness of the peers' ledgers (gateway/ops/witnessing.py)


SERVICES = web.AppKey("services", RestServices)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as exc:
        return await _refused(exc, request)
    except web.HTTPRequestEntityTooLarge:
        return await _refused(LimitExceeded("request body too large", field="body"), request)
    except web.HTTPMethodNotAllowed as exc:
        allowed = tuple(sorted(exc.allowed_methods))
        return await _refused(MethodNotAllowed(f"{exc.method} on {request.path}", allowed=allowed), request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        err = BadRequest(exc.reason, public=exc.reason)
        body = problem_json(err, instance=request.path)
        body.update(status=exc.status, title=exc.reason, code="HTTP_" + str(exc.status))
        return web.json_response(body, status=exc.status, content_type="application/problem+json")
    except Exception:
        log.exception("unhandled error in REST handler", path=request.path)
        return await _refused(Internal("unhandled"), request)


async def _refused(error: GatewayError, request: web.Request) -> web.Response:
    await report_rejection(request.config_dict[SERVICES].pipeline, error, request, adapter="rest")
    return _problem(error, request)


def _problem(error: GatewayError, request: web.Request) -> web.Response:
    headers: dict[str, str] = {}
    if status_of(error).http == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="customs-gateway"'
    if isinstance(error, MethodNotAllowed):
        headers["Allow"] = ", ".join(error.allowed)
    return web.json_response(
        problem_json(error, instance=request.path),
        status=status_of(error).http,
        content_type="application/problem+json",
        headers=headers,
    )


# -- edge helpers ------------------------------------------------------------------------------------------


def _json_response(body: dict[str, Any], *, status: int = 200) -> web.Response:
    """A JSON answer encoded by msgspec (compact, UTF-8): the submit path's answer costs ~1 us, not ~7."""
    return web.Response(body=_ENCODER.encode(body), status=status, content_type="application/json")


_ENCODER = msgspec.json.Encoder()


async def _caller(request: web.Request) -> Caller:
    return await request.app[SERVICES].pipeline.authenticate(http_credentials(request))


def _int_param(request: web.Request, name: str, default: int | None = None, *, minimum: int = 0) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise BadRequest(f"query parameter {name} is required", field=name)
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(f"query parameter {name} must be a non-negative integer", field=name)
    value = int(raw)
    if value < minimum:
        raise BadRequest(f"query parameter {name} must be >= {minimum}", field=name)
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _message_json(message: StoredMessage) -> dict[str, Any]:
    return {
        "message_id": message.message_id,
        "from": message.sender,
        "to": list(message.recipients),
        "type": message.type,
        "received": message.received_at.isoformat().replace("+00:00", "Z"),
        "ledger_index": message.leaf_index,
        "evidence_sha256": message.digest,
        "receipt": message.receipt.decode("ascii"),
    }


def _time(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat().replace("+00:00", "Z")


def _recipient_json(state: RecipientState) -> dict[str, Any]:
    """One recipient's entry; a remote one (issue 19) names the peer gateway its relay entry goes to, and the relay's
    delivery carries the peer's last error code and, once delivered, the peer's signed receipt (compact JWS)."""
    delivery = state.delivery
    return {
        "member": state.recipient,
        "peer": state.peer,
        "cursor": state.cursor,
        "state": state.disposition.value,
        "settled": _time(state.settled_at),
        "delivery": None
        if delivery is None
        else {
            "attempts": delivery.attempts,
            "outcome": delivery.outcome.value,
            "last_status": delivery.last_status,
            "updated": _time(delivery.updated_at),
            "next_attempt": _time(delivery.next_attempt_at),
        }
        | (
            {"last_code": delivery.code or None, "receipt": delivery.receipt.decode("ascii") or None}
            if state.peer is not None
            else {}
        ),
        "withdrawn_by": None
        if state.withdrawn_by is None
        else {"from": state.withdrawn_by[0], "message_id": state.withdrawn_by[1]},
    }


def status_json(status: MessageStatus) -> dict[str, Any]:
    """GET /v1/messages/{from}/{id}: the message, each recipient's state and the forwards (as many as
    ``gateway.exchange.inbox`` lets the reader see: all for the sender, home administration and auditors)."""
    return _message_json(status.message) | {
        "recipients": [_recipient_json(s) for s in status.recipients],
        "forwards": [
            {
                "from": f.sender,
                "message_id": f.message_id,
                "to": list(f.recipients),
                "received": _time(f.received_at),
                "ledger_index": f.leaf_index,
            }
            for f in status.forwards
        ],
    }


def _forward_of_json(original: StoredMessage) -> dict[str, Any]:
    """A forwarded item carries the original's signed evidence unchanged (it binds the same payload bytes)."""
    return {"forward_of": {"from": original.sender, "message_id": original.message_id, "envelope": original.jws}}


def _inbox_json(item: InboxItem) -> dict[str, Any]:
    message = item.message
    body: dict[str, Any] = {
        "cursor": item.cursor,
        "from": message.sender,
        "message_id": message.message_id,
        "type": message.type,
        "received": message.received_at.isoformat().replace("+00:00", "Z"),
        "envelope": message.jws,
        "payload": _b64(message.payload),
    } | (_forward_of_json(item.forward_of) if item.forward_of else {})
    if item.annotations:
        body["annotations"] = dict(item.annotations)
    return body


# -- handlers ----------------------------------------------------------------------------------------------


async def _inbound(request: web.Request, adapter: str) -> Inbound:
    services = request.app[SERVICES]
    unverified_jws = request.headers.get(ENVELOPE_HEADER)
    if not unverified_jws:
        raise BadRequest(f"the {ENVELOPE_HEADER} header (JWS compact) is required", field=ENVELOPE_HEADER)
    if request.content_length is not None and request.content_length > services.limits.max_body_bytes:
        raise LimitExceeded(f"body larger than {services.limits.max_body_bytes} bytes", field="body")
    payload = await request.read()
    credentials = http_credentials(request)
    return Inbound(adapter=adapter, credentials=credentials, unverified_jws=unverified_jws, payload=payload)


def _accepted(outcome: Outcome) -> web.Response:
    body = _message_json(outcome.message) | {"duplicate": outcome.duplicate}
    return _json_response(body, status=200 if outcome.duplicate else 201)


async def submit(request: web.Request) -> web.Response:
    return _accepted(await request.app[SERVICES].pipeline.submit(await _inbound(request, "rest")))


async def relay(request: web.Request) -> web.Response:
    """Rule 5: a peer gateway's relay."""
    return _accepted(await request.app[SERVICES].pipeline.relay(await _inbound(request, "relay-rest")))


async def forward(request: web.Request) -> web.Response:
    """The forwarder's own envelope (Cgw-Envelope) over the original payload; the body is not used."""
    services = request.app[SERVICES]
    unverified_jws = request.headers.get(ENVELOPE_HEADER)
    if not unverified_jws:
        raise BadRequest(f"the {ENVELOPE_HEADER} header (JWS compact) is required", field=ENVELOPE_HEADER)
    inbound = Inbound(adapter="rest", credentials=http_credentials(request), unverified_jws=unverified_jws, payload=b"")
    outcome = await services.pipeline.forward(inbound, request.match_info["sender"], request.match_info["message_id"])
    body = _message_json(outcome.message) | {"duplicate": outcome.duplicate}
    return _json_response(body, status=200 if outcome.duplicate else 201)


Reload = Callable[[Caller], Awaitable[dict[str, object]]]


def admin_reload(what: str, pick: Callable[[RestServices], Reload | None]) -> Handler:
    """A reload endpoint (policies, trust): authenticate, then the service decides (Cedar ``admin``) and reloads."""

    async def handler(request: web.Request) -> web.Response:
        caller = await _caller(request)
        reload = pick(request.app[SERVICES])
        if reload is None:
            raise Unavailable(f"{what} reload is not configured")
        return web.json_response(await reload(caller))

    return handler


async def message_status(request: web.Request) -> web.Response:
    caller = await _caller(request)
    status = await request.app[SERVICES].pipeline.status(
        caller, request.match_info["sender"], request.match_info["message_id"]
    )
    return _json_response(status_json(status))


async def inbox(request: web.Request) -> web.Response:
    caller = await _caller(request)
    services = request.app[SERVICES]
    after = _int_param(request, "after", 0)
    limit = _int_param(request, "limit", services.limits.max_pull_items, minimum=1)
    wait = _int_param(request, "wait", 0)
    items = await services.pipeline.pull(caller, after=after, limit=limit, wait=float(wait))
    next_after = items[-1].cursor if items else after
    return _json_response({"items": [_inbox_json(i) for i in items], "next_after": next_after})


async def ack(request: web.Request) -> web.Response:
    caller = await _caller(request)
    body = await _json_body(request, MAX_ACK_BODY_BYTES)
    cursors = body.get("cursors") if isinstance(body, dict) else None
    if not isinstance(cursors, list) or not cursors:
        raise BadRequest('body must be {"cursors": [int, ...]} with at least one cursor', field="cursors")
    for i, cursor in enumerate(cursors):
        if not isinstance(cursor, int) or isinstance(cursor, bool) or cursor < 1:
            raise BadRequest("cursor must be a positive integer", field=f"cursors[{i}]")
    count = await request.app[SERVICES].pipeline.ack(caller, cursors)
    return web.json_response({"acknowledged": count})


async def token(request: web.Request) -> web.Response:
    if request.content_type != "application/x-www-form-urlencoded":
        raise UnsupportedMediaType("use application/x-www-form-urlencoded", field="Content-Type")
    raw = await request.content.read(MAX_TOKEN_FORM_BYTES + 1)
    if len(raw) > MAX_TOKEN_FORM_BYTES:
        raise LimitExceeded(f"token request larger than {MAX_TOKEN_FORM_BYTES} bytes", field="body")
    try:
        form = parse_qs(raw.decode("ascii"), strict_parsing=True, max_num_fields=8)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("malformed form body", field="body") from exc
    expected = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    for name, value in expected.items():
        if form.get(name) != [value]:
            raise BadRequest(f"{name} must be {value}", field=name)
    assertion = form.get("client_assertion", [])
    if len(assertion) != 1:
        raise BadRequest("exactly one client_assertion is required", field="client_assertion")
    issued = await request.app[SERVICES].pipeline.issue_token(assertion[0], http_credentials(request).client_cert)
    return web.json_response(
        {"access_token": issued.token, "token_type": "Bearer", "expires_in": issued.expires_in},
        headers={"Cache-Control": "no-store"},
    )


async def _json_body(request: web.Request, limit: int) -> Any:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("use application/json", field="Content-Type")
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise LimitExceeded(f"body larger than {limit} bytes", field="body")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("body is not valid JSON", field="body") from exc


# -- audit (Cedar audit_read: auditors, the home administration) -------------------------------------------


async def _audit_reader(request: web.Request) -> Caller:
    """The authenticated caller, once Cedar allowed it to read the ledger (``audit_read``)."""
    caller = await _caller(request)
    await request.app[SERVICES].pipeline.authorize_audit(caller, adapter="rest")
    return caller


async def _auditor(request: web.Request) -> Ledger:
    await _audit_reader(request)
    return request.app[SERVICES].ledger


async def audit_checkpoint(request: web.Request) -> web.Response:
    ledger = await _auditor(request)
    # With witnesses: the newest cosigned checkpoint, never a smaller tree (``gateway.ops.ledger.Ledger.published``).
    head = await ledger.published()
    return web.Response(body=head.note, content_type="text/plain", charset="utf-8")


# -- witness (C2SP tlog-witness; unauthenticated by design: a checkpoint authenticates itself) ---------------


async def witness_add_checkpoint(request: web.Request) -> web.Response:
    witness = request.app[SERVICES].witness
    if witness is None:
        raise NotFound("this gateway runs no witness ([federation] is not configured)")
    body = await request.content.read(MAX_WITNESS_BODY_BYTES + 1)  # a larger body is refused by the parser
    answer = await witness.add_checkpoint(body)
    return web.Response(body=answer.body, status=answer.status, content_type=answer.content_type, charset="utf-8")


async def audit_key(request: web.Request) -> web.Response:
    ledger = await _auditor(request)
    body = {"origin": ledger.origin, "verifier_key": ledger.verifier_key, "verifier_keys": list(ledger.verifier_keys)}
    return web.json_response(body)


async def audit_inclusion(request: web.Request) -> web.Response:
    ledger = await _auditor(request)
    index = _int_param(request, "index")
    size = _int_param(request, "size", minimum=1)
    leaf, proof = await ledger.inclusion(index, size)
    return web.json_response({"index": index, "size": size, "leaf_hash": _b64(leaf), "proof": [_b64(p) for p in proof]})


async def audit_consistency(request: web.Request) -> web.Response:
    ledger = await _auditor(request)
    first = _int_param(request, "from", minimum=1)
    second = _int_param(request, "to", minimum=1)
    proof = await ledger.consistency(first, second)
    return web.json_response({"from": first, "to": second, "proof": [_b64(p) for p in proof]})


async def audit_entries(request: web.Request) -> web.Response:
    ledger = await _auditor(request)
    limits = request.app[SERVICES].limits
    start = _int_param(request, "start", 0)
    end = _int_param(request, "end", start + limits.max_ledger_range)
    if end < start or end - start > limits.max_ledger_range:
        raise LimitExceeded(f"at most {limits.max_ledger_range} entries per request", field="end")
    entries = await ledger.entries(start, end)
    return web.json_response({"entries": [{"index": e.index, "data": _b64(e.data)} for e in entries]})


# -- AEO mutual recognition --------------------------------------------------------------------------------


async def aeo_recognition(request: web.Request) -> web.Response:
    caller = await _caller(request)
    aeo = request.app[SERVICES].aeo
    if aeo is None:
        raise Unavailable("AEO recognition is not configured")
    operator = request.query.get("operator")
    if not operator:
        raise BadRequest("query parameter operator is required", field="operator")
    result = await aeo.lookup(caller.member, operator, request.query.get("admin"), request.query.get("date"))
    return web.json_response(result.record())


# -- operations --------------------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if services.operations is None:
        ready = services.ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)
    state = await services.operations.readiness()
    body = {"ready": state.ready, "components": state.components, "reasons": state.reasons}
    return web.json_response(body, status=200 if state.ready else 503)


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(request.app[SERVICES].limits))


def build_app(services: RestServices) -> web.Application:
    hide_server_software()
    app = web.Application(
        middlewares=[edge_middleware(services.limits), problem_middleware],
        client_max_size=services.limits.max_body_bytes,
        handler_args={
            "max_field_size": services.limits.max_header_bytes,
            "max_headers": services.limits.max_header_count,
        },
    )
    app[SERVICES] = services
    app.router.add_post("/v1/messages", submit)
    app.router.add_post("/v1/relay/messages", relay)
    app.router.add_get("/v1/messages/{sender}/{message_id}", message_status)
    app.router.add_post("/v1/messages/{sender}/{message_id}/forward", forward)
    app.router.add_post("/v1/admin/policies/reload", admin_reload("policy", lambda s: s.reload_policies))
    app.router.add_post("/v1/admin/trust/reload", admin_reload("trust", lambda s: s.reload_trust))
    app.router.add_get("/v1/inbox", inbox)
    app.router.add_post("/v1/inbox/ack", ack)
    app.router.add_post("/v1/token", token)
    app.router.add_get("/v1/audit/checkpoint", audit_checkpoint)
    app.router.add_get("/v1/audit/key", audit_key)
    app.router.add_get("/v1/audit/proof/inclusion", audit_inclusion)
    app.router.add_get("/v1/audit/proof/consistency", audit_consistency)
    app.router.add_get("/v1/audit/entries", audit_entries)
    app.router.add_post("/witness/add-checkpoint", witness_add_checkpoint)
    app.router.add_get("/v1/aeo/recognition", aeo_recognition)
    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    add_operation_routes(app, services.operations, caller=_caller)
    add_port_routes(app, services.ports, caller=_caller)
    add_console_routes(app, services.exchanges, reader=_audit_reader, render=_message_json)
    return app
