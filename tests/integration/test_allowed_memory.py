"""The pipeline remembers allowed submissions (Pipeline._authorize) only for the policy set that allowed them."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.app.main import Gateway
from gateway.client.rest import GatewayClientError
from gateway.core.payloads import MESSAGE_TYPES
from gateway.core.policy import Authorizer, parse_bundle
from gateway.demo.samples import cargo_manifest, to_bytes
from tests.integration.conftest import ClientFactory
from tests.integration.test_programs_exchange import ledger

FORBID_MANIFESTS = """
@id("test-no-more-manifests")
forbid (principal, action == Cgw::Action::"submit", resource == Cgw::MessageType::"manifest.cargo.v1");
"""


def _stricter(current: Authorizer) -> Authorizer:
    bundle = current.compiled.bundle
    stricter = parse_bundle(bundle.text + FORBID_MANIFESTS, bundle.schema, bundle.data)
    return Authorizer(stricter, current._registry, current._message_types, programs=current.programs)


async def _submit(clients: ClientFactory, number: str) -> Any:
    carrier = clients("CARRIER-COSCO")
    schema = MESSAGE_TYPES["manifest.cargo.v1"].schema
    return await carrier.submit("manifest.cargo.v1", ["CN-GACC"], to_bytes(cargo_manifest(number)), schema=schema)


async def test_a_new_policy_set_decides_again(gateway: Gateway, clients: ClientFactory) -> None:
    first = await _submit(clients, "MEMO-1")
    second = await _submit(clients, "MEMO-2")  # the same requests: answered from the pipeline's memory
    assert first.status == second.status == 201
    gateway.state.swap(authorizer=_stricter(gateway.state.require_authorizer()))
    with pytest.raises(GatewayClientError) as caught:
        await _submit(clients, "MEMO-3")
    assert caught.value.code == "POLICY_DENIED"
    rejected = (await ledger(gateway))[-1]
    assert rejected["event"] == "rejected" and rejected["policy"] == ["test-no-more-manifests"]
