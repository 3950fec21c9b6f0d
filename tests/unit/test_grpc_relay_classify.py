"""The gRPC relay judges a peer's refusal as the REST relay would (adapters/grpc_api/relay.py Rule 4): the peer's
status is encoded by the real gRPC error boundary (``adapters.grpc_api.failure.rich_status``) for every error
class the gateway has, and the retry decision must equal the one over REST for that class's HTTP status."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

import gateway.app.main  # noqa: F401 - the composition root loads every module that defines an error class
from adapters.grpc_api.failure import rich_status
from adapters.grpc_api.relay import classify
from adapters.status import status_of
from gateway.core.errors import GatewayError, LimitExceeded, Overloaded
from gateway.core.peerreceipt import retryable_status


def _all(cls: type[GatewayError]) -> Iterator[type[GatewayError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all(sub)


def _refusal(error: GatewayError) -> grpc.aio.AioRpcError:
    status = rich_status(error)
    return grpc.aio.AioRpcError(
        status.code, grpc.aio.Metadata(), grpc.aio.Metadata(*status.trailing_metadata), status.details
    )


@pytest.mark.parametrize("cls", sorted(set(_all(GatewayError)), key=lambda c: c.__name__))
def test_every_refusal_is_retried_exactly_when_rest_would_retry_it(cls: type[GatewayError]) -> None:
    error = cls.__new__(cls)  # some subclasses take other arguments; the base's are enough here
    GatewayError.__init__(error, "refused")
    attempt = classify(_refusal(error))
    assert attempt.code == error.code
    assert attempt.retryable is retryable_status(status_of(error).http)
    assert not attempt.delivered and not attempt.receipt


def test_the_same_grpc_code_is_told_apart_by_the_stable_code() -> None:
    """RESOURCE_EXHAUSTED is both a too-large request (final, 413) and an overloaded peer (retry, 429)."""
    too_large, overloaded = classify(_refusal(LimitExceeded("x"))), classify(_refusal(Overloaded("x")))
    assert too_large.status == overloaded.status == "RESOURCE_EXHAUSTED"
    assert (too_large.retryable, overloaded.retryable) == (False, True)


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (grpc.StatusCode.UNAVAILABLE, True),  # no gateway answered: connection or TLS failure
        (grpc.StatusCode.DEADLINE_EXCEEDED, True),
        (grpc.StatusCode.INTERNAL, True),
        (grpc.StatusCode.PERMISSION_DENIED, False),
        (grpc.StatusCode.UNIMPLEMENTED, False),  # a peer without Exchange.Relay
    ],
)
def test_without_the_peers_error_info_the_grpc_code_decides(code: grpc.StatusCode, retryable: bool) -> None:
    attempt = classify(grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), "no details"))
    assert (attempt.retryable, attempt.code, attempt.status) == (retryable, "", code.name)
