"""Parity: the same signed message over REST and over gRPC gets the same decision, the same receipt fields and a
ledger leaf of the same shape; a rejection gets the same stable code (and field path) on both transports.

Two gateways of the same federation with fresh stores, so ledger positions line up: A is fed over REST, B over
gRPC, each with byte-identical submissions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.client.grpc_client import GrpcGatewayClient
from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials, sign_message
from gateway.demo.samples import cargo_manifest, to_bytes

MANIFEST = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"
# What legitimately differs between two gateways receiving the same bytes: when, and over which adapter.
TRANSPORT_OR_TIME = {"at", "adapter", "received", "received_at", "iat"}


@pytest.fixture
async def second_gateway(federation: Path, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = load_settings(
        federation / "gateway.toml",
        overrides={"gateway.rest_port": 0, "gateway.grpc_port": 0, "gateway.data_dir": str(tmp_path / "data-b")},
    )
    async with running_gateway(settings) as running:
        yield running


async def _events(gateway: Gateway) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    return [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]


def _without(record: dict[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in keys}


async def test_same_message_same_decision_receipt_and_leaf(
    gateway: Gateway, second_gateway: Gateway, federation: Path
) -> None:
    credentials = MemberCredentials.from_federation(federation, "CARRIER-COSCO")
    payload = to_bytes(cargo_manifest())
    jws = sign_message(credentials, MANIFEST, ["CN-GACC"], payload, schema=SCHEMA, created=datetime.now(UTC))
    async with (
        GatewayClient(gateway.url, credentials) as rest,
        GrpcGatewayClient(second_gateway.grpc_target or "", credentials) as grpc_client,
    ):
        over_rest = await rest.submit_signed(jws, payload)
        over_grpc = await grpc_client.submit_signed(jws, payload)
    assert over_rest.duplicate is over_grpc.duplicate is False
    assert over_rest.receipt["status"] == over_grpc.receipt["status"] == "accepted"
    assert over_rest.receipt.keys() == over_grpc.receipt.keys()
    assert _without(over_rest.receipt, TRANSPORT_OR_TIME) == _without(over_grpc.receipt, TRANSPORT_OR_TIME)
    assert _without(over_rest.body, {"received", "receipt"}) == _without(over_grpc.body, {"received", "receipt"})

    leaf_rest = (await _events(gateway))[over_rest.receipt["ledger_index"]]
    leaf_grpc = (await _events(second_gateway))[over_grpc.receipt["ledger_index"]]
    assert leaf_rest.keys() == leaf_grpc.keys()
    assert (leaf_rest["adapter"], leaf_grpc["adapter"]) == ("rest", "grpc")
    assert _without(leaf_rest, TRANSPORT_OR_TIME) == _without(leaf_grpc, TRANSPORT_OR_TIME)


@pytest.mark.parametrize(
    ("case", "code"),
    [("tampered", "PAYLOAD_DIGEST_MISMATCH"), ("check-digit", "IDENTIFIER_INVALID"), ("policy", "POLICY_DENIED")],
)
async def test_rejection_has_the_same_code_on_both(gateway: Gateway, federation: Path, case: str, code: str) -> None:
    member = "NL-DOUANE" if case == "policy" else "CARRIER-COSCO"
    credentials = MemberCredentials.from_federation(federation, member)
    container = "MSKU9070324" if case == "check-digit" else "MSKU9070323"
    payload = to_bytes(cargo_manifest(container=container))
    # NL-DOUANE may not send a manifest to a port: the policy refuses it on both transports.
    to = ["PORT-NLRTM"] if case == "policy" else ["CN-GACC"]
    jws = sign_message(credentials, MANIFEST, to, payload, schema=SCHEMA)
    sent = payload.replace(b"MSKU", b"MSKV") if case == "tampered" else payload
    errors: list[GatewayClientError] = []
    async with (
        GatewayClient(gateway.url, credentials) as rest,
        GrpcGatewayClient(gateway.grpc_target or "", credentials) as grpc_client,
    ):
        for client in (rest, grpc_client):
            with pytest.raises(GatewayClientError) as raised:
                await client.submit_signed(jws, sent)
            errors.append(raised.value)
    assert errors[0].code == errors[1].code == code
    assert errors[0].field == errors[1].field
    rejected = [e for e in await _events(gateway) if e["event"] == "rejected"]
    assert [(e["adapter"], e["code"]) for e in rejected[-2:]] == [("rest", code), ("grpc", code)]
