"""The port streams of an earlier version (their own ``<data_dir>/ports.db``) are imported into ``gateway.db`` at the
first start (once, in one transaction: ``gateway.infra.sqlite_ports``): the same stream and snapshot, nothing applied or
alerted twice, and the old file renamed ``ports.db.imported``. (A crash between the durable accept and the apply is
re-applied at start-up by ``gateway.features.release.portstream``'s recovery: tests/integration/test_port_crash.py.)"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from gateway.app.main import running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.core.model import Tlp
from gateway.demo import releasesamples as portsamples
from gateway.demo.samples import to_bytes

A, B, C = portsamples.CONTAINERS


async def test_an_old_ports_db_is_imported_once(federation: Path, tmp_path: Path) -> None:
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
    data = tmp_path / "data"
    conn = sqlite3.connect(data / "gateway.db")  # back to the layout before schema v5: the port tables apart
    with conn:
        conn.execute("ATTACH DATABASE ? AS old", (str(data / "ports.db"),))
        for table in ("port_stream", "port_standings", "port_meta", "port_applied"):
            conn.execute(f"CREATE TABLE old.{table} AS SELECT * FROM main.{table}")
            conn.execute(f"DELETE FROM main.{table}")
    conn.close()

    async with (
        running_gateway(settings) as gateway,
        GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "PORT-NLRTM")) as port,
    ):
        after = (await port.port_notices("NLRTM"))["notices"], await port.port_snapshot("NLRTM")
        ledger = [json.loads(e.data) for e in await gateway.store.ledger_entries(0, await gateway.store.ledger_size())]
    assert after == before
    assert [e["seq"] for e in after[0]] == [1, 2, 3]
    assert sum(1 for e in ledger if e["event"] == "gate_out_alert") == 1
    assert sum(1 for e in ledger if e["event"] == "port_update") == 4  # imported as applied: none re-applied
    assert not (data / "ports.db").exists() and (data / "ports.db.imported").exists()
