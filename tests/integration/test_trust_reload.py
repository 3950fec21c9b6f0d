"""Issue 17 items 1 and 2 over real sockets: a new CRL takes effect without a restart (file watch, SIGHUP, admin
endpoint), for mTLS callers and for access tokens bound or not; a token is usable only over a TLS connection of
its own member."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.client.grpc_client import GrpcGatewayClient, StreamedItem
from gateway.client.rest import GatewayClient, GatewayClientError, GatewayUnreachable, MemberCredentials
from gateway.infra.devpki import Issuer, build_crl
from gateway.infra.files import load_certificates, load_private_key
from tests.integration.conftest import ClientFactory, summarized
from tests.integration.grpc_fixtures import GrpcClientFactory, grpc_clients
from tests.integration.test_cli import free_port

__all__ = ["grpc_clients"]  # the fixture, used by name

CLI = [sys.executable, "-m", "gateway.app.cli"]
WITHIN_SECONDS = 10.0  # a revocation must bite within this long (the watcher polls every second)


@pytest.fixture
def federation(federation: Path, tmp_path: Path) -> Path:
    """A private copy of the session's dev federation: these tests replace its CRL."""
    target = tmp_path / "federation"
    shutil.copytree(federation, target)
    return target


@pytest.fixture
async def gateway(federation: Path, tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Gateway]:
    """The gateway on the private federation; ``@pytest.mark.parametrize("watch", ...)`` sets the poll."""
    watch = getattr(request, "param", 1.0)
    settings = load_settings(
        federation / "gateway.toml",
        overrides={
            "gateway.rest_port": 0,
            "gateway.grpc_port": 0,
            "gateway.data_dir": str(tmp_path / "data"),
            "trust.watch_seconds": watch,
        },
    )
    async with running_gateway(settings) as running:
        yield running


def certificate(federation: Path, member: str, name: str) -> x509.Certificate:
    return load_certificates(federation / "members" / member / f"{name}.crt")[0]


def publish_crl(federation: Path, revoked: list[x509.Certificate], *, number: int, at: datetime | None = None) -> None:
    """What an operator's CRL job does: sign a CRL with the root and replace the configured file (rename)."""
    root = load_certificates(federation / "ca" / "root-ca.crt")[0]
    key = load_private_key(federation / "ca" / "root-ca.key")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    listed = [*revoked, certificate(federation, "NL-DOUANE", "revoked-signing")]  # the dev CRL's own entry
    crl = build_crl(Issuer(root.subject, key), listed, at or datetime.now(UTC), number=number)
    write_crl(federation, crl.public_bytes(serialization.Encoding.PEM))


def write_crl(federation: Path, data: bytes) -> None:
    path = federation / "ca" / "root-ca.crl"
    fresh = path.with_suffix(".new")
    fresh.write_bytes(data)
    os.replace(fresh, path)


async def ledger(gateway: Gateway) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    return [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]


async def refused_within(call: Callable[[], Awaitable[object]], code: str) -> float:
    """Seconds until ``call`` is refused with ``code`` (it succeeds until then); fails after WITHIN_SECONDS."""
    started = time.monotonic()
    while True:
        refusal: GatewayClientError | None = None
        try:
            await call()
        except GatewayClientError as exc:
            refusal = exc
        if refusal is not None:
            assert refusal.code == code, (refusal.code, refusal.detail)
            return time.monotonic() - started
        assert time.monotonic() - started < WITHIN_SECONDS, f"still accepted after {WITHIN_SECONDS} s"
        await asyncio.sleep(0.1)


async def grpc_pull(client: GrpcGatewayClient) -> list[StreamedItem]:
    return [item async for item in client.inbox(deadline_seconds=10)]


