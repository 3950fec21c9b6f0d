"""A full disk under a running ``customs-gateway serve`` (its data_dir on a small tmpfs of its own, filled by a
file and freed by deleting it): submits get a clean 503 UNAVAILABLE with "disk full" in the log and, later,
the ledger; /readyz says why; the gateway recovers without a restart once space returns and audits the
rejections of the full period then; stopping and starting on a full disk end with one line on stderr and
exit code 2, never a traceback."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from gateway.client.rest import GatewayClient, GatewayClientError
from gateway.demo.samples import cargo_manifest, to_bytes
from tests.integration.serveprocess import CLI
from tests.integration.test_crash_safety import Served
from tests.integration.test_readiness import samples

MANIFEST = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"
TMPFS_SIZE = "8m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MB tmpfs of our own (root only; skipped where mounting is not allowed)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the filesystem is full (ENOSPC)."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


async def get(served: Served, path: str) -> tuple[int, str]:
    tls = ssl.create_default_context(cafile=str(served.fed / "ca" / "root-ca.crt"))
    async with aiohttp.ClientSession() as session, session.get(served.url + path, ssl=tls) as response:
        return response.status, await response.text()


async def serve_exit(served: Served) -> tuple[int, str, str]:
    """Start ``serve`` on ``served``'s config and wait for it to exit by itself: (code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--config", str(served.config), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def rejected_events(auditor: GatewayClient) -> list[dict[str, object]]:
    entries = await auditor.entries(0, 1000)
    return [event for _, data in entries if (event := json.loads(data))["event"] == "rejected"]


def message_id(jws: str) -> str:
    body = jws.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["id"])


async def test_a_full_disk_fails_closed_cleanly_and_the_gateway_recovers_without_a_restart(
    federation: Path, tmp_path: Path, small_disk: Path
) -> None:
    fed = tmp_path / "fed"
    shutil.copytree(federation, fed, ignore=shutil.ignore_patterns("data"))
    config = fed / "gateway.toml"
    config.write_text(config.read_text().replace('data_dir = "data"', f'data_dir = "{small_disk / "data"}"'))
    served = Served(fed)
    await served.start()
    carrier, auditor = served.client("CARRIER-COSCO"), served.client("AUDIT-GACC")
    payload = to_bytes(cargo_manifest())
    try:
        for _ in range(3):
            assert (await carrier.submit(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)).status == 201

        filler = fill(small_disk)
        refused_ids: list[str] = []
        for _ in range(2):
            jws = carrier.sign(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
            with pytest.raises(GatewayClientError) as refused:
                await carrier.submit_signed(jws, payload)
            assert (refused.value.status, refused.value.code) == (503, "UNAVAILABLE")
            refused_ids.append(message_id(jws))
        await asyncio.sleep(1.6)  # the write probe's answer from before the disk filled expires
        status, body = await get(served, "/readyz")
        assert status == 503
        assert json.loads(body)["reasons"] == {"store_writes": "sqlite store: disk full"}
        _, text = await get(served, "/metrics")
        assert samples(text, "cgw_rejections_total")[(("code", "UNAVAILABLE"),)] == 2
        assert samples(text, "cgw_audit_deferred")[()] == 2
        assert '"detail":"sqlite store: disk full"' in served.log()

        filler.unlink()  # space returns: no restart
        await asyncio.sleep(1.6)  # the cached write probe expires
        assert (await get(served, "/readyz"))[0] == 200
        assert (await carrier.submit(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)).status == 201
        for _ in range(30):  # the checkpoint tick (every 5 s) writes the deferred rejections
            deferred = [e for e in await rejected_events(auditor) if e.get("deferred")]
            if len(deferred) == len(refused_ids):
                break
            await asyncio.sleep(0.5)
        assert [(e["message_id"], e["code"], e["detail"]) for e in deferred] == [
            (refused, "UNAVAILABLE", "sqlite store: disk full") for refused in refused_ids
        ]
        _, text = await get(served, "/metrics")
        assert samples(text, "cgw_audit_deferred")[()] == 0

        # stop on a full disk: the closing checkpoint cannot run; one line, exit 2, nothing lost (the WAL)
        assert (await carrier.submit(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)).status == 201
        filler = fill(small_disk)
        assert served.process is not None
        served.process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            assert await served.process.wait() == 2
        log = served.log()
        assert "Traceback" not in log
        errors = [line for line in log.splitlines() if line.startswith("error:")]
        assert len(errors) == 1
        # the first stop step that met the full disk names it (the checkpoint publication or the store close)
        assert errors[0].startswith("error: UNAVAILABLE: ") and "disk full" in errors[0]

        # start on a full disk: one line, exit 2
        code, out, err = await serve_exit(served)
        assert code == 2, out + err
        assert "Traceback" not in out + err
        assert len(err.strip().splitlines()) == 1
        assert err.startswith("error: UNAVAILABLE: ") and "disk full" in err

        filler.unlink()
        await served.start()  # space back: every receipted message is there, the ledger verifies
        verify = await asyncio.to_thread(
            subprocess.run,
            [*CLI, "audit", "verify", "--config", str(served.config)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert verify.returncode == 0, verify.stderr
        assert "ledger OK" in verify.stdout
        restarted = served.client("AUDIT-GACC")
        try:
            entries = [json.loads(data) for _, data in await restarted.entries(0, 1000)]
        finally:
            await restarted.close()
        assert sum(e["event"] == "accepted" for e in entries) == 5  # the last one, too: replayed from the WAL
    finally:
        await carrier.close()
        await auditor.close()
        if served.process is not None and served.process.returncode is None:
            served.process.kill()
            await served.process.wait()
