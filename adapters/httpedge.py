"""What an aiohttp request proves about its caller, shared by the HTTP adapters (REST and SOAP).

Rule: the TLS client certificate (already verified by the TLS layer against the federation anchors) and an
optional ``Authorization: Bearer`` token are handed to the pipeline unjudged; the pipeline authenticates.
"""

from __future__ import annotations

from aiohttp import web

from gateway.access import Credentials
from gateway.core.errors import BadRequest


def http_credentials(request: web.Request) -> Credentials:
    cert: bytes | None = None
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is not None:
        cert = ssl_object.getpeercert(binary_form=True) or None
    token: str | None = None
    auth = request.headers.get("Authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise BadRequest("Authorization must be 'Bearer <token>'", field="Authorization")
        token = value.strip()
    return Credentials(client_cert=cert, bearer_token=token)
