"""Port streams are rebuilt from the ledger (portstream Rule 6): an accepted release notice or gate-out that
never reached the port store (a crash between the durable accept and the apply, here: ports.db lost) is applied
at the next start, in ledger order, to the same stream, and the gate-out alert is not raised twice."""

from __future__ import annotations

import json
from pathlib import Path

from gateway import portsamples
from gateway.client import GatewayClient, MemberCredentials
from gateway.core.model import Tlp
from gateway.main import running_gateway
from gateway.samples import to_bytes
from gateway.settings import load_settings

A, B, C = portsamples.CONTAINERS


async def test_a_lost_port_store_is_rebuilt_from_the_ledger(federation: Path, tmp_path: Path) -> None:
    overrides = {"gateway.rest_port": 0, "gateway.grpc_port": 0, "gateway.data_dir": str(tmp_path / "data")}
    settings = load_settings(federation / "gateway.toml", overrides=overrides)
    async with (
        running_gateway(settings) as gateway,
        GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "CN-GACC")) as gacc,
        GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "PORT-NLRTM")) as port,
    ):
        for decision, version, containers in (("HOLD", 1, (A, B)), ("RELEASED", 3, (A,)), ("INSPECT", 2, (A,))):
            notice = to_bytes(portsamples.release_notice(decision, version, containers))
            await gacc.submit("release.notice.v1", ["PORT-NLRTM"], notice, schema="cgw.v1.ReleaseNotice", tlp=Tlp.GREEN)
        gate_out = to_bytes(portsamples.gate_out(B))
        await port.submit("port.gate-out.v1", ["CN-GACC"], gate_out, schema="cgw.v1.GateOut")
        before = (await port.port_notices("NLRTM"))["notices"], await port.port_snapshot("NLRTM")
    (tmp_path / "data" / "ports.db").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / "data" / f"ports.db{suffix}").unlink(missing_ok=True)

    async with (
        running_gateway(settings) as gateway,
        GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "PORT-NLRTM")) as port,
    ):
        after = (await port.port_notices("NLRTM"))["notices"], await port.port_snapshot("NLRTM")
        ledger = [json.loads(e.data) for e in await gateway.store.ledger_entries(0, await gateway.store.ledger_size())]
    assert after == before
    assert [e["seq"] for e in after[0]] == [1, 2, 3]
    assert sum(1 for e in ledger if e["event"] == "gate_out_alert") == 1  # deterministic id: not raised twice
    assert sum(1 for e in ledger if e["event"] == "port_update") == 8  # 4 at first, 4 re-applied at start-up
