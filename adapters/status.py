"""The ONE status table: each error kind's HTTP status, gRPC status code and SOAP fault code.

Rule 1: adapters never pick a status themselves; they look the error's ``kind`` up here.
Rule 2: the wire carries the stable ``code`` and the public message only; ``detail`` stays in logs and ledger.
Rule 3: the table is total over ``ErrorKind`` (a test checks it), so a new kind cannot fall through to a 500.

gRPC codes are given by name (``grpc.StatusCode[name]``) so this module stays free of the gRPC runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.core.errors import ErrorKind, GatewayError


@dataclass(frozen=True, slots=True)
class WireStatus:
    http: int
    title: str
    grpc: str
    soap11: str  # faultcode (Client / Server)
    soap12: str  # env:Code value (Sender / Receiver)


STATUS: dict[ErrorKind, WireStatus] = {
    ErrorKind.BAD_REQUEST: WireStatus(400, "Bad Request", "INVALID_ARGUMENT", "Client", "Sender"),
    ErrorKind.TOO_LARGE: WireStatus(413, "Content Too Large", "RESOURCE_EXHAUSTED", "Client", "Sender"),
    ErrorKind.UNSUPPORTED_MEDIA: WireStatus(415, "Unsupported Media Type", "INVALID_ARGUMENT", "Client", "Sender"),
    ErrorKind.METHOD_NOT_ALLOWED: WireStatus(405, "Method Not Allowed", "UNIMPLEMENTED", "Client", "Sender"),
    ErrorKind.REQUEST_TIMEOUT: WireStatus(408, "Request Timeout", "DEADLINE_EXCEEDED", "Client", "Sender"),
    ErrorKind.UNAUTHENTICATED: WireStatus(401, "Unauthorized", "UNAUTHENTICATED", "Client", "Sender"),
    ErrorKind.FORBIDDEN: WireStatus(403, "Forbidden", "PERMISSION_DENIED", "Client", "Sender"),
    ErrorKind.NOT_FOUND: WireStatus(404, "Not Found", "NOT_FOUND", "Client", "Sender"),
    ErrorKind.CONFLICT: WireStatus(409, "Conflict", "ALREADY_EXISTS", "Client", "Sender"),
    ErrorKind.INVALID: WireStatus(422, "Unprocessable Content", "INVALID_ARGUMENT", "Client", "Sender"),
    ErrorKind.OVERLOADED: WireStatus(429, "Too Many Requests", "RESOURCE_EXHAUSTED", "Server", "Receiver"),
    ErrorKind.UNAVAILABLE: WireStatus(503, "Service Unavailable", "UNAVAILABLE", "Server", "Receiver"),
    ErrorKind.INTERNAL: WireStatus(500, "Internal Server Error", "INTERNAL", "Server", "Receiver"),
}

PROBLEM_TYPE_BASE = "https://customs-gateway.dev/problems/"


def status_of(error: GatewayError) -> WireStatus:
    return STATUS[error.kind]


def problem_json(error: GatewayError, *, instance: str | None = None) -> dict[str, Any]:
    """RFC 9457 problem details with the stable ``code`` (and ``field`` when one is known)."""
    status = status_of(error)
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + error.code.lower().replace("_", "-"),
        "title": status.title,
        "status": status.http,
        "code": error.code,
        "detail": f"{error.public}: {error.detail}" if error.expose_detail and error.detail else error.public,
    }
    if error.field and error.kind is not ErrorKind.UNAUTHENTICATED:
        body["field"] = error.field
    if instance:
        body["instance"] = instance
    return body
