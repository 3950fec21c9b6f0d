"""What an aiohttp request proves about its caller, shared by the HTTP adapters (REST and SOAP).

Rule 1: the TLS client certificate (already verified by the TLS layer against the federation anchors) and an
        optional ``Authorization: Bearer`` token are handed to the pipeline unjudged; the pipeline authenticates.
Rule 2: an error boundary reports every refusal to ``Pipeline.rejected`` with the credentials presented (the
        certificate and peer alone when the ``Authorization`` header was itself refused) and the operation.
"""

from __future__ import annotations

from aiohttp import web

from gateway.access import Credentials
from gateway.core.errors import BadRequest, GatewayError
from gateway.pipeline import Pipeline


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
    """Rule 2: the one call an HTTP error boundary makes; the pipeline decides how the refusal is recorded."""
    try:
        credentials = http_credentials(request)
    except GatewayError:
        credentials = Credentials(client_cert=_client_cert(request), peer=request.remote)
    resource = request.match_info.route.resource
    action = f"{request.method} {resource.canonical if resource is not None else request.path[:100]}"
    await pipeline.rejected(exc, adapter=adapter, action=action, credentials=credentials)
