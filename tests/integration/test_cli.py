"""The ``customs-gateway`` command as a user runs it: init, serve, send, audit verify, demo (real processes)."""

from __future__ import annotations

import json
import re
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.demo.samples import cargo_manifest, to_bytes

CLI = [sys.executable, "-m", "gateway.app.cli"]


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, subprocess.Popen[str]]]:
    directory = tmp_path_factory.mktemp("cli-federation")
    result = run("init", str(directory))
    assert result.returncode == 0, result.stderr
    port = free_port()
    config = directory / "gateway.toml"
    text = re.sub(r"rest_port = \d+", f"rest_port = {port}", config.read_text())
    config.write_text(re.sub(r"grpc_port = \d+", "grpc_port = 0", text))
    log = (directory / "serve.log").open("w")
    process = subprocess.Popen(
        [*CLI, "serve", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT, text=True
    )
    url = f"https://127.0.0.1:{port}"
    wait_until_ready(url, directory, process, directory / "serve.log")
    yield directory, url, process
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0  # graceful stop on SIGTERM
    log.close()


def wait_until_ready(url: str, federation: Path, process: subprocess.Popen[str], log: Path) -> None:
    """Until the ``serve`` process answers /readyz 200 over TLS (30 s at most; its log in the failure)."""
    context = ssl.create_default_context(cafile=str(federation / "ca/root-ca.crt"))
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", context=context, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"gateway did not start: {log.read_text()}") from None
            time.sleep(0.2)


def test_init_refuses_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = run("init", str(tmp_path))
    assert result.returncode == 2
    assert "not empty" in result.stderr


def test_send_accepts_and_refuses_with_codes(served: tuple[Path, str, subprocess.Popen[str]], tmp_path: Path) -> None:
    directory, url, _ = served
    good = tmp_path / "manifest.json"
    good.write_bytes(to_bytes(cargo_manifest()))
    common = ["send", "--url", url, "--federation", str(directory), "--type", "manifest.cargo.v1"]
    result = run(*common, "--as", "CARRIER-COSCO", "--to", "CN-GACC", str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    body = json.loads(result.stdout)
    assert body["receipt_claims"]["status"] == "accepted"
    result = run(*common, "--as", "CARRIER-COSCO", "--to", "CN-GACC", "--token", str(good))
    assert result.returncode == 0, result.stdout + result.stderr
    bad = tmp_path / "bad.json"
    bad.write_bytes(to_bytes(cargo_manifest(container="MSKU9070324")))
    result = run(*common, "--as", "CARRIER-COSCO", "--to", "CN-GACC", str(bad))
    assert result.returncode == 1
    assert json.loads(result.stdout)["code"] == "IDENTIFIER_INVALID"


def test_audit_verify_over_rest_and_offline(served: tuple[Path, str, subprocess.Popen[str]]) -> None:
    directory, url, _process = served
    result = run("audit", "verify", "--url", url, "--federation", str(directory))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ledger OK" in result.stdout
    result = run("audit", "verify", "--config", str(directory / "gateway.toml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_audit_verify_fails_loudly_on_a_tampered_store(tmp_path: Path) -> None:
    result = run("demo", "--keep", str(tmp_path / "fed"), timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    config = tmp_path / "fed" / "gateway.toml"
    assert run("audit", "verify", "--config", str(config)).returncode == 0
    database = tmp_path / "fed" / "data" / "gateway.db"
    with sqlite3.connect(database) as conn:
        conn.execute("DROP TRIGGER ledger_no_update")  # an attacker with write access to the file
        data = conn.execute("SELECT data FROM ledger WHERE idx = 1").fetchone()[0]
        conn.execute("UPDATE ledger SET data = ? WHERE idx = 1", (bytes(data).replace(b"CN-GACC", b"US-CBP"),))
    result = run("audit", "verify", "--config", str(config))
    assert result.returncode == 1
    assert "PROOF_INVALID" in result.stderr


def test_demo_exits_zero_and_prints_a_summary() -> None:
    result = subprocess.run([*CLI, "demo"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "PASS" in result.stdout
    assert "FAILED" not in result.stdout
