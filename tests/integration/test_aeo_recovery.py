"""A suspension accepted (durable, in the ledger) but lost before it reached the AEO store, e.g. by a crash
between the two writes, is re-applied from the ledger and the message store when the gateway starts again."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from gateway.app.main import running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.demo.aeosamples import EU_PARTNER_LIST_CSV, SUSPENDABLE_AEO, SUSPENDABLE_EORI, status_update
from gateway.infra.aeo_store import import_list_file


async def test_a_lost_status_update_is_recovered_at_start_up(federation: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = load_settings(
        federation / "gateway.toml",
        overrides={"gateway.rest_port": 0, "gateway.grpc_port": 0, "gateway.data_dir": str(data)},
    )
    listing = tmp_path / "eu.csv"
    listing.write_text(EU_PARTNER_LIST_CSV)
    import_list_file(data, listing, issuer="EU")
    update = status_update(SUSPENDABLE_AEO, "suspended", since=datetime.now(UTC).date(), eori=SUSPENDABLE_EORI)

    async with running_gateway(settings) as gateway:
        douane = GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "NL-DOUANE"))
        try:
            await douane.submit("aeo.status.v1", ["CN-GACC"], update, schema="cgw.v1.AeoStatusUpdate")
        finally:
            await douane.close()

    # The crash: the store never saw the update (the list's "active" row, nothing marked applied, no scan).
    import_list_file(data, listing, issuer="EU")
    with sqlite3.connect(data / "aeo.db") as conn:
        conn.execute("DELETE FROM applied")
        conn.execute("DELETE FROM meta")

    async with running_gateway(settings) as gateway:
        async with GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "CN-GACC")) as gacc:
            result = await gacc.aeo_recognition(SUSPENDABLE_EORI)
        assert gateway.recovery is not None
        # once only
        assert (await gateway.recovery.run())["aeo"] == 0
    assert result["reasons"] == ["suspended"]
