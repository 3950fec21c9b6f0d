"""Two ``customs-gateway serve`` processes on ONE Redis: shared inboxes, duplicates, replays and ledger.

The machine's Redis (127.0.0.1:6379) runs without persistence, so these configs set ``allow_no_persistence``;
each run uses its own key prefix and deletes it afterwards.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials
from gateway.core import tokens
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.redis_store import RedisStore
from tests.redisenv import REDIS_URL

pytestmark = pytest.mark.redis

CLI = [sys.executable, "-m", "gateway.app.cli"]
MANIFEST = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"


@dataclass
class Pair:
    federation: Path
    prefix: str
    urls: tuple[str, str]


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([*CLI, "serve", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT)


def _wait_ready(url: str, ca: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", context=context, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gateway did not start: {log.read_text()}") from None
            time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Process = tuple[subprocess.Popen[bytes], Path, str]  # the process, its log, its URL


def start_processes(directory: Path, prefix: str, processes: list[Process], gateway_extra: str = "") -> None:
    """``customs-gateway init`` in ``directory``, then two ``serve`` processes on Redis under ``prefix``, ready;
    ``gateway_extra`` is added to their ``[gateway]`` table. Each is appended to ``processes`` once started (the
    caller stops them with :func:`stop_processes`, even when this fails half-way)."""
    result = subprocess.run([*CLI, "init", str(directory)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    template = (directory / "gateway.toml").read_text()
    for name in ("a", "b"):
        port = _free_port()
        text = re.sub(r"rest_port = \d+", f"rest_port = {port}", template)
        text = re.sub(r"grpc_port = \d+", "grpc_port = 0", text)
        text = re.sub(r'data_dir = "[^"]*"', f'data_dir = "data-{name}"', text)
        text = text.replace("[gateway]\n", "[gateway]\n" + gateway_extra, 1)
        text += f'[store]\nbackend = "redis"\nredis_url = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n'
        text += "allow_no_persistence = true\n"
        config = directory / f"gateway-{name}.toml"
        config.write_text(text)
        log = directory / f"serve-{name}.log"
        processes.append((_start(config, log), log, f"https://127.0.0.1:{port}"))
    for process, log, url in processes:
        _wait_ready(url, directory / "ca/root-ca.crt", process, log)


def stop_processes(processes: list[Process], prefix: str) -> None:
    """SIGTERM each (a graceful stop exits 0), then delete the prefix's keys."""
    for process, _, _ in processes:
        process.send_signal(signal.SIGTERM)
    for process, log, _ in processes:
        assert process.wait(timeout=30) == 0, log.read_text()  # graceful stop on SIGTERM
    asyncio.run(_delete(prefix))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    directory = tmp_path_factory.mktemp("redis-pair")
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    processes: list[Process] = []
    try:
        start_processes(directory, prefix, processes)
        yield Pair(directory, prefix, (processes[0][2], processes[1][2]))
    finally:
        stop_processes(processes, prefix)


async def _delete(prefix: str) -> None:
    store = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
    try:
        await store.delete_all()
    finally:
        await store.close()


@pytest.fixture
async def clients(pair: Pair) -> AsyncIterator[dict[tuple[str, int], GatewayClient]]:
    made: dict[tuple[str, int], GatewayClient] = {}
    for member in ("CARRIER-COSCO", "CN-GACC", "AUDIT-GACC"):
        for k, url in enumerate(pair.urls):
            made[member, k] = GatewayClient(url, MemberCredentials.from_federation(pair.federation, member))
    yield made
    for client in made.values():
        await client.close()


async def test_submit_to_one_process_pull_and_ack_on_the_other(clients: dict[tuple[str, int], GatewayClient]) -> None:
    await _drain(clients["CN-GACC", 0])
    sent = await clients["CARRIER-COSCO", 0].submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA)
    assert sent.status == 201

    page = await clients["CN-GACC", 1].pull()
    assert [i["message_id"] for i in page["items"]] == [sent.body["message_id"]]
    status = await clients["CN-GACC", 1].status("CARRIER-COSCO", sent.body["message_id"])
    assert status["receipt"] == sent.body["receipt"]
    assert await clients["CN-GACC", 1].ack([page["items"][0]["cursor"]]) == 1
    assert (await clients["CN-GACC", 0].pull())["items"] == []  # acked on B is acked on A


async def test_a_long_poll_on_one_process_sees_a_submission_to_the_other(
    clients: dict[tuple[str, int], GatewayClient],
) -> None:
    await _drain(clients["CN-GACC", 1])
    began = time.monotonic()
    waiting = asyncio.ensure_future(clients["CN-GACC", 1].pull(wait=20))
    await asyncio.sleep(0.3)
    sent = await clients["CARRIER-COSCO", 0].submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA)
    page = await waiting
    assert [i["message_id"] for i in page["items"]] == [sent.body["message_id"]]
    assert time.monotonic() - began < 5  # woken by the re-poll, not by the 20 s timeout
    await _drain(clients["CN-GACC", 1])


