"""One ``customs-gateway serve`` process for the kill -9 tests: started (optionally with a crash point armed through
``CGW_CRASH_POINT``, gateway/exchange/faults.py), waited for until ``/readyz`` answers 200, killed or stopped, with
the log of each start kept beside its config."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
from pathlib import Path

import aiohttp

CLI = [sys.executable, "-m", "gateway.app.cli"]
START_TIMEOUT = 20.0
SETTLE_TIMEOUT = 15.0


class ServeProcess:
    """A restartable gateway process over the federation directory ``fed`` (its CA verifies the gateway)."""

    def __init__(self, fed: Path, config: Path, url: str, name: str = "gateway") -> None:
        self.fed = fed
        self.config = config
        self.url = url
        self.name = name
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self, crash_point: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k != "CGW_CRASH_POINT"}
        if crash_point:
            env["CGW_CRASH_POINT"] = crash_point
        self.starts += 1
        with (self.fed / f"serve-{self.starts}.log").open("w") as log:
            self.process = await asyncio.create_subprocess_exec(
                *CLI, "serve", "--config", str(self.config), stdout=log, stderr=asyncio.subprocess.STDOUT, env=env
            )
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
                    raise AssertionError(f"{self.name} exited: {self.log()}")
                await asyncio.sleep(0.05)

    def log(self) -> str:
        return (self.fed / f"serve-{self.starts}.log").read_text()

    async def killed(self) -> None:
        """The armed crash point fired: the process died of SIGKILL."""
        assert self.process is not None
        async with asyncio.timeout(SETTLE_TIMEOUT):
            assert await self.process.wait() == -signal.SIGKILL, self.log()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                assert await self.process.wait() == 0, self.log()

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
