"""REST routes for operations: ``/metrics`` (Prometheus text) and the dead-letter admin API.

A translator only, like ``app.py``: it parses the query or body, calls ``gateway.ops.operations.Operations`` and
renders the result; errors are ``GatewayError`` and leave through ``app.py``'s problem middleware.

Rule 1: ``/metrics`` carries aggregates only (counts by type, decision, code, endpoint kind; depths per member);
        it needs no client certificate so a scraper inside the operator's network can read it.
Rule 2: the admin routes authenticate the caller like every other route and are then decided by Cedar
        (``admin`` action) in ``gateway.delivery.deadletters``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.core.errors import BadRequest, LimitExceeded, Unavailable, UnsupportedMediaType
from gateway.core.model import Caller
from gateway.delivery.deadletters import MAX_PAGE
from gateway.interfaces.protocols import DeliveryState
from gateway.ops.operations import Operations

# A redrive body is a list of at most MAX_PAGE integers.
MAX_REDRIVE_BODY_BYTES = 32 * 1024
_MEMBER_ID_MAX = 64


@dataclass(frozen=True, slots=True)
class _Routes:
    operations: Operations | None
    caller: Callable[[web.Request], Awaitable[Caller]]


ROUTES = web.AppKey("cgw-operations", _Routes)


def add_operation_routes(
    app: web.Application, operations: Operations | None, *, caller: Callable[[web.Request], Awaitable[Caller]]
) -> None:
    app[ROUTES] = _Routes(operations, caller)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/v1/admin/dead-letters", dead_letters)
    app.router.add_post("/v1/admin/dead-letters/redrive", redrive)


def _operations(request: web.Request) -> Operations:
    operations = request.app[ROUTES].operations
    if operations is None:
        raise Unavailable("operations are not configured in this process")
    return operations


def _int(request: web.Request, name: str, default: int, *, minimum: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 18:
        raise BadRequest(f"query parameter {name} must be a non-negative integer", field=name)
    value = int(raw)
    if value < minimum:
        raise BadRequest(f"query parameter {name} must be >= {minimum}", field=name)
    if value > maximum:
        raise LimitExceeded(f"query parameter {name} must be <= {maximum}", field=name)
    return value


def _state_json(state: DeliveryState) -> dict[str, Any]:
    return {
        "cursor": state.cursor,
        "recipient": state.recipient,
        "from": state.sender,
        "message_id": state.message_id,
        "attempts": state.attempts,
        "last_status": state.last_status,
        "updated": state.updated_at.isoformat().replace("+00:00", "Z"),
        # a relay entry (recipient ``relay:<peer>``, issue 19): the peer gateway and its last error code
        "peer": state.peer,
        "last_code": state.code or None,
    }


async def metrics(request: web.Request) -> web.Response:
    body, content_type = await _operations(request).metrics_text()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def dead_letters(request: web.Request) -> web.Response:
    operations = _operations(request)
    caller = await request.app[ROUTES].caller(request)
    recipient = request.query.get("recipient") or None
    if recipient is not None and len(recipient) > _MEMBER_ID_MAX:
        raise BadRequest("recipient is not a member id", field="recipient")
    after = _int(request, "after", 0, minimum=0, maximum=2**63 - 1)
    limit = _int(request, "limit", 100, minimum=1, maximum=MAX_PAGE)
    states = await operations.dead_letters.list(caller, recipient=recipient, after=after, limit=limit)
    next_after = states[-1].cursor if states else after
    return web.json_response({"items": [_state_json(s) for s in states], "next_after": next_after})


async def redrive(request: web.Request) -> web.Response:
    operations = _operations(request)
    caller = await request.app[ROUTES].caller(request)
    if request.content_type != "application/json":
        raise UnsupportedMediaType("use application/json", field="Content-Type")
    raw = await request.content.read(MAX_REDRIVE_BODY_BYTES + 1)
    if len(raw) > MAX_REDRIVE_BODY_BYTES:
        raise LimitExceeded(f"body larger than {MAX_REDRIVE_BODY_BYTES} bytes", field="body")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("body is not valid JSON", field="body") from exc
    cursors = body.get("cursors") if isinstance(body, dict) else None
    if not isinstance(cursors, list) or not cursors:
        raise BadRequest('body must be {"cursors": [int, ...]} with at least one cursor', field="cursors")
    if len(cursors) > MAX_PAGE:
        raise LimitExceeded(f"{len(cursors)} cursors > {MAX_PAGE}", field="cursors")
    for i, cursor in enumerate(cursors):
        if not isinstance(cursor, int) or isinstance(cursor, bool) or not 1 <= cursor < 2**63:
            raise BadRequest("cursor must be a positive integer", field=f"cursors[{i}]")
    count = await operations.dead_letters.redrive(caller, cursors)
    return web.json_response({"redriven": count})
