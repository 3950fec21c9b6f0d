"""Relay crash safety (issue 19) with two real ``customs-gateway serve`` processes from ``init --peers 2``: one of
them is SIGKILLed at a named point (``CGW_CRASH_POINT``, gateway/exchange/faults.py) while a message of
CARRIER-COSCO crosses from CN-GACC (A) to NL-DOUANE (B), then restarted. Afterwards, read from both stores:

- the message is in B's ledger exactly once (one ``accepted``) and in NL-DOUANE's inbox at B exactly once;
- A holds B's receipt for it, and it is the receipt B issued (B's duplicate answer carries the ORIGINAL one), and
  it verifies against B's signing anchor in the directory;
- A's ledger has exactly one ``relay_delivered`` for it (a retry after a lost answer adds no second one);
- ``audit verify`` passes for both ledgers.

Crash points used: A ``after-persist`` (accepted, the carrier's receipt not yet sent), A ``before-delivery`` (the
relay is about to go), A ``during-delivery`` (B answered, A's outcome not yet recorded), B ``after-persist`` (B
ledgered the relay, its answer not yet sent).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.app.auditor import verify_from_store
from gateway.app.federationtool import init_peers
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, GatewayUnreachable, MemberCredentials, Submitted, sign_message
from gateway.core.peerreceipt import verify_peer_receipt
from gateway.demo.federation import free_base_port
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.federationfiles import load_operator_key, read_directory
from gateway.infra.sqlite import SqliteStore
from gateway.interfaces.protocols import Disposition
from tests.integration.serveprocess import SETTLE_TIMEOUT, ServeProcess

A, B = "CN-GACC", "NL-DOUANE"
CARRIER = "CARRIER-COSCO"
MANIFEST = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"
# Fast polls, short backoffs and attempts enough that a peer down for a restart never dead-letters the relay.
DELIVERY = (
    "\n[delivery]\nmax_attempts = 200\npoll_interval_seconds = 0.05\n"
    "backoff_base_seconds = 0.05\nbackoff_max_seconds = 0.3\ntimeout_seconds = 3.0\n"
)


class Served(ServeProcess):
    """One gateway process of the pair, on the ports the signed directory names (restartable)."""

    def __init__(self, fed: Path, gateway_id: str) -> None:
        config = fed / "gateway.toml"
        config.write_text(config.read_text().replace("\n[federation]", DELIVERY + "\n[federation]", 1))
        self.settings = load_settings(config)
        super().__init__(fed, config, f"https://127.0.0.1:{self.settings.rest_port}", gateway_id)
        self.gateway_id = gateway_id

    def client(self, member: str) -> GatewayClient:
        credentials = MemberCredentials.from_federation(self.fed, member)
        return GatewayClient(self.url, credentials, gateway_member=self.gateway_id)


@dataclass
class Pair:
    out: Path
    a: Served
    b: Served


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Pair]:
    out = tmp_path / "peers"
    cn, nl = init_peers(out, base_port=free_base_port())
    pair = Pair(out, Served(cn.parent, A), Served(nl.parent, B))
    try:
        yield pair
    finally:
        for served in (pair.a, pair.b):
            await served.kill()


def _manifest() -> bytes:
    return to_bytes(cargo_manifest(f"COSU-MAN-{os.urandom(3).hex().upper()}"))


async def _ledger(store: SqliteStore) -> list[dict[str, Any]]:
    return [json.loads(e.data) for e in await store.ledger_entries(0, await store.ledger_size())]


async def _relay_delivered(served: Served, message_id: str) -> bool:
    """A recorded the relay's outcome as delivered (read over A's own status answer to the carrier)."""
    async with served.client(CARRIER) as carrier:
        status = await carrier.status(CARRIER, message_id)
    return any(r["member"] == B and r["state"] == Disposition.DELIVERED.value for r in status["recipients"])


async def _until_delivered(served: Served, message_id: str) -> None:
    async with asyncio.timeout(SETTLE_TIMEOUT):
        while True:
            if await _relay_delivered(served, message_id):
                return
            await asyncio.sleep(0.05)


async def _check_once_everywhere(pair: Pair, message_id: str) -> str:
    """The invariants of the module docstring, on the stopped gateways' stores; returns the HTTP status of B's
    answer A recorded the relay with (201 new, 200 B's duplicate answer)."""
    directory = read_directory(
        pair.out / "ops" / "directory.jws", load_operator_key(pair.out / "ops" / "operator.pub"), datetime.now(UTC)
    )
    a_store = await SqliteStore.open(pair.a.settings.data_dir / "gateway.db")
    b_store = await SqliteStore.open(pair.b.settings.data_dir / "gateway.db")
    try:
        at_b = await b_store.find_message(CARRIER, message_id)
        assert at_b is not None
        b_events = await _ledger(b_store)
        accepted = [e for e in b_events if e["event"] == "accepted" and e["message_id"] == message_id]
        assert len(accepted) == 1 and accepted[0]["relayed_by"] == A, accepted
        inbox = [i for i in await b_store.pull(B, 0, 100) if i.message.message_id == message_id]
        assert len(inbox) == 1

        [state] = [s for s in await a_store.recipient_states(CARRIER, message_id) if s.peer == B]
        assert state.disposition is Disposition.DELIVERED
        assert state.delivery is not None
        assert state.delivery.receipt == at_b.receipt  # B's original receipt, whatever answer A finally got
        claims = verify_peer_receipt(
            state.delivery.receipt.decode("ascii"),
            peer=B,
            signing_anchors=directory.gateways[B].signing_anchors,
            sender=CARRIER,
            message_id=message_id,
            evidence_sha256=at_b.digest,
            at=datetime.now(UTC),
        )
        assert claims["ledger_index"] == b_events.index(accepted[0])
        a_events = await _ledger(a_store)
        delivered = [e for e in a_events if e["event"] == "relay_delivered" and e["message_id"] == message_id]
        assert len(delivered) == 1 and delivered[0]["peer"] == B
    finally:
        await a_store.close()
        await b_store.close()
    for served in (pair.a, pair.b):
        report = await verify_from_store(served.settings)
        assert report.checkpoint_size == report.size > 0
    return state.delivery.last_status


def _relay_answers(served: Served, message_id: str) -> list[str]:
    """The decisions B's exchange log lines record for relays of ``message_id``, over every start."""
    decisions = []
    for number in range(1, served.starts + 1):
        for line in (served.fed / f"serve-{number}.log").read_text().splitlines():
            if '"adapter":"relay-rest"' in line and message_id in line:
                decisions.append(json.loads(line)["decision"])
    return decisions


async def _stored_at(served: Served, message_id: str) -> bool:
    """Whether the (stopped or killed) gateway's store holds the carrier's message."""
    store = await SqliteStore.open(served.settings.data_dir / "gateway.db")
    try:
        return await store.find_message(CARRIER, message_id) is not None
    finally:
        await store.close()


async def _submit(pair: Pair, jws: str, payload: bytes) -> Submitted:
    async with pair.a.client(CARRIER) as carrier:
        return await carrier.submit_signed(jws, payload)


def _sign(pair: Pair, payload: bytes) -> str:
    credentials = MemberCredentials.from_federation(pair.a.fed, CARRIER)
    return sign_message(credentials, MANIFEST, [B], payload, schema=SCHEMA)


async def test_a_killed_after_accepting_before_the_receipt(pair: Pair) -> None:
    await asyncio.gather(pair.a.start("after-persist"), pair.b.start())
    payload = _manifest()
    jws = _sign(pair, payload)
    with pytest.raises(GatewayUnreachable):
        await _submit(pair, jws, payload)  # A dies with the message durable, before answering
    await pair.a.killed()

    await pair.a.start()
    again = await _submit(pair, jws, payload)  # the carrier retries: A's durable original answers
    assert (again.status, again.duplicate) == (200, True)
    message_id = str(again.body["message_id"])
    await _until_delivered(pair.a, message_id)
    await asyncio.gather(pair.a.stop(), pair.b.stop())
    assert await _check_once_everywhere(pair, message_id) == "201"
    assert _relay_answers(pair.b, message_id) == ["accepted"]


async def test_a_killed_before_relaying(pair: Pair) -> None:
    await asyncio.gather(pair.a.start("before-delivery"), pair.b.start())
    payload = _manifest()
    jws = _sign(pair, payload)
    try:
        sent: Submitted | None = await _submit(pair, jws, payload)
    except GatewayUnreachable:  # the relay worker met the durable entry before the 201 left
        sent = None
    await pair.a.killed()
    async with pair.b.client(B) as officer:
        assert (await officer.pull())["items"] == []  # nothing reached B

    await pair.a.start()
    if sent is None:
        sent = await _submit(pair, jws, payload)
    message_id = str(sent.body["message_id"])
    await _until_delivered(pair.a, message_id)
    await asyncio.gather(pair.a.stop(), pair.b.stop())
    assert await _check_once_everywhere(pair, message_id) == "201"
    assert _relay_answers(pair.b, message_id) == ["accepted"]  # relayed once, after the restart


async def test_a_killed_after_b_answered_relays_again_and_keeps_the_original_receipt(pair: Pair) -> None:
    await asyncio.gather(pair.a.start("during-delivery"), pair.b.start())
    payload = _manifest()
    jws = _sign(pair, payload)
    try:
        sent: Submitted | None = await _submit(pair, jws, payload)
    except GatewayUnreachable:
        sent = None
    await pair.a.killed()  # B accepted it and answered; A died before recording the outcome
    async with pair.b.client(B) as officer:
        assert len((await officer.pull())["items"]) == 1

    await pair.a.start()
    if sent is None:
        sent = await _submit(pair, jws, payload)
    message_id = str(sent.body["message_id"])
    await _until_delivered(pair.a, message_id)
    await asyncio.gather(pair.a.stop(), pair.b.stop())
    assert await _check_once_everywhere(pair, message_id) == "200"
    assert _relay_answers(pair.b, message_id) == ["accepted", "duplicate"]  # the retry got B's original answer


async def test_b_killed_after_persisting_before_answering(pair: Pair) -> None:
    await asyncio.gather(pair.a.start(), pair.b.start("after-persist"))
    payload = _manifest()
    sent = await _submit(pair, _sign(pair, payload), payload)  # A answers at once; the relay follows
    assert sent.status == 201
    message_id = str(sent.body["message_id"])
    await pair.b.killed()  # B ledgered the relay and died before its answer left
    assert await _stored_at(pair.b, message_id)
    assert not await _relay_delivered(pair.a, message_id)

    await pair.b.start()  # A's next retry gets B's duplicate answer with the original receipt
    await _until_delivered(pair.a, message_id)
    await asyncio.gather(pair.a.stop(), pair.b.stop())
    assert await _check_once_everywhere(pair, message_id) == "200"
    assert _relay_answers(pair.b, message_id) == ["duplicate"]  # the first start logged nothing: it died first
