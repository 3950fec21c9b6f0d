"""What a gRPC call proves about its peer, and the shared services every servicer uses.

Rule 1: the TLS client certificate (verified by the TLS handshake against the federation anchor) travels to the
        pipeline as DER in ``Credentials.client_cert``, exactly as in REST; the pipeline decides who the caller is.
Rule 2: a bearer token (from REST ``/v1/token``) is read from the ``authorization: Bearer <token>`` metadata
        entry; exactly one such entry, or none.
Rule 3: the peer's IP address comes from grpc core's ``context.peer()`` (``ipv4:1.2.3.4:port``,
        ``ipv6:[::1]:port``); it proves nothing and only groups the rejection summaries.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from gateway.core.errors import BadRequest
from gateway.exchange.access import Credentials
from gateway.exchange.pipeline import Pipeline
from gateway.features.aeo.recognition import Recognition
from gateway.features.release.portstream import PortStreams
from gateway.interfaces.config import Limits
from gateway.ops.ledger import Ledger

# grpc core's auth-context property holding the peer's leaf certificate (PEM).
PEER_CERT_PROPERTY = "x509_pem_cert"
AUTHORIZATION_KEY = "authorization"


@dataclass(frozen=True, slots=True)
class GrpcServices:
    pipeline: Pipeline
    ledger: Ledger
    limits: Limits
    ready: Callable[[], bool]
    aeo: Recognition | None = None  # AEO mutual recognition (cgw.v1.AeoRecognition); None: UNAVAILABLE
    ports: PortStreams | None = None  # port release streams (cgw.v1.PortStream); None: UNAVAILABLE


def peer_address(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """Rule 3: the IP address of the peer, or None (a unix socket, an unknown form)."""
    scheme, _, rest = (context.peer() or "").partition(":")
    if scheme == "ipv4":
        return rest.rpartition(":")[0] or None
    if scheme == "ipv6":
        return rest.rpartition(":")[0].removeprefix("[").removesuffix("]") or None
    return None


def client_cert(context: grpc.aio.ServicerContext[Any, Any]) -> bytes | None:
    pem = list(context.auth_context().get(PEER_CERT_PROPERTY, ()))
    return ssl.PEM_cert_to_DER_cert(pem[0].decode("ascii")) if pem else None


def credentials(context: grpc.aio.ServicerContext[Any, Any]) -> Credentials:
    cert = client_cert(context)
    tokens = [value for key, value in (context.invocation_metadata() or ()) if key == AUTHORIZATION_KEY]
    if len(tokens) > 1:
        raise BadRequest("at most one authorization metadata entry", field=AUTHORIZATION_KEY)
    token: str | None = None
    if tokens:
        raw = tokens[0]
        scheme, _, value = (raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw).partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise BadRequest("authorization must be 'Bearer <token>'", field=AUTHORIZATION_KEY)
        token = value.strip()
    return Credentials(client_cert=cert, bearer_token=token, peer=peer_address(context))
