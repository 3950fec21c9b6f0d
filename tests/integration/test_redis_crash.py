"""A Redis with ``appendonly yes`` and ``appendfsync always`` is SIGKILLed under a running gateway and
restarted: every receipted message is still there with its receipt, replays are still refused, the ledger
still verifies, and while Redis was down the gateway failed closed (503) instead of accepting."""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from gateway.app.auditor import verify_over_rest
from gateway.app.main import running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials
from gateway.core import tokens
from gateway.demo.samples import cargo_manifest, to_bytes

MANIFEST = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"
REDIS_SERVER = shutil.which("redis-server")

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="needs the redis-server binary")


@dataclass
class DurableRedis:
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    options: tuple[str, ...] = ()  # more redis-server arguments; a later one overrides the durable defaults

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction"]
        args += self.options
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((self.directory / "redis.log").read_text())
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def redis_aof(tmp_path: Path) -> Iterator[DurableRedis]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    directory = tmp_path / "redis"
    directory.mkdir()
    server = DurableRedis(directory, port)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.kill()


def assertion_form(federation: Path, member: str) -> dict[str, str]:
    creds = MemberCredentials.from_federation(federation, member)
    assertion = tokens.make_client_assertion(
        member,
        f"urn:cgw:gateway:{member}",
        creds.signing_key,
        creds.signing_chain,
        now=datetime.now(UTC),
        jti=str(uuid.uuid4()),
    )
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


async def token_request(url: str, form: dict[str, str], context: ssl.SSLContext) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.post(url + "/v1/token", data=form, ssl=context) as response:
        body = await response.json(content_type=None)
        return response.status, str(body.get("code", ""))


async def test_sigkilled_aof_redis_keeps_every_receipted_message_and_refuses_replays(
    federation: Path, tmp_path: Path, redis_aof: DurableRedis
) -> None:
    settings = load_settings(
        federation / "gateway.toml",
        overrides={
            "gateway.rest_port": 0,
            "gateway.grpc_port": None,
            "gateway.data_dir": str(tmp_path / "data"),
            "store.backend": "redis",
            "store.redis_url": redis_aof.url,
            "store.key_prefix": "cgw-crash",
            # no allow_no_persistence: this Redis is durable, so startup accepts it
        },
    )
    payload = to_bytes(cargo_manifest())
    context = ssl.create_default_context(cafile=str(federation / "ca/root-ca.crt"))
    async with running_gateway(settings) as gateway:
        carrier = GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "CARRIER-COSCO"))
        gacc = GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "CN-GACC"))
        try:
            signed = [carrier.sign(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA) for _ in range(25)]
            sent = await asyncio.gather(*(carrier.submit_signed(jws, payload) for jws in signed))
            assert {s.status for s in sent} == {201}
            form = assertion_form(federation, "CN-GACC")
            assert (await token_request(gateway.url, form, context))[0] == 200

            redis_aof.kill()  # right after the receipts: nothing was flushed on a clean shutdown

            with pytest.raises(GatewayClientError) as down:
                await carrier.submit(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
            assert (down.value.status, down.value.code) == (503, "UNAVAILABLE")  # fails closed

            redis_aof.start()  # same directory: Redis replays its append-only file

            # the client assertion is still spent ...
            assert await token_request(gateway.url, form, context) == (401, "TOKEN_REPLAYED")
            # ... a resubmission is a duplicate with the original receipt ...
            again = await carrier.submit_signed(signed[0], payload)
            assert (again.status, again.body["receipt"]) == (200, sent[0].body["receipt"])
            # ... and every receipted message is in the inbox, with the receipt that was given out
            page = await gacc.pull(limit=100)
            assert sorted(i["message_id"] for i in page["items"]) == sorted(s.body["message_id"] for s in sent)
            for s in sent[:5]:
                status = await gacc.status("CARRIER-COSCO", s.body["message_id"])
                assert status["receipt"] == s.body["receipt"]
            report = await verify_over_rest(gateway.url, federation, "AUDIT-GACC")
            assert report.size >= len(sent)
        finally:
            await carrier.close()
            await gacc.close()
