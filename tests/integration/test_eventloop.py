"""``customs-gateway serve --loop``: the gateway on uvloop answers REST and gRPC and stops cleanly (real processes)."""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from gateway.app import eventloop
from gateway.core.errors import Unavailable
from gateway.demo.samples import cargo_manifest, to_bytes

CLI = [sys.executable, "-m", "gateway.app.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


def _serve(directory: Path, loop: str) -> tuple[subprocess.Popen[str], str, str, Path]:
    rest, grpc = _free_port(), _free_port()
    config = directory / "gateway.toml"
    text = re.sub(r"rest_port = \d+", f"rest_port = {rest}", config.read_text())
    config.write_text(re.sub(r"grpc_port = \d+", f"grpc_port = {grpc}", text))
    log_path = directory / f"serve-{loop}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*CLI, "serve", "--config", str(config), "--loop", loop], stdout=log, stderr=subprocess.STDOUT, text=True
        )
    url = f"https://127.0.0.1:{rest}"
    context = ssl.create_default_context(cafile=str(directory / "ca/root-ca.crt"))
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", context=context, timeout=2) as response:
                if response.status == 200:
                    return process, url, f"127.0.0.1:{grpc}", log_path
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"gateway did not start: {log_path.read_text()}") from None
            time.sleep(0.2)


def _listening_line(log_path: Path) -> dict[str, object]:
    for line in log_path.read_text().splitlines():
        if "gateway listening" in line:
            record: dict[str, object] = json.loads(line)
            return record
    raise AssertionError(log_path.read_text())


@pytest.mark.skipif(not eventloop.uvloop_available(), reason="uvloop is not installed")
def test_the_gateway_on_uvloop_accepts_over_rest_and_grpc_and_stops_cleanly(tmp_path: Path) -> None:
    assert _run("init", str(tmp_path)).returncode == 0
    process, url, grpc_target, log_path = _serve(tmp_path, "uvloop")
    try:
        payload = tmp_path / "manifest.json"
        common = ["send", "--federation", str(tmp_path), "--as", "CARRIER-COSCO", "--to", "CN-GACC"]
        common += ["--type", "manifest.cargo.v1"]
        payload.write_bytes(to_bytes(cargo_manifest("UVLOOP-REST")))
        result = _run(*common, "--url", url, str(payload))
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["receipt_claims"]["status"] == "accepted"
        payload.write_bytes(to_bytes(cargo_manifest("UVLOOP-GRPC")))
        result = _run(*common, "--transport", "grpc", "--url", grpc_target, str(payload))
        assert result.returncode == 0, result.stdout + result.stderr
        payload.write_bytes(to_bytes(cargo_manifest(container="MSKU9070324")))
        result = _run(*common, "--url", url, str(payload))
        assert result.returncode == 1
        assert json.loads(result.stdout)["code"] == "IDENTIFIER_INVALID"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0  # drains and stops on SIGTERM under uvloop too
    assert _listening_line(log_path)["loop"] == "uvloop"


def test_the_standard_loop_can_be_forced(tmp_path: Path) -> None:
    assert _run("init", str(tmp_path)).returncode == 0
    process, _url, _grpc, log_path = _serve(tmp_path, "asyncio")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert _listening_line(log_path)["loop"] == "asyncio"


def test_loop_choices() -> None:
    assert eventloop.loop_factory("asyncio") is None
    with pytest.raises(Unavailable):
        eventloop.loop_factory("trio")
    if eventloop.uvloop_available():
        factory = eventloop.loop_factory("auto")
        assert factory is not None
        loop = factory()
        try:
            assert eventloop.loop_name(loop) == "uvloop"
        finally:
            loop.close()
