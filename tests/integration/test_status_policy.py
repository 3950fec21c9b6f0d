"""Status reads are Cedar ``read_status`` decisions: a deployment's own policies widen or narrow who may read a
message's status, and every denial stays NOT_FOUND (a status read never reveals that a message exists)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.interfaces.config import default_policies_dir

MANIFEST = "manifest.cargo.v1"
# Loaded after the baseline (file-name order); neither member nor type is one the policy test cases read status for.
EXTRA_POLICIES = """
@id("port-reads-manifest-status")
permit (
  principal == Cgw::Member::"PORT-NLRTM",
  action == Cgw::Action::"read_status",
  resource == Cgw::MessageType::"manifest.cargo.v1"
);

@id("cosco-reads-no-status")
forbid (principal == Cgw::Member::"CARRIER-COSCO", action == Cgw::Action::"read_status", resource);
"""


@pytest.fixture
async def gateway(federation: Path, tmp_path: Path) -> AsyncIterator[Gateway]:
    policies = tmp_path / "policies"
    shutil.copytree(default_policies_dir(), policies)
    (policies / "zz-status.cedar").write_text(EXTRA_POLICIES)
    settings = load_settings(
        federation / "gateway.toml",
        overrides={
            "gateway.rest_port": 0,
            "gateway.data_dir": str(tmp_path / "data"),
            "gateway.policies_dir": str(policies),
        },
    )
    async with running_gateway(settings) as running:
        yield running


async def test_status_follows_the_deployed_read_status_policies(gateway: Gateway, federation: Path) -> None:
    def client(member: str) -> GatewayClient:
        return GatewayClient(gateway.url, MemberCredentials.from_federation(federation, member))

    async with client("CARRIER-COSCO") as carrier, client("PORT-NLRTM") as port, client("CN-GACC") as gacc:
        sent = await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema="cgw.v1.CargoManifest")
        message_id = sent.body["message_id"]
        # the recipient still reads it (baseline); a non-party reads it because a policy permits it
        assert (await gacc.status("CARRIER-COSCO", message_id))["receipt"] == sent.body["receipt"]
        assert (await port.status("CARRIER-COSCO", message_id))["message_id"] == message_id
        # the sender is forbidden by policy: NOT_FOUND, exactly as for a message that does not exist
        with pytest.raises(GatewayClientError) as denied:
            await carrier.status("CARRIER-COSCO", message_id)
        with pytest.raises(GatewayClientError) as missing:
            await gacc.status("CARRIER-COSCO", "7c9e6679-7425-40de-944b-e07fc1f90ae7")
        assert denied.value.code == missing.value.code == "NOT_FOUND"
        assert denied.value.status == missing.value.status == 404
