"""Two dev administrations on loopback for federation tests: CN-GACC and NL-DOUANE, each with its own CA, origin,
checkpoint key and REST port, listed in one signed federation directory built with the ``federation`` CLI
(init, add-peer x2, sign, in-process). Used by the witnessing and relay integration tests. ``build_peers``: the
same two administrations as ``init --peers 2`` writes them (gateway client certificates included), for tests that
run both gateways and let them relay to each other."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from gateway.app.cli import main as cli_main
from gateway.app.main import Gateway
from gateway.app.settings import Settings, load_settings
from gateway.core.directory import Directory
from gateway.demo.federation import free_base_port
from gateway.infra.devpki import create_federation
from gateway.infra.federationfiles import load_operator_key, read_directory

ORIGIN_A = "cgw.cn-gacc.example/ledger"
ORIGIN_B = "cgw.nl-douane.example/ledger"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Pair:
    ops: Path  # the federation operator's directory (operator key, draft, directory.jws)
    fed_a: Path
    fed_b: Path
    fed_c: Path | None = None  # US-CBP's administration (``build_peers(count=3)``)

    @property
    def signed(self) -> Path:
        return self.ops / "directory.jws"

    def directory(self) -> Directory:
        return read_directory(self.signed, load_operator_key(self.ops / "operator.pub"), datetime.now(UTC))

    def settings(self, fed: Path, data: Path) -> Settings:
        return load_settings(fed / "gateway.toml", overrides={"gateway.grpc_port": 0, "gateway.data_dir": str(data)})


def build_pair(base: Path, members: Mapping[str, str] | None = None) -> Pair:
    """Two dev federations (two CAs), NL-DOUANE's gateway with its own origin, on fixed free ports (the directory
    names each gateway's URL), and the signed directory. ``members``: gateway id -> the comma-separated members
    the directory lists for it (``add-peer --members``; default: its home member only)."""
    fed_a, fed_b, ops = base / "cn", base / "nl", base / "ops"
    for fed, member, origin in ((fed_a, "CN-GACC", ORIGIN_A), (fed_b, "NL-DOUANE", ORIGIN_B)):
        create_federation(fed)
        toml = (fed / "gateway.toml").read_text()
        toml = toml.replace('member_id = "CN-GACC"', f'member_id = "{member}"')
        toml = toml.replace(f'origin = "{ORIGIN_A}"', f'origin = "{origin}"')
        (fed / "gateway.toml").write_text(toml.replace("rest_port = 8443", f"rest_port = {free_port()}"))
    assert cli_main(["federation", "init", str(ops)]) == 0
    for fed, gateway_id in ((fed_a, "CN-GACC"), (fed_b, "NL-DOUANE")):
        listed = ["--members", members[gateway_id]] if members and gateway_id in members else []
        assert cli_main(["federation", "add-peer", str(ops), "--config", str(fed / "gateway.toml"), *listed]) == 0
    assert cli_main(["federation", "sign", str(ops)]) == 0
    # Why: the CLI configures structlog to cache each logger on first use; a gateway logger first used under that
    # configuration would stay bound to it, and later tests' capture_logs would not see its lines.
    structlog.reset_defaults()
    assert "[federation]" in (fed_a / "gateway.toml").read_text()
    return Pair(ops, fed_a, fed_b)


def build_peers(base: Path, count: int = 2) -> Pair:
    """``customs-gateway init --peers 2``: CN-GACC (cn/) and NL-DOUANE (nl/), each its own CA, members, gateway TLS
    client certificate and ``[federation]`` section, in ONE signed directory (ops/): two gateways that relay to
    each other as they are (``Pair.settings`` keeps their directory ports). ``count=3``: US-CBP (us/) too."""
    out = base / "peers"
    base_port = free_base_port(2 * count)
    assert cli_main(["init", "--peers", str(count), "--base-port", str(base_port), str(out)]) == 0
    structlog.reset_defaults()  # as in build_pair
    return Pair(out / "ops", out / "cn", out / "nl", out / "us" if count == 3 else None)


async def eventually(check: Callable[[], Awaitable[Any]], *, seconds: float = 20.0) -> Any:
    """Poll ``check`` until it returns something truthy (relay and witness workers run on their own schedule)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {seconds} s: {check}")
        await asyncio.sleep(0.1)


async def ledger(gateway: Gateway) -> list[dict[str, Any]]:
    """Every leaf of a running gateway's ledger, as JSON."""
    size = await gateway.store.ledger_size()
    return [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]
