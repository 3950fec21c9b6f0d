"""GatewayError -> gRPC status with rich details (``google.rpc.Status`` in ``grpc-status-details-bin``).

Rule 1: the status code comes from ``adapters.status`` (the ``grpc`` column); nothing here picks a code.
Rule 2: the message is the public text (plus the detail only when ``expose_detail`` says it describes the
        caller's own input); a ``google.rpc.ErrorInfo`` detail carries the stable ``code`` as its ``reason`` and
        the ``field`` path in its metadata (never for authentication failures: they must not say which check).
"""

from __future__ import annotations

from typing import Any, NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from adapters.status import status_of
from gateway.core.errors import ErrorKind, GatewayError

# ErrorInfo.domain: names the system that produced the reason codes (AIP-193).
ERROR_DOMAIN = "customs-gateway.dev"


def grpc_code(error: GatewayError) -> grpc.StatusCode:
    return grpc.StatusCode[status_of(error).grpc]


def public_message(error: GatewayError) -> str:
    return f"{error.public}: {error.detail}" if error.expose_detail and error.detail else error.public


def rich_status(error: GatewayError) -> grpc.Status:
    """The status to abort a call with: code, public message and an ErrorInfo detail with the stable code."""
    code = grpc_code(error)
    info = error_details_pb2.ErrorInfo(reason=error.code, domain=ERROR_DOMAIN)
    if error.field and error.kind is not ErrorKind.UNAUTHENTICATED:
        info.metadata["field"] = error.field
    detail = any_pb2.Any()
    detail.Pack(info)
    message = status_pb2.Status(code=code.value[0], message=public_message(error), details=[detail])
    return rpc_status.to_status(message)


async def abort(context: grpc.aio.ServicerContext[Any, Any], error: GatewayError) -> NoReturn:
    """End the call with ``error`` (raises; never returns)."""
    status = rich_status(error)
    await context.abort(status.code, status.details, status.trailing_metadata)
