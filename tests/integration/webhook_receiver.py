"""Test material for push delivery: a real HTTPS webhook receiver and a federation whose member pushes to it.

The receiver is an aiohttp server on loopback with a certificate from the dev federation CA (the gateway's
own TLS server certificate: localhost / 127.0.0.1), so the gateway verifies it like any webhook.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from gateway.core.model import Endpoint
from gateway.core.registry import parse_registry, registry_to_json


@dataclass(frozen=True)
class Received:
    body: bytes
    signature: str
    content_type: str
    at: float = field(default=0.0, compare=False)  # time.perf_counter() on arrival (benchmarks)


@dataclass
class WebhookReceiver:
    """Answers each push with the next status of ``statuses`` (then ``default``), after ``delay`` seconds."""

    federation: Path
    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    concurrent: int = 0
    max_concurrent: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/hooks/cgw"

    async def start(self, port: int = 0) -> WebhookReceiver:
        app = web.Application()
        app.router.add_post("/hooks/cgw", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(
            self.federation / "gateway" / "tls-server.crt", self.federation / "gateway" / "tls-server.key"
        )
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=tls)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.concurrent += 1
        self.max_concurrent = max(self.max_concurrent, self.concurrent)
        try:
            body = await request.read()
            self.received.append(
                Received(
                    body,
                    request.headers.get("Cgw-Signature", ""),
                    request.headers.get("Content-Type", ""),
                    time.perf_counter(),
                )
            )
            self._arrived.set()
            if self.delay:
                await asyncio.sleep(self.delay)
            status = self.statuses.pop(0) if self.statuses else self.default
            return web.Response(status=status, text="ok" if status < 300 else "no")
        finally:
            self.concurrent -= 1

    async def wait_for(self, count: int, within: float = 10.0) -> list[Received]:
        async with asyncio.timeout(within):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received


def push_federation(source: Path, target: Path, *, member: str, url: str) -> Path:
    """A copy of the dev federation in which ``member`` receives by webhook at ``url`` (registry re-versioned)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("data", "*.db*"))
    path = target / "registry.json"
    registry = parse_registry(json.loads(path.read_text()))
    members = dict(registry.members)
    members[member] = dataclasses.replace(members[member], endpoints=(Endpoint(kind="webhook", url=url),))
    rebuilt = dataclasses.replace(registry, members=members)
    path.write_text(json.dumps(registry_to_json(rebuilt), indent=2) + "\n")
    return target
