"""The gRPC side of the one status table: every error kind -> a gRPC status with an ErrorInfo detail; and the
generated gRPC stubs (only for protos with a service, imports rewritten into gateway.wire)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from adapters.grpc_api.failure import ERROR_DOMAIN, grpc_code, rich_status
from adapters.grpc_api.server import SERVICE_NAMES
from adapters.status import STATUS
from gateway.core import errors
from gateway.core.errors import ErrorKind, GatewayError

REPO = Path(__file__).resolve().parents[2]


def _all_error_classes() -> list[type[GatewayError]]:
    found: list[type[GatewayError]] = []
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return [c for c in found if c.__module__ == errors.__name__]


def _details(status: grpc.Status) -> tuple[status_pb2.Status, error_details_pb2.ErrorInfo]:
    (key, value), *_ = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    assert isinstance(value, bytes)
    rich = status_pb2.Status.FromString(value)
    info = error_details_pb2.ErrorInfo()
    assert rich.details[0].Unpack(info)
    return rich, info


def test_every_kind_maps_to_a_grpc_status_code() -> None:
    assert set(STATUS) == set(ErrorKind)
    for kind, wire in STATUS.items():
        assert grpc.StatusCode[wire.grpc] is not grpc.StatusCode.OK, kind


@pytest.mark.parametrize("cls", _all_error_classes(), ids=lambda c: c.__name__)
def test_every_error_carries_its_stable_code(cls: type[GatewayError]) -> None:
    error = cls("the detail", field="payload.vessel.imo")
    status = rich_status(error)
    rich, info = _details(status)
    assert status.code is grpc_code(error)
    assert rich.code == status.code.value[0]
    assert rich.message == status.details
    assert info.reason == error.code
    assert info.domain == ERROR_DOMAIN
    if error.kind is ErrorKind.UNAUTHENTICATED:
        assert "field" not in info.metadata  # authentication failures never say which check failed
        assert "the detail" not in status.details
    else:
        assert info.metadata["field"] == "payload.vessel.imo"
    assert ("the detail" in status.details) is (error.expose_detail and error.kind is not ErrorKind.UNAUTHENTICATED)


def test_internal_errors_show_no_detail() -> None:
    status = rich_status(errors.Internal("KeyError: secret-ish"))
    assert status.code is grpc.StatusCode.INTERNAL
    assert "secret" not in status.details


def _gen_protos() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_protos_for_grpc", REPO / "scripts" / "gen_protos.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grpc_stubs_only_for_services_and_imports_rewritten(tmp_path: Path) -> None:
    written = {p.as_posix() for p in _gen_protos().generate(tmp_path)}
    stubs = {name for name in written if name.endswith("_pb2_grpc.py")}
    assert stubs == {
        "cgw/v1/exchange_pb2_grpc.py",
        "cgw/v1/audit_pb2_grpc.py",
        "cgw/v1/recognition_pb2_grpc.py",
        "cgw/v1/port_pb2_grpc.py",
        "cgw/v1/delivery_pb2_grpc.py",  # the push delivery service members run (the gateway is its client)
    }
    for name in stubs:
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert "from gateway.wire.cgw.v1 import" in text
        assert "\nfrom cgw." not in text
    assert SERVICE_NAMES == ("cgw.v1.Exchange", "cgw.v1.Audit", "cgw.v1.AeoRecognition", "cgw.v1.PortStream")
