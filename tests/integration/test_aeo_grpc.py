"""cgw.v1.AeoRecognition over real mTLS gRPC: the same answers and refusals as REST GET /v1/aeo/recognition."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app.main import Gateway
from gateway.client.rest import GatewayClientError
from gateway.demo.aeosamples import EU_PARTNER_LIST_CSV, RECOGNISED_EORI
from gateway.features.aeo import recognition
from gateway.infra.aeo_store import import_list_file
from tests.integration.conftest import ClientFactory
from tests.integration.grpc_fixtures import GrpcClientFactory, grpc_clients

__all__ = ["grpc_clients"]  # the fixture, re-exported for pytest


@pytest.fixture
def listed(gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    monkeypatch.setattr(recognition, "REFRESH_SECONDS", 0.0)  # the next request notices the import
    listing = tmp_path / "eu.csv"
    listing.write_text(EU_PARTNER_LIST_CSV)
    import_list_file(gateway.settings.data_dir, listing, issuer="EU")
    return gateway


@pytest.mark.parametrize(
    ("operator", "admin", "date"),
    [
        (f"EORI:{RECOGNISED_EORI}", "", ""),
        ("NLAEOF00001234", "CN", "2015-10-31"),
        ("DE111222333", "", ""),
        ("DE111222333", "EU", ""),
        ("FR99999", "", ""),
    ],
)
async def test_grpc_and_rest_give_the_same_answer(
    listed: Gateway,
    clients: ClientFactory,
    grpc_clients: GrpcClientFactory,
    operator: str,
    admin: str,
    date: str,
) -> None:
    rest = await clients("CN-GACC").aeo_recognition(operator, admin=admin, date=date)
    grpc = await grpc_clients("CN-GACC").aeo_recognition(operator, admin=admin, date=date)
    assert grpc == {key: ("" if value is None else value) for key, value in rest.items()}


async def test_grpc_refusals_carry_the_stable_codes(listed: Gateway, grpc_clients: GrpcClientFactory) -> None:
    with pytest.raises(GatewayClientError) as denied:
        await grpc_clients("CARRIER-COSCO").aeo_recognition(RECOGNISED_EORI)
    assert denied.value.code == "POLICY_DENIED"
    with pytest.raises(GatewayClientError) as bad:
        await grpc_clients("CN-GACC").aeo_recognition("not an id!")
    assert (bad.value.code, bad.value.field) == ("IDENTIFIER_INVALID", "operator")
    with pytest.raises(GatewayClientError) as missing:
        await grpc_clients("CN-GACC").aeo_recognition("")
    assert missing.value.code == "MALFORMED_REQUEST"
