"""The audit console (issue 20): static files under ``/console`` and its read-only ledger queries.

A translator only, like ``app.py``: it parses the query, authorises the caller as a ledger reader (Cedar
``audit_read``: auditors and the home administration) and renders what ``gateway.ops.exchangelog`` found.

Rule 1: the console is plain HTML, CSS and JavaScript modules shipped as package data (``adapters/rest/console``):
        no build step, no CDN, nothing fetched from elsewhere. The files hold no data, so they are served to
        anyone who reaches the listener; every datum comes from an authenticated JSON endpoint.
Rule 2: every console response carries a strict Content-Security-Policy (``default-src 'self'``, no inline
        script or style, no framing), ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``.
Rule 3: only the files named in :data:`FILES` are served (no path from the request reaches the file system).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import web

from gateway.core.errors import BadRequest, LimitExceeded, Unavailable
from gateway.core.exchanges import parse_bucket, parse_query, parse_time
from gateway.core.model import Caller
from gateway.interfaces.protocols import StoredMessage
from gateway.ops.exchangelog import MAX_HITS, ExchangeLog

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
FILES = {
    "index.html": "text/html",
    "console.css": "text/css",
    "console.js": "text/javascript",
    "api.js": "text/javascript",
    "merkle.js": "text/javascript",
    "views.js": "text/javascript",
    "chart.js": "text/javascript",
}
_DIGITS_MAX = 18


@dataclass(frozen=True, slots=True)
class _Routes:
    exchanges: ExchangeLog | None
    reader: Callable[[web.Request], Awaitable[Caller]]  # authenticates and authorises (audit_read), or raises
    render: Callable[[StoredMessage], dict[str, Any]]


ROUTES = web.AppKey("cgw-console-routes", _Routes)


def add_console_routes(
    app: web.Application,
    exchanges: ExchangeLog | None,
    *,
    reader: Callable[[web.Request], Awaitable[Caller]],
    render: Callable[[StoredMessage], dict[str, Any]],
) -> None:
    app[ROUTES] = _Routes(exchanges, reader, render)
    app.router.add_get("/console", console_root)
    app.router.add_get("/console/", console_file)
    app.router.add_get("/console/{name}", console_file)
    app.router.add_get("/v1/audit/exchanges", audit_exchanges)
    app.router.add_get("/v1/audit/story/{sender}/{message_id}", audit_story)
    app.router.add_get("/v1/audit/rejections", audit_rejections)


def _file(name: str) -> bytes:
    return resources.files("adapters.rest").joinpath("console", name).read_bytes()


async def console_root(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect("/console/", headers=SECURITY_HEADERS)


async def console_file(request: web.Request) -> web.Response:
    name = request.match_info.get("name") or "index.html"
    content_type = FILES.get(name)
    if content_type is None:
        raise web.HTTPNotFound(headers=SECURITY_HEADERS)
    return web.Response(body=_file(name), content_type=content_type, charset="utf-8", headers=SECURITY_HEADERS)


async def _reader(request: web.Request) -> ExchangeLog:
    routes = request.app[ROUTES]
    await routes.reader(request)
    if routes.exchanges is None:
        raise Unavailable("the exchange log is not configured")
    return routes.exchanges


def _number(request: web.Request, name: str, default: int | None, *, minimum: int, maximum: int) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > _DIGITS_MAX:
        raise BadRequest(f"query parameter {name} must be a non-negative integer", field=name)
    value = int(raw)
    if value < minimum:
        raise BadRequest(f"query parameter {name} must be >= {minimum}", field=name)
    if value > maximum:
        raise LimitExceeded(f"query parameter {name} must be <= {maximum}", field=name)
    return value


async def audit_exchanges(request: web.Request) -> web.Response:
    exchanges = await _reader(request)
    query = parse_query(request.query)
    before = _number(request, "before", None, minimum=0, maximum=2**63 - 1)
    limit = _number(request, "limit", 50, minimum=1, maximum=MAX_HITS) or 50
    return web.json_response(await exchanges.search(query, before=before, limit=limit))


async def audit_story(request: web.Request) -> web.Response:
    exchanges = await _reader(request)
    story = await exchanges.story(request.match_info["sender"], request.match_info["message_id"])
    return web.json_response(
        {
            "message": request.app[ROUTES].render(story.message),
            "steps": story.steps,
            "scanned_to": story.scanned_to,
            "complete": story.complete,
        }
    )


async def audit_rejections(request: web.Request) -> web.Response:
    exchanges = await _reader(request)
    since_raw, until_raw = request.query.get("since", ""), request.query.get("until", "")
    since = parse_time(since_raw, "since") if since_raw else None
    until = parse_time(until_raw, "until") if until_raw else None
    if since and until and until <= since:
        raise BadRequest("until must be after since", field="until")
    bucket = parse_bucket(request.query.get("bucket"), 3600)
    return web.json_response(await exchanges.rejections(since, until, bucket))
