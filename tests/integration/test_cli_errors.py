"""Ordinary mistakes with the ``customs-gateway`` command: one line on stderr, the documented exit code (2 usage or
configuration, 3 no gateway answered), no traceback; an error that never reached a gateway does not speak for one.
Real processes (the installed entry point), real sockets."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import __version__
from gateway.demo.samples import cargo_manifest, to_bytes
from tests.integration.test_cli import free_port

CGW = str(Path(sys.executable).with_name("customs-gateway"))
GATEWAY_VOICE = "the gateway cannot accept messages right now"
EXIT_USAGE, EXIT_UNREACHABLE = 2, 3


def cgw(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CGW, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The single stderr line of a failed command that exited with ``code``."""
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.returncode == code, result.stderr
    return lines[0]


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    path = tmp_path / "manifest.json"
    path.write_bytes(to_bytes(cargo_manifest()))
    return path


@pytest.fixture
def listening() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.create_server(("127.0.0.1", 0)) as other:
        yield other.getsockname()[1]


def send(federation: Path, url: str) -> list[str]:
    return ["send", "--url", url, "--federation", str(federation), "--type", "manifest.cargo.v1", "--to", "CN-GACC"]


def test_missing_payload_file(federation: Path, tmp_path: Path) -> None:
    url = f"https://127.0.0.1:{free_port()}"
    line = one_line(cgw(*send(federation, url), "--as", "CARRIER-COSCO", str(tmp_path / "nope.json")), EXIT_USAGE)
    assert line == f"error: cannot read the payload {tmp_path / 'nope.json'}: No such file or directory"


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_gateway_not_running(federation: Path, payload: Path, transport: str) -> None:
    port = free_port()  # nothing listens there
    url = f"https://127.0.0.1:{port}" if transport == "rest" else f"127.0.0.1:{port}"
    result = cgw(*send(federation, url), "--transport", transport, "--as", "CARRIER-COSCO", str(payload))
    line = one_line(result, EXIT_UNREACHABLE)
    assert line.startswith(f"error: no answer from a gateway at {url}: ")
    assert GATEWAY_VOICE not in line


@pytest.mark.parametrize(
    ("url", "hint"),
    [("http://127.0.0.1:8443", ""), ("127.0.0.1:8443", "; did you mean https://127.0.0.1:8443?")],
)
def test_url_that_is_not_https(federation: Path, payload: Path, url: str, hint: str) -> None:
    line = one_line(cgw(*send(federation, url), "--as", "CARRIER-COSCO", str(payload)), EXIT_USAGE)
    assert line == f"error: gateway URL {url!r} is not https://HOST[:PORT] (the gateway speaks HTTPS only){hint}"


def test_grpc_target_with_a_scheme(federation: Path, payload: Path) -> None:
    result = cgw(
        *send(federation, "http://127.0.0.1:8444"), "--transport", "grpc", "--as", "CARRIER-COSCO", str(payload)
    )
    assert "is not HOST:PORT" in one_line(result, EXIT_USAGE)


def test_unknown_member_lists_the_members(federation: Path, payload: Path) -> None:
    url = f"https://127.0.0.1:{free_port()}"
    line = one_line(cgw(*send(federation, url), "--as", "CARRIER-MAERSK", str(payload)), EXIT_USAGE)
    assert line == (
        f"error: 'CARRIER-MAERSK' is not a member of the federation in {federation}; "
        "members: AUDIT-GACC, CARRIER-COSCO, CN-GACC, NL-DOUANE, PORT-NLRTM, US-CBP"
    )
    assert GATEWAY_VOICE not in line


def test_not_a_federation_directory(tmp_path: Path, payload: Path) -> None:
    line = one_line(cgw(*send(tmp_path, "https://127.0.0.1:8443"), "--as", "CN-GACC", str(payload)), EXIT_USAGE)
    assert "is not a federation directory written by 'init'" in line


def test_usage_mistake_is_one_line(payload: Path) -> None:
    line = one_line(cgw("send", "--url", "https://127.0.0.1:8443", str(payload)), EXIT_USAGE)
    assert line.startswith("customs-gateway send: error: the following arguments are required:")
    assert line.endswith("(see customs-gateway send --help)")


@pytest.mark.parametrize("listener", ["rest_port", "grpc_port"])
def test_serve_on_a_taken_port_fails_before_writing_anything(
    federation: Path, tmp_path: Path, listening: int, listener: str
) -> None:
    data_dir = tmp_path / "data"
    ports = {"rest_port": free_port(), "grpc_port": free_port()} | {listener: listening}
    text = (federation / "gateway.toml").read_text()
    for name, port in ports.items():
        text = re.sub(rf"{name} = \d+", f"{name} = {port}", text)
    config = federation / f"taken-{uuid.uuid4().hex}.toml"  # beside the federation: its relative paths resolve
    config.write_text(text.replace('data_dir = "data"', f'data_dir = "{data_dir}"'))
    try:
        line = one_line(cgw("serve", "--config", str(config)), EXIT_USAGE)
    finally:
        config.unlink()
    assert line == (
        f"error: UNAVAILABLE: cannot listen on 127.0.0.1:{listening} (Address already in use); "
        "is another gateway running?"
    )
    assert not data_dir.exists()  # no store, ledger or checkpoint written for a gateway that never ran


def test_version() -> None:
    result = cgw("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"customs-gateway {__version__}")
