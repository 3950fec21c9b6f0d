"""The HTTP edge shared by the HTTP adapters (REST and SOAP on one listener): what a request proves about its
caller, and the rules every request meets before an adapter reads it.

Rule 1: the TLS client certificate (already verified by the TLS layer against the federation anchors) and an
        optional ``Authorization: Bearer`` token are handed to the pipeline unjudged; the pipeline authenticates.
Rule 2: a request head must arrive within ``[limits] header_timeout_seconds`` of the connection opening or of
        its previous answer, else the connection closes (slowloris). aiohttp's keep-alive timer is that deadline
        (it runs while a connection waits for a complete head; ``main.py`` sets it): :func:`runner_options`.
Rule 3: a request body must arrive completely within ``[limits] body_timeout_seconds`` of its head: a read still
        waiting then raises :class:`~gateway.core.errors.RequestTimeout` (408, the status table) and the
        connection closes after the answer (:func:`edge_middleware`).
Rule 4: an HTTP/0.9 request line (no version) is refused: the connection closes without an answer (an HTTP/0.9
        answer has no status line or headers, and no caller of the gateway speaks it).
Rule 5: answers name no server software or version (aiohttp would say ``Python/3.x aiohttp/3.x``, even on the
        400s its parser gives before any application code runs): :func:`hide_server_software`.
Rule 6: an error boundary reports every refusal to ``Pipeline.rejected`` with the credentials presented (the
        certificate and peer alone when the ``Authorization`` header was itself refused) and the operation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import HttpVersion10, web, web_response
from aiohttp.typedefs import Middleware

from gateway.core.errors import BadRequest, GatewayError, RequestTimeout
from gateway.exchange.access import Credentials
from gateway.exchange.pipeline import Pipeline
from gateway.interfaces.config import Limits

# What the Server header says on every answer (a product name, no version).
SERVER_SOFTWARE = "customs-gateway"

log = structlog.get_logger("gateway.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _client_cert(request: web.Request) -> bytes | None:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is None:
        return None
    cert: bytes | None = ssl_object.getpeercert(binary_form=True) or None
    return cert


def http_credentials(request: web.Request) -> Credentials:
    token: str | None = None
    auth = request.headers.get("Authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise BadRequest("Authorization must be 'Bearer <token>'", field="Authorization")
        token = value.strip()
    return Credentials(client_cert=_client_cert(request), bearer_token=token, peer=request.remote)


async def report_rejection(pipeline: Pipeline, exc: GatewayError, request: web.Request, *, adapter: str) -> None:
    """Rule 6: the one call an HTTP error boundary makes; the pipeline decides how the refusal is recorded."""
    try:
        credentials = http_credentials(request)
    except GatewayError:
        credentials = Credentials(client_cert=_client_cert(request), peer=request.remote)
    resource = request.match_info.route.resource
    action = f"{request.method} {resource.canonical if resource is not None else request.path[:100]}"
    await pipeline.rejected(exc, adapter=adapter, action=action, credentials=credentials)


def runner_options(limits: Limits) -> dict[str, Any]:
    """``web.AppRunner`` keyword arguments for the listener (Rule 2)."""
    return {"keepalive_timeout": limits.header_timeout_seconds}


def edge_middleware(limits: Limits) -> Middleware:
    """Rules 3 and 4 for every request of the application (sub-applications included)."""
    body_seconds = limits.body_timeout_seconds

    @web.middleware
    async def http_edge(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.version < HttpVersion10:
            log.warning("http request refused", reason="HTTP/0.9 request line", peer=request.remote)
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=400)  # never written: the connection is closing
        body = request.content
        if body.is_eof():  # no body, or all of it came with the head
            return await handler(request)
        expired: list[RequestTimeout] = []

        def expire() -> None:
            if not body.is_eof():
                log.warning("http request refused", reason="body timeout", peer=request.remote, path=request.path)
                expired.append(
                    RequestTimeout(f"the request body did not arrive within {body_seconds:g} s", field="body")
                )
                body.set_exception(expired[0])  # the handler's read raises it: 408 through the status table

        deadline = asyncio.get_running_loop().call_later(body_seconds, expire)
        try:
            return await handler(request)
        finally:
            deadline.cancel()
            if expired:  # aiohttp reads the unread rest after the answer; on a timeout it stops and closes
                body.set_exception(TimeoutError())

    return http_edge


def hide_server_software() -> None:
    """Rule 5. aiohttp reads the Server value from this module attribute each time it writes a head (its parser's
    error answers included), and offers no other setting for it."""
    web_response.SERVER_SOFTWARE = SERVER_SOFTWARE  # type: ignore[attr-defined]  # not re-exported, but read here
