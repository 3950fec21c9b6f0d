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
import os
import re
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.app.auditor import verify_from_store
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, GatewayUnreachable, MemberCredentials
from gateway.demo.samples import release_notice, to_bytes
from gateway.infra.sqlite import SqliteStore
from tests.integration.webhook_receiver import WebhookReceiver, push_federation

CLI = [sys.executable, "-m", "gateway.app.cli"]
PORT = "PORT-NLRTM"
NOTICE = "release.notice.v1"
SCHEMA = "cgw.v1.ReleaseNotice"
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """One gateway process on a fixed port over a federation directory (restartable)."""

    def __init__(self, fed: Path) -> None:
        self.fed = fed
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        config = fed / "gateway.toml"
        text = re.sub(r"rest_port = \d+", f"rest_port = {self.port}", config.read_text())
        text = re.sub(r"grpc_port = \d+", "grpc_port = 0", text)
        text += "\n[delivery]\npoll_interval_seconds = 0.05\nbackoff_base_seconds = 0.05\nbackoff_max_seconds = 0.2\n"
        config.write_text(text)
        self.config = config
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self, crash_point: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "CGW_CRASH_POINT"}
        if crash_point:
            env["CGW_CRASH_POINT"] = crash_point
        self.starts += 1
        log = (self.fed / f"serve-{self.starts}.log").open("w")
        self.process = await asyncio.create_subprocess_exec(
            *CLI, "serve", "--config", str(self.config), stdout=log, stderr=asyncio.subprocess.STDOUT, env=env
        )
        log.close()
        tls = ssl.create_default_context(cafile=str(self.fed / "ca" / "root-ca.crt"))
        async with asyncio.timeout(START_TIMEOUT), aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(self.url + "/readyz", ssl=tls) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                if self.process.returncode is not None:
                    raise AssertionError(f"gateway exited: {self.log()}")
                await asyncio.sleep(0.1)

    def log(self) -> str:
        return (self.fed / f"serve-{self.starts}.log").read_text()

    async def killed(self) -> None:
        assert self.process is not None
        async with asyncio.timeout(15):
            assert await self.process.wait() == -signal.SIGKILL, self.log()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                assert await self.process.wait() == 0, self.log()

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