async def test_duplicates_are_caught_across_processes(clients: dict[tuple[str, int], GatewayClient]) -> None:
    carrier_a, carrier_b = clients["CARRIER-COSCO", 0], clients["CARRIER-COSCO", 1]
    payload = to_bytes(cargo_manifest())
    jws = carrier_a.sign(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
    first = await carrier_a.submit_signed(jws, payload)
    again = await carrier_b.submit_signed(jws, payload)
    assert (first.status, again.status) == (201, 200)
    assert again.body["receipt"] == first.body["receipt"]

    other = to_bytes(cargo_manifest("OTHER-1"))
    conflicting = carrier_b.sign(MANIFEST, ["CN-GACC"], other, schema=SCHEMA, message_id=first.body["message_id"])
    with pytest.raises(GatewayClientError) as err:
        await carrier_b.submit_signed(conflicting, other)
    assert (err.value.status, err.value.code) == (409, "DUPLICATE_CONFLICT")

    # the same signed message raced at both processes at once is accepted exactly once
    raced = carrier_a.sign(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
    results = await asyncio.gather(*(clients["CARRIER-COSCO", k % 2].submit_signed(raced, payload) for k in range(10)))
    assert sorted(r.status for r in results) == [200] * 9 + [201]
    assert len({r.body["receipt"] for r in results}) == 1


async def test_a_client_assertion_is_refused_as_a_replay_by_the_other_process(pair: Pair) -> None:
    creds = MemberCredentials.from_federation(pair.federation, "CN-GACC")
    assertion = tokens.make_client_assertion(
        "CN-GACC",
        "urn:cgw:gateway:CN-GACC",
        creds.signing_key,
        creds.signing_chain,
        now=datetime.now(UTC),
        jti=str(uuid.uuid4()),
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    context = ssl.create_default_context(cafile=str(creds.ca_file))
    async with aiohttp.ClientSession() as session:
        async with session.post(pair.urls[0] + "/v1/token", data=form, ssl=context) as response:
            assert response.status == 200
        async with session.post(pair.urls[1] + "/v1/token", data=form, ssl=context) as response:
            assert response.status == 401
            assert (await response.json())["code"] == "TOKEN_REPLAYED"


async def test_concurrent_writers_on_both_processes_keep_one_ledger(
    pair: Pair, clients: dict[tuple[str, int], GatewayClient]
) -> None:
    payload = to_bytes(cargo_manifest())
    results = await asyncio.gather(
        *(clients["CARRIER-COSCO", k % 2].submit(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA) for k in range(60))
    )
    indexes = [r.receipt["ledger_index"] for r in results]
    assert len(set(indexes)) == len(indexes)

    # both processes serve the same dense ledger; each one's checkpoint verifies over REST
    verifies = [[*CLI, "audit", "verify", "--url", url, "--federation", str(pair.federation)] for url in pair.urls]
    results = await asyncio.gather(
        *(asyncio.to_thread(subprocess.run, v, capture_output=True, text=True, timeout=60) for v in verifies)
    )
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ledger OK" in result.stdout
    entries = await clients["AUDIT-GACC", 0].entries(0, max(indexes) + 1)
    assert [i for i, _ in entries] == list(range(max(indexes) + 1))
    assert entries == await clients["AUDIT-GACC", 1].entries(0, max(indexes) + 1)


async def _drain(client: GatewayClient) -> None:
    while items := (await client.pull())["items"]:
        await client.ack([i["cursor"] for i in items])


def test_serve_refuses_a_redis_without_persistence(pair: Pair) -> None:
    """The machine's Redis has no AOF: without allow_no_persistence, serve exits 2 before it listens."""
    if asyncio.run(_durable()):
        pytest.skip("this Redis has AOF and noeviction: nothing to refuse")
    text = (pair.federation / "gateway-a.toml").read_text().replace("allow_no_persistence = true\n", "")
    text = text.replace('data_dir = "data-a"', 'data_dir = "data-refused"')  # its own: data-a is held by A
    text = re.sub(r"rest_port = \d+", f"rest_port = {_free_port()}", text)  # A's port is taken: refused first
    config = pair.federation / "gateway-refused.toml"
    config.write_text(text)
    result = subprocess.run(
        [*CLI, "serve", "--config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "UNAVAILABLE" in result.stderr
    assert "appendonly yes" in result.stderr


async def _durable() -> bool:
    store = await RedisStore.open(REDIS_URL, key_prefix="cgw-probe", allow_no_persistence=True)
    try:
        return store.persistence.durable
    finally:
        await store.close()
