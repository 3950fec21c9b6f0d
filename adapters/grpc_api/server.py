"""The gRPC listener: ``grpc.aio`` server with mTLS, named limits, health, reflection and one interceptor.

Rule 1: TLS only, and the client certificate is REQUIRED at the handshake (grpc core can only require or not
        request one): it must chain to the federation anchor; the pipeline then maps it to a member (and checks
        the CRL). A bearer token in metadata is accepted on top (cert-bound tokens are checked against it).
        The client anchors can be replaced while the listener runs (:class:`ServerTrust`: the peer gateways'
        anchors of a reloaded federation directory); grpc asks for them before each new handshake.
Rule 2: every limit is named here with its reason; the message size follows ``Limits.max_body_bytes``.
Rule 3: one interceptor wraps every ``cgw.v1`` handler: it binds the structlog context (grpc.aio starts each
        call in an empty context) and turns ``GatewayError`` into the status from ``adapters.status`` with a
        ``google.rpc.ErrorInfo`` detail; anything else is a bug and leaves as INTERNAL without detail. It is the
        adapter's one error boundary: every refusal is reported to ``Pipeline.rejected`` (adapter ``grpc``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from adapters.grpc_api.aeo_service import AeoRecognitionService
from adapters.grpc_api.audit_service import AuditService
from adapters.grpc_api.edge import GrpcServices, client_cert, credentials, peer_address
from adapters.grpc_api.exchange_service import ExchangeService
from adapters.grpc_api.failure import abort
from adapters.grpc_api.port_service import PortStreamService
from gateway.core.errors import GatewayError, Internal
from gateway.exchange.access import Credentials
from gateway.exchange.pipeline import Pipeline
from gateway.wire.cgw.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
    port_pb2,
    port_pb2_grpc,
    recognition_pb2,
    recognition_pb2_grpc,
)

log = structlog.get_logger("gateway.grpc")

SERVICE_NAMES = (
    exchange_pb2.DESCRIPTOR.services_by_name["Exchange"].full_name,
    audit_pb2.DESCRIPTOR.services_by_name["Audit"].full_name,
    recognition_pb2.DESCRIPTOR.services_by_name["AeoRecognition"].full_name,
    port_pb2.DESCRIPTOR.services_by_name["PortStream"].full_name,
)
_OWN_METHOD_PREFIX = "/cgw.v1."
# Room for the envelope and protobuf framing beside a payload of max_body_bytes.
MESSAGE_OVERHEAD_BYTES = 64 * 1024
# HTTP/2 streams one connection may have open at once. Low on purpose: together with grpc core's own
# rapid-reset accounting it bounds the work a client can start by opening and resetting streams (CVE-2023-44487).
MAX_CONCURRENT_STREAMS = 100
# Largest response we send (an entries page of max_ledger_range leaves; an inbox item with its payload may be
# up to max_body_bytes + overhead when an operator raises that limit).
MAX_SEND_MESSAGE_BYTES = 8 * 1024 * 1024
# Idle connections are closed (memory per connection), and no connection lives forever (rebalancing, key reload).
MAX_CONNECTION_IDLE_MS = 5 * 60 * 1000
MAX_CONNECTION_AGE_MS = 60 * 60 * 1000
# Clients may not ping more often than this without data (ping floods).
MIN_PING_INTERVAL_MS = 10 * 1000
# The health service follows the gateway's readiness (trust list, CRL, policies, store) at this pace.
HEALTH_POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    key_pem: bytes
    chain_pem: bytes
    anchors_pem: bytes


def _configuration(tls: TlsMaterial) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration([(tls.key_pem, tls.chain_pem)], root_certificates=tls.anchors_pem)


class ServerTrust:
    """The listener's TLS material; :meth:`update` gives new client anchors to every handshake from the next
    connection on (``grpc.dynamic_ssl_server_credentials`` calls :meth:`_fetch` before each handshake).
    Connections already open keep the handshake they made."""

    def __init__(self, tls: TlsMaterial) -> None:
        self._tls = tls
        self._pending: TlsMaterial | None = None

    @property
    def anchors_pem(self) -> bytes:
        return self._tls.anchors_pem

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            _configuration(self._tls),
            self._fetch,  # type: ignore[arg-type]  # grpc's docstring: the fetcher returns None for "no change"
            require_client_authentication=True,
        )

    def update(self, anchors_pem: bytes) -> None:
        if anchors_pem != self._tls.anchors_pem:
            self._tls = dataclasses.replace(self._tls, anchors_pem=anchors_pem)
            self._pending = self._tls  # one assignment: grpc's thread reads either the old or the new

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        pending, self._pending = self._pending, None
        return None if pending is None else _configuration(pending)


def server_options(services: GrpcServices) -> list[tuple[str, int]]:
    limits = services.limits
    return [
        ("grpc.max_receive_message_length", limits.max_body_bytes + MESSAGE_OVERHEAD_BYTES),
        ("grpc.max_send_message_length", max(MAX_SEND_MESSAGE_BYTES, limits.max_body_bytes + MESSAGE_OVERHEAD_BYTES)),
        # Soft and hard metadata limits equal: between them grpc core refuses only some requests, at random.
        ("grpc.max_metadata_size", limits.max_header_bytes),
        ("grpc.absolute_max_metadata_size", limits.max_header_bytes),
        ("grpc.max_concurrent_streams", MAX_CONCURRENT_STREAMS),
        ("grpc.max_connection_idle_ms", MAX_CONNECTION_IDLE_MS),
        ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
        ("grpc.so_reuseport", 0),
    ]


Behavior = Callable[..., Any]  # grpc types handler behaviors loosely (sync or async, unary or streaming)


class ExchangeInterceptor(grpc.aio.ServerInterceptor):
    """Binds the log context and maps errors for every ``cgw.v1`` method (health and reflection pass through)."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(_OWN_METHOD_PREFIX):
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary(self._pipeline, method, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _stream(self._pipeline, method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler


def _bind(method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(adapter="grpc", rpc=method, peer=context.peer())


async def _fail(
    pipeline: Pipeline, context: grpc.aio.ServicerContext[Any, Any], method: str, exc: Exception
) -> NoReturn:
    """Report the refusal, then abort the call: a GatewayError with its own status, anything else (a bug) as
    INTERNAL without detail."""
    if isinstance(exc, GatewayError):
        error = exc
    else:
        log.exception("unhandled error in gRPC handler", rpc=method)
        error = Internal(type(exc).__name__)
    try:
        presented = credentials(context)
    except GatewayError:  # the authorization metadata itself was refused: the certificate and peer alone
        presented = Credentials(client_cert=client_cert(context), peer=peer_address(context))
    await pipeline.rejected(error, adapter="grpc", action=method, credentials=presented)
    await abort(context, error)


def _unary(pipeline: Pipeline, method: str, behavior: Behavior) -> Behavior:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        _bind(method, context)
        started = time.perf_counter()
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _fail(pipeline, context, method, exc)
        finally:
            log.debug("rpc", latency_ms=round((time.perf_counter() - started) * 1000, 3))

    return wrapped


def _stream(pipeline: Pipeline, method: str, behavior: Behavior) -> Behavior:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        _bind(method, context)
        try:
            async for response in behavior(request, context):
                yield response
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _fail(pipeline, context, method, exc)

    return wrapped


@dataclass(slots=True)
class GrpcListener:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    watcher: asyncio.Task[None]
    trust: ServerTrust

    async def stop(self, grace: float) -> None:
        self.watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.watcher
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def _set_health(servicer: health.aio.HealthServicer, ready: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("", *SERVICE_NAMES):
        await servicer.set(name, status)


async def _follow_readiness(servicer: health.aio.HealthServicer, ready: Callable[[], bool], current: bool) -> None:
    """SERVING while the gateway is ready, NOT_SERVING while it fails closed (health checks see it)."""
    while True:
        await asyncio.sleep(HEALTH_POLL_SECONDS)
        now = ready()
        if now != current:
            await _set_health(servicer, now)
            current = now


async def start_grpc(services: GrpcServices, host: str, port: int, tls: TlsMaterial) -> GrpcListener:
    """Bind and start; ``port`` 0 picks a free port (the bound one is returned). ``GrpcListener.trust`` takes
    new client anchors while it runs (Rule 1)."""
    server = grpc.aio.server(interceptors=[ExchangeInterceptor(services.pipeline)], options=server_options(services))
    exchange_pb2_grpc.add_ExchangeServicer_to_server(ExchangeService(services), server)
    audit_pb2_grpc.add_AuditServicer_to_server(AuditService(services), server)
    recognition_pb2_grpc.add_AeoRecognitionServicer_to_server(AeoRecognitionService(services), server)
    port_pb2_grpc.add_PortStreamServicer_to_server(PortStreamService(services), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    trust = ServerTrust(tls)
    bound = server.add_secure_port(f"{host}:{port}", trust.credentials())
    if bound == 0:
        raise OSError(f"gRPC: cannot bind {host}:{port}")
    ready = services.ready()
    await _set_health(health_servicer, ready)
    await server.start()
    watcher = asyncio.create_task(_follow_readiness(health_servicer, services.ready, ready), name="cgw-grpc-health")
    return GrpcListener(server=server, port=bound, health=health_servicer, watcher=watcher, trust=trust)
