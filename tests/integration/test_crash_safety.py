"""Crash safety: ``customs-gateway serve`` is SIGKILLed at a named point (``CGW_CRASH_POINT``), restarted, and the
invariants are checked on what it left on disk and on the wire:

- every receipted message is stored, is in the ledger and is eventually delivered (pushed to its webhook);
- a push whose outcome was not recorded is pushed again with the SAME bytes (at-least-once, never altered);
- nothing acknowledged (delivered) is pushed again;
- ``customs-gateway audit verify`` passes on the ledger afterwards.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app.auditor import verify_from_store
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, GatewayUnreachable, MemberCredentials
from gateway.demo.samples import release_notice, to_bytes
from gateway.infra.sqlite import SqliteStore
from tests.integration.serveprocess import ServeProcess
from tests.integration.webhook_receiver import WebhookReceiver, push_federation

PORT = "PORT-NLRTM"
NOTICE = "release.notice.v1"
SCHEMA = "cgw.v1.ReleaseNotice"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served(ServeProcess):
    """One gateway process on a fixed port over a federation directory (restartable)."""

    def __init__(self, fed: Path) -> None:
        port = free_port()
        config = fed / "gateway.toml"
        text = re.sub(r"rest_port = \d+", f"rest_port = {port}", config.read_text())
        text = re.sub(r"grpc_port = \d+", "grpc_port = 0", text)
        text += "\n[delivery]\npoll_interval_seconds = 0.05\nbackoff_base_seconds = 0.05\nbackoff_max_seconds = 0.2\n"
        config.write_text(text)
        super().__init__(fed, config, f"https://127.0.0.1:{port}")
        self.port = port

    def client(self, member: str) -> GatewayClient:
        return GatewayClient(self.url, MemberCredentials.from_federation(self.fed, member), mtls=True)


@pytest.fixture
async def setup(federation: Path, tmp_path: Path) -> AsyncIterator[tuple[Served, WebhookReceiver]]:
    receiver = await WebhookReceiver(federation).start()
    served = Served(push_federation(federation, tmp_path / "fed", member=PORT, url=receiver.url))
    try:
        yield served, receiver
    finally:
        if served.process is not None and served.process.returncode is None:
            served.process.kill()
            await served.process.wait()
        await receiver.stop()


async def stored_state(fed: Path, sender: str, message_id: str) -> tuple[bool, list[dict[str, Any]], int]:
    """(message stored, ledger events, unacknowledged items of PORT) read offline from the stopped gateway."""
    store = await SqliteStore.open(fed / "data" / "gateway.db")
    try:
        message = await store.find_message(sender, message_id)
        size = await store.ledger_size()
        events = [json.loads(e.data) for e in await store.ledger_entries(0, size)]
        pending = len(await store.pull(PORT, 0, 100))
    finally:
        await store.close()
    return message is not None, events, pending


async def audit_verify(fed: Path) -> None:
    """What ``customs-gateway audit verify --config`` runs (in-process: no second interpreter start-up)."""
    report = await verify_from_store(load_settings(fed / "gateway.toml"))
    assert report.checkpoint_size == report.size > 0


def pushes_of(events: list[dict[str, Any]], message_id: str) -> list[str]:
    return [e["outcome"] for e in events if e["event"] == "delivered" and e.get("message_id") == message_id]


async def test_killed_after_persist_before_the_receipt(setup: tuple[Served, WebhookReceiver]) -> None:
    served, receiver = setup
    await served.start("after-persist")
    payload = to_bytes(release_notice())
    async with served.client("CN-GACC") as gacc:
        jws = gacc.sign(NOTICE, [PORT], payload, schema=SCHEMA)
        with pytest.raises(GatewayUnreachable):
            await gacc.submit_signed(jws, payload)  # the process dies before it answers
    await served.killed()

    await served.start()
    async with served.client("CN-GACC") as gacc:
        again = await gacc.submit_signed(jws, payload)  # the sender retries: the durable original answers
    assert (again.status, again.duplicate) == (200, True)
    message_id = again.body["message_id"]
    [pushed] = await receiver.wait_for(1)
    await served.stop()

    stored, events, pending = await stored_state(served.fed, "CN-GACC", message_id)
    assert stored
    [accepted] = [e for e in events if e["event"] == "accepted" and e["message_id"] == message_id]
    assert again.receipt["ledger_index"] == events.index(accepted)
    assert pushes_of(events, message_id) == ["delivered"]
    assert pending == 0
    assert json.loads(pushed.body)["data"]["envelope"] == jws
    await audit_verify(served.fed)


async def test_killed_after_the_receipt_before_delivery(setup: tuple[Served, WebhookReceiver]) -> None:
    served, receiver = setup
    await served.start("before-delivery")
    payload = to_bytes(release_notice())
    async with served.client("CN-GACC") as gacc:
        jws = gacc.sign(NOTICE, [PORT], payload, schema=SCHEMA)
        try:
            sent = await gacc.submit_signed(jws, payload)  # receipted, then the push worker dies before pushing
        except GatewayUnreachable:  # the worker (polling every 50 ms) met the durable item before the 201 left
            sent = None
    assert sent is None or sent.status == 201
    await served.killed()
    assert receiver.received == []

    await served.start()
    await receiver.wait_for(1)
    if sent is None:  # the sender retries, as after any lost answer: the durable original answers
        async with served.client("CN-GACC") as gacc:
            sent = await gacc.submit_signed(jws, payload)
        assert (sent.status, sent.duplicate) == (200, True)
    await served.stop()

    message_id = sent.body["message_id"]
    stored, events, pending = await stored_state(served.fed, "CN-GACC", message_id)
    assert stored
    assert any(e["event"] == "accepted" and e["message_id"] == message_id for e in events)
    assert pushes_of(events, message_id) == ["delivered"]
    assert (len(receiver.received), pending) == (1, 0)
    await audit_verify(served.fed)


async def test_killed_during_delivery_repushes_the_same_bytes_once(setup: tuple[Served, WebhookReceiver]) -> None:
    served, receiver = setup
    await served.start("during-delivery")
    async with served.client("CN-GACC") as gacc:
        sent = await gacc.submit(NOTICE, [PORT], to_bytes(release_notice()), schema=SCHEMA)
    assert sent.status == 201
    await served.killed()  # the webhook got it; the gateway died before recording the outcome
    assert len(receiver.received) == 1

    await served.start()
    first, second = await receiver.wait_for(2)
    assert (first.body, first.signature) == (second.body, second.signature)  # at-least-once, byte-identical

    # recorded now: it is never pushed again (the next message is the next push)
    async with served.client("CN-GACC") as gacc:
        later = await gacc.submit(NOTICE, [PORT], to_bytes(release_notice()), schema=SCHEMA)
    await receiver.wait_for(3)
    await asyncio.sleep(0.3)
    await served.stop()
    assert len(receiver.received) == 3
    assert json.loads(receiver.received[2].body)["subject"] == later.body["message_id"]

    message_id = sent.body["message_id"]
    stored, events, pending = await stored_state(served.fed, "CN-GACC", message_id)
    assert stored
    assert pushes_of(events, message_id) == ["delivered"]
    assert pending == 0
    await audit_verify(served.fed)