def rejected(events: list[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "rejected" and e["code"] == code]


# -- item 1: a replaced CRL file is picked up, for certificates and tokens, over REST and gRPC ---------------------


async def test_a_replaced_crl_revokes_certificates_and_tokens_without_restart(
    gateway: Gateway, clients: ClientFactory, grpc_clients: GrpcClientFactory, federation: Path
) -> None:
    old_version = gateway.state.require_trust().version
    # PORT-NLRTM: an unbound token (no client certificate at the token endpoint), from its signing certificate.
    port_rest = clients("PORT-NLRTM", mtls=False)
    unbound = await port_rest.fetch_token()
    port_grpc = grpc_clients("PORT-NLRTM")  # over gRPC its own (valid) TLS certificate carries the token
    port_grpc.use_token(unbound)
    # CARRIER-COSCO: a token bound to its TLS client certificate, and plain mTLS.
    carrier_token = clients("CARRIER-COSCO")
    await carrier_token.fetch_token()
    carrier_mtls = clients("CARRIER-COSCO")
    carrier_grpc = grpc_clients("CARRIER-COSCO")
    assert (await port_rest.pull())["items"] == []
    assert await grpc_pull(port_grpc) == []
    assert (await carrier_token.pull())["items"] == []
    assert (await carrier_mtls.pull())["items"] == []
    assert await grpc_pull(carrier_grpc) == []

    # The federation revokes PORT-NLRTM's signing certificate and CARRIER-COSCO's TLS client certificate.
    publish_crl(
        federation,
        [certificate(federation, "PORT-NLRTM", "signing"), certificate(federation, "CARRIER-COSCO", "tls-client")],
        number=2,
    )
    took = await refused_within(port_rest.pull, "CERT_REVOKED")  # the token's assertion certificate, rechecked
    assert took < WITHIN_SECONDS
    for grpc_client in (port_grpc, carrier_grpc):
        with pytest.raises(GatewayClientError) as raised:
            await grpc_pull(grpc_client)
        assert raised.value.code == "CERT_REVOKED"
    for client in (carrier_token, carrier_mtls):  # the bound token's certificate is validated, not just matched
        with pytest.raises(GatewayClientError) as raised:
            await client.pull()
        assert raised.value.code == "CERT_REVOKED"
    with (
        structlog.testing.capture_logs() as logs,
        pytest.raises(GatewayClientError) as raised,  # and no new token comes from the revoked certificate
    ):
        await clients("PORT-NLRTM", mtls=False).fetch_token()
    assert raised.value.code == "TOKEN_INVALID"  # the token endpoint's one refusal (``gateway.core.tokens``)
    [token_refused] = [e for e in logs if e["event"] == "rejection counted"]  # which check: in the log only
    assert token_refused["detail"].startswith("CERT_REVOKED")
    assert (await clients("US-CBP").pull())["items"] == []  # everyone else carries on

    events = await ledger(gateway)
    [reload] = [e for e in events if e["event"] == "trust_reloaded"]
    assert reload["trigger"] == "watch" and reload["accepted"] is True
    assert reload["old_version"] == old_version != reload["new_version"] == gateway.state.require_trust().version
    assert reload["crl"]["number"] == 2 and reload["crl"]["revoked"] == 3
    counted = await summarized(gateway)  # authentication failures: counted per adapter (gateway/exchange/rejections.py)
    assert counted["CERT_REVOKED", "rest"] == 3 and counted["CERT_REVOKED", "grpc"] == 2
    assert counted["TOKEN_INVALID", "rest"] == 1


# -- item 1: the admin endpoint, refused files, and a caller without the admin right ------------------------------


@pytest.mark.parametrize("gateway", [0], indirect=True)  # no watcher: only the endpoint reloads
async def test_admin_reload_checks_then_swaps_and_refusals_leave_the_old_trust(
    gateway: Gateway, clients: ClientFactory, federation: Path
) -> None:
    gacc, douane = clients("CN-GACC"), clients("NL-DOUANE")
    port = clients("PORT-NLRTM", mtls=False)
    await port.fetch_token()
    served = gateway.state.require_trust().version
    original_crl = (federation / "ca" / "root-ca.crl").read_bytes()

    with pytest.raises(GatewayClientError) as raised:  # Cedar admin: the home administration only
        await douane.reload_trust()
    assert raised.value.code == "POLICY_DENIED"

    write_crl(federation, b"-----BEGIN X509 CRL-----\nnot a crl\n-----END X509 CRL-----\n")
    broken = await gacc.reload_trust()
    assert broken["accepted"] is False and broken["code"] == "UNAVAILABLE" and broken["new_version"] == ""
    publish_crl(federation, [], number=5, at=datetime.now(UTC) - timedelta(days=8))  # nextUpdate passed
    stale = await gacc.reload_trust()
    assert stale["accepted"] is False and "not current" in stale["detail"]
    assert gateway.state.require_trust().version == served  # the old trust keeps serving
    assert (await port.pull())["items"] == []

    publish_crl(federation, [certificate(federation, "PORT-NLRTM", "signing")], number=2)
    accepted = await gacc.reload_trust()
    assert accepted["accepted"] is True and accepted["by"] == "CN-GACC" and accepted["trigger"] == "admin"
    assert accepted["old_version"] == served != accepted["new_version"] == gateway.state.require_trust().version
    with pytest.raises(GatewayClientError) as raised:
        await port.pull()
    assert raised.value.code == "CERT_REVOKED"

    write_crl(federation, original_crl)  # replaying the older CRL (number 1) must not un-revoke anything
    replayed = await gacc.reload_trust()
    assert replayed["accepted"] is False and "older" in replayed["detail"]
    with pytest.raises(GatewayClientError) as raised:
        await port.pull()
    assert raised.value.code == "CERT_REVOKED"

    events = await ledger(gateway)
    reloads = [e for e in events if e["event"] == "trust_reloaded"]
    assert [e["accepted"] for e in reloads] == [False, False, True, False]
    assert {e["by"] for e in reloads} == {"CN-GACC"}
    [denied] = [e for e in rejected(events, "POLICY_DENIED") if e.get("action") == "admin"]
    assert denied["caller"] == "NL-DOUANE"


# -- item 1: SIGHUP on a running `customs-gateway serve` --------------------------------------------------------


async def test_sighup_reloads_the_crl_of_a_serving_gateway(tmp_path: Path) -> None:
    directory = tmp_path / "federation"
    init = await asyncio.create_subprocess_exec(*CLI, "init", str(directory), stdout=subprocess.DEVNULL)
    assert await init.wait() == 0
    port = free_port()
    config = directory / "gateway.toml"
    text = re.sub(r"rest_port = \d+", f"rest_port = {port}", config.read_text())
    text = re.sub(r"grpc_port = \d+", "grpc_port = 0", text)
    config.write_text(text.replace("[trust]\n", "[trust]\nwatch_seconds = 0\n", 1))  # SIGHUP only
    with (tmp_path / "serve.log").open("w") as log:
        process = await asyncio.create_subprocess_exec(
            *CLI, "serve", "--config", str(config), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        credentials = MemberCredentials.from_federation(directory, "PORT-NLRTM")
        async with GatewayClient(f"https://127.0.0.1:{port}", credentials, mtls=False) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    await client.fetch_token()
                    break
                except GatewayUnreachable:
                    alive = process.returncode is None and time.monotonic() < deadline
                    assert alive, (tmp_path / "serve.log").read_text()
                    await asyncio.sleep(0.2)
            assert (await client.pull())["items"] == []
            publish_crl(directory, [certificate(directory, "PORT-NLRTM", "signing")], number=2)
            await asyncio.sleep(1.5)  # no watcher: the replaced file alone changes nothing
            assert (await client.pull())["items"] == []
            process.send_signal(signal.SIGHUP)
            await refused_within(client.pull, "CERT_REVOKED")
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    events = [json.loads(line) for line in _ledger_rows(directory / "data" / "gateway.db")]
    [reload] = [e for e in events if e["event"] == "trust_reloaded"]
    assert reload["trigger"] == "sighup" and reload["accepted"] is True and reload["crl"]["number"] == 2
    assert next(e for e in events if e["event"] == "policy_reloaded")["trigger"] == "sighup"  # both reload


def _ledger_rows(database: Path) -> list[str]:
    import sqlite3  # noqa: PLC0415 - the subprocess test alone reads the file directly

    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return [r[0] for r in conn.execute("SELECT data FROM ledger ORDER BY idx")]


# -- item 2: the token's member must be the TLS certificate's -------------------------------------------------


async def test_a_token_of_one_member_over_the_tls_connection_of_another_is_refused(
    gateway: Gateway, clients: ClientFactory, grpc_clients: GrpcClientFactory, federation: Path
) -> None:
    unbound = await clients("PORT-NLRTM", mtls=False).fetch_token()
    owner = clients("PORT-NLRTM")
    owner._token = unbound
    assert (await owner.pull())["items"] == []  # its own TLS certificate: fine
    with structlog.testing.capture_logs() as logs:  # the detail of a counted refusal: in the log only
        carrier = clients("CARRIER-COSCO")
        carrier._token = unbound  # PORT-NLRTM's token on CARRIER-COSCO's mTLS connection
        with pytest.raises(GatewayClientError) as raised:
            await carrier.pull()
        assert raised.value.code == "TOKEN_INVALID"
        carrier_grpc = grpc_clients("CARRIER-COSCO")
        carrier_grpc.use_token(unbound)
        with pytest.raises(GatewayClientError) as raised:
            await grpc_pull(carrier_grpc)
        assert raised.value.code == "TOKEN_INVALID"
        # A token bound to PORT-NLRTM's certificate is refused on CARRIER-COSCO's too (the thumbprint differs).
        bound = await clients("PORT-NLRTM").fetch_token()
        carrier_grpc.use_token(bound)
        with pytest.raises(GatewayClientError) as raised:
            await grpc_pull(carrier_grpc)
        assert raised.value.code == "TOKEN_INVALID"
        # Nor is a token issued for PORT-NLRTM's assertion over CARRIER-COSCO's TLS connection.
        port_credentials = MemberCredentials.from_federation(federation, "PORT-NLRTM")
        carrier_tls = MemberCredentials.from_federation(federation, "CARRIER-COSCO")
        mixed = dataclasses.replace(port_credentials, tls_cert=carrier_tls.tls_cert, tls_key=carrier_tls.tls_key)
        async with GatewayClient(gateway.url, mixed) as client:
            with pytest.raises(GatewayClientError) as raised:
                await client.fetch_token()
        assert raised.value.code == "TOKEN_INVALID"

    # not authenticated (the token is refused): counted, by the adapter that received each
    # (gateway/exchange/rejections.py)
    assert await summarized(gateway) == {("TOKEN_INVALID", "rest"): 2, ("TOKEN_INVALID", "grpc"): 2}
    counted = [e for e in logs if e["event"] == "rejection counted"]
    assert {(e["adapter"], e["action"]) for e in counted} == {
        ("rest", "GET /v1/inbox"),
        ("grpc", "/cgw.v1.Exchange/Inbox"),
        ("rest", "POST /v1/token"),
    }
    assert sum("over the TLS connection of CARRIER-COSCO" in e["detail"] for e in counted) == 3
