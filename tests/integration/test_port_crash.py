"""Issue 17 item 7: a port decision is always ledgered. ``customs-gateway serve`` is SIGKILLed right after a
release notice or a gate-out reached its port's stream (``CGW_CRASH_POINT=after-port-apply``) and restarted, on
SQLite and on Redis: every stream entry has its ``port_update`` ledger event (one per message), and a refused
gate-out has its alert message and its ``gate_out_alert`` event. Before the fix, apply and ledger were separate
writes and start-up recovery skipped the applied message, so the stream kept entries the ledger never named."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.client.rest import GatewayUnreachable
from gateway.demo import releasesamples as portsamples
from gateway.demo.samples import to_bytes
from gateway.infra.redis_store import RedisStore
from gateway.infra.sqlite import SqliteStore
from gateway.interfaces.protocols import Store
from tests.integration.test_crash_safety import Served, audit_verify
from tests.redisenv import REDIS_PARAM, REDIS_URL

A, B = portsamples.CONTAINERS[:2]
NOTICE, NOTICE_SCHEMA = "release.notice.v1", "cgw.v1.ReleaseNotice"
GATE_OUT, GATE_OUT_SCHEMA = "port.gate-out.v1", "cgw.v1.GateOut"


@pytest.fixture(params=["sqlite", REDIS_PARAM])
async def served(request: pytest.FixtureRequest, federation: Path, tmp_path: Path) -> AsyncIterator[Served]:
    fed = tmp_path / "fed"
    shutil.copytree(federation, fed, ignore=shutil.ignore_patterns("data", "*.db*"))
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    if request.param == "redis":
        with (fed / "gateway.toml").open("a") as config:
            config.write(f'\n[store]\nbackend = "redis"\nredis_url = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n')
            config.write("allow_no_persistence = true\n")
    made = Served(fed)
    made.backend, made.prefix = request.param, prefix  # type: ignore[attr-defined]
    try:
        yield made
    finally:
        if made.process is not None and made.process.returncode is None:
            made.process.kill()
            await made.process.wait()
        if request.param == "redis":  # every key under the prefix, the port streams' too
            store = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
            try:
                await store.delete_all()
            finally:
                await store.close()


async def open_store(served: Served) -> Store:
    if served.backend == "redis":  # type: ignore[attr-defined]
        return await RedisStore.open(REDIS_URL, key_prefix=served.prefix, allow_no_persistence=True)  # type: ignore[attr-defined]
    return await SqliteStore.open(served.fed / "data" / "gateway.db")


async def ledger(served: Served) -> list[dict[str, Any]]:
    store = await open_store(served)
    try:
        return [json.loads(e.data) for e in await store.ledger_entries(0, await store.ledger_size())]
    finally:
        await store.close()


async def killed_while_sending(
    served: Served, crash_point: str, member: str, message_type: str, document: Any, schema: str
) -> None:
    await served.start(crash_point)
    async with served.client(member) as client:
        with pytest.raises(GatewayUnreachable):  # the process dies before it answers
            await client.submit(
                message_type, ["CN-GACC" if member != "CN-GACC" else "PORT-NLRTM"], to_bytes(document), schema=schema
            )
    await served.killed()


@pytest.mark.parametrize("crash_point", ["after-port-apply", "after-persist"])
async def test_killed_around_the_port_apply_leaves_no_unledgered_decision(served: Served, crash_point: str) -> None:
    """``after-persist``: accepted, not applied; start-up recovery (``gateway.features.release.portstream``:
    re-apply what the ledger names) applies it, ledgered."""
    notice = portsamples.release_notice("HOLD", 1, (A, B))
    await killed_while_sending(served, crash_point, "CN-GACC", NOTICE, notice, NOTICE_SCHEMA)
    await killed_while_sending(served, crash_point, "PORT-NLRTM", GATE_OUT, portsamples.gate_out(A), GATE_OUT_SCHEMA)
    await served.start()  # start-up recovery runs before /readyz
    async with served.client("PORT-NLRTM") as port, served.client("CN-GACC") as gacc:
        stream = (await port.port_notices("NLRTM"))["notices"]
        alerts = [i for i in (await gacc.pull())["items"] if i["type"] == "alert.gate-out.v1"]
    await served.stop()

    events = await ledger(served)
    accepted = {e["message_id"]: e["type"] for e in events if e["event"] == "accepted"}
    updates = [e for e in events if e["event"] == "port_update"]
    assert sorted(u["type"] for u in updates) == [GATE_OUT, NOTICE]  # one per message, each ledgered
    assert all(accepted.get(u["id"]) == u["type"] for u in updates)
    assert [int(e["seq"]) for e in stream] == [1, 2]
    assert sorted(seq for u in updates for seq in u["seqs"]) == [1, 2]  # every stream entry has its event
    [alert] = [e for e in events if e["event"] == "gate_out_alert"]  # the refused gate-out (A is on HOLD)
    assert alert["container"] == A and alert["status"] == "HOLD"
    assert [a["message_id"] for a in alerts] == [alert["message_id"]]
    await audit_verify(served.fed)
