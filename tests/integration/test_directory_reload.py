"""Federation directory hot reload with real gateways (issue 19; gateway/ops/directoryadmin.py).

CN-GACC (A) and NL-DOUANE (B) run with directory version 1 (``init --peers 2``). The operator then adds a third
administration, US-CBP (C), and signs version 2 over the same file: A picks it up by its file watch, without a
restart. From then on A routes US-CBP's messages to C and relays them (C's signed receipt comes back), its
witness cosigns C's checkpoints, and its REST and gRPC listeners complete the mutual TLS handshake with C's
gateway certificate (which chains to a CA A had never heard of at startup). Replacing the file with version 1
again (a rollback), with a newer version signed by another key, or with an expired one is refused and ledgered,
and version 2 keeps serving."""

from __future__ import annotations

import asyncio
import json
import ssl
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric import ec
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.app.cli import main as cli_main
from gateway.app.federationtool import add_administration, init_peers
from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import Settings, load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.core.cosignature import verify_cosigned
from gateway.core.directory import directory_to_json, sign_directory
from gateway.core.payloads import MESSAGE_TYPES
from gateway.demo.federation import free_base_port
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.devpki import RELAY_CLIENT, peer_administrations
from gateway.infra.federationfiles import load_operator_key, read_directory
from gateway.infra.files import load_checkpoint_key, load_private_key, write_public
from tests.integration.federationpair import eventually, free_port

MANIFEST = "manifest.cargo.v1"
CARRIER = "CARRIER-COSCO"


def _settings(fed: Path, data: Path) -> Settings:
    return load_settings(
        fed / "gateway.toml",
        overrides={
            "gateway.data_dir": str(data),
            "gateway.grpc_port": free_port(),
            "trust.watch_seconds": 0.2,
            "delivery.poll_interval_seconds": 0.1,
        },
    )


async def _reloads(gateway: Gateway) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    events = [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]
    return [e for e in events if e["event"] == "directory_reloaded"]


async def _nth_reload(gateway: Gateway, n: int) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        reloads = await _reloads(gateway)
        return reloads[n - 1] if len(reloads) >= n else None

    event: dict[str, Any] = await eventually(found)
    return event


async def _sign(ops: Path) -> int:
    """``customs-gateway federation sign`` (the CLI runs its own event loop: in a thread)."""
    code = await asyncio.to_thread(cli_main, ["federation", "sign", str(ops)])
    structlog.reset_defaults()  # as in tests/integration/federationpair.py
    return code


def _replace(path: Path, data: bytes) -> None:
    """As an operator publishes a file: beside it, then renamed over it."""
    write_public(path, data)


def _client_tls(fed: Path, server_ca: Path) -> ssl.SSLContext:
    """C's gateway client identity (its own CA) towards A's listener (A's CA)."""
    context = ssl.create_default_context(cafile=str(server_ca))
    context.load_cert_chain(str(fed / f"{RELAY_CLIENT}.crt"), str(fed / f"{RELAY_CLIENT}.key"))
    return context


async def _rest_handshake(url: str, context: ssl.SSLContext) -> int | str:
    """A request over a connection with C's client certificate: the status, or the error if TLS refused it."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.post(url + "/witness/add-checkpoint", data=b"old 0\n", ssl=context) as response,
        ):
            return response.status
    except aiohttp.ClientError as exc:
        return type(exc).__name__


def _grpc_credentials(fed: Path, server_ca: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=server_ca.read_bytes(),
        private_key=(fed / f"{RELAY_CLIENT}.key").read_bytes(),
        certificate_chain=(fed / f"{RELAY_CLIENT}.crt").read_bytes(),
    )


async def _grpc_handshake(target: str, fed: Path, server_ca: Path) -> bool:
    credentials = _grpc_credentials(fed, server_ca)
    async with grpc.aio.secure_channel(target, credentials) as channel:
        try:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.aio.AioRpcError:
            return False
        return True


async def test_a_newer_directory_is_taken_while_running_and_a_rollback_is_refused(tmp_path: Path) -> None:
    base = free_base_port(6)
    out = tmp_path / "peers"
    cn, nl = (config.parent for config in init_peers(out, base_port=base))
    ops = out / "ops"
    signed = ops / "directory.jws"
    version_1 = signed.read_bytes()
    async with (
        running_gateway(_settings(nl, tmp_path / "b")) as b,
        running_gateway(_settings(cn, tmp_path / "a")) as a,
    ):
        assert a.directory is not None and a.directory.current.version == 1
        assert a.grpc_target is not None

        # the operator adds US-CBP and signs version 2 over the file every gateway reads
        us = add_administration(out, ops, peer_administrations(base, 3)[2]).parent
        c_tls = _client_tls(us, cn / "ca" / "root-ca.crt")
        # before: A's listeners refuse C's gateway certificate at the handshake (its CA is unknown to A)
        assert await _rest_handshake(a.url, c_tls) in ("ClientOSError", "ServerDisconnectedError", "ClientSSLError")
        assert not await _grpc_handshake(a.grpc_target, us, cn / "ca" / "root-ca.crt")
        assert await _sign(ops) == 0
        reload = await _nth_reload(a, 1)
        assert reload["accepted"] is True and reload["trigger"] == "watch"
        assert (reload["old_version"], reload["new_version"]) == (1, 2)
        assert reload["gateways"] == ["CN-GACC", "NL-DOUANE", "US-CBP"]
        assert a.directory.current.version == 2
        assert (await _nth_reload(b, 1))["accepted"] is True  # B watches the same file
        # C's gateway certificate (a CA A did not know at startup) now completes A's handshakes, REST and gRPC
        assert await _rest_handshake(a.url, c_tls) == 400  # the witness read the (malformed) request
        assert await _grpc_handshake(a.grpc_target, us, cn / "ca" / "root-ca.crt")

        async with running_gateway(_settings(us, tmp_path / "c")) as c:
            assert c.witnessing is not None
            # A's witness cosigns C's checkpoints (C submits over mutual TLS with its client certificate)
            head = await c.witnessing.cosigner.round()
            key_c = load_checkpoint_key(us / "gateway" / "checkpoint.key")
            directory = a.directory.current
            witnesses = [directory.gateways[g].witness for g in ("CN-GACC", "NL-DOUANE")]
            origin_c = directory.gateways["US-CBP"].origin
            _, _, found = verify_cosigned(head.note, origin_c, [key_c.public_key()], witnesses)
            assert sorted(w.witness for w in found) == sorted(w.vkey for w in witnesses)

            # A routes US-CBP's messages to C now, and relays them with C's signed receipt coming back
            credentials = MemberCredentials.from_federation(cn, CARRIER)
            async with GatewayClient(a.url, credentials) as carrier:
                manifest = to_bytes(cargo_manifest("M-TO-US"))
                sent = await carrier.submit(MANIFEST, ["US-CBP"], manifest, schema=MESSAGE_TYPES[MANIFEST].schema)
                assert sent.status == 201
                message_id = str(sent.body["message_id"])

                async def delivered() -> dict[str, Any] | None:
                    status = await carrier.status(CARRIER, message_id)
                    [state] = [s for s in status["recipients"] if s["member"] == "US-CBP"]
                    return state if state["state"] == "delivered" else None

                state = await eventually(delivered)
                assert state["peer"] == "US-CBP" and state["delivery"]["receipt"]

                # a rollback to version 1, a newer version signed by another key, an expired one: each refused
                _replace(signed, version_1)
                refused = await _nth_reload(a, 2)
                assert refused["accepted"] is False and refused["old_version"] == 2
                assert "older than the accepted version 2" in refused["detail"]
                current = read_directory(signed, load_operator_key(ops / "operator.pub"), datetime.now(UTC))
                payload = directory_to_json(a.directory.current) | {"version": 3}
                _replace(signed, (sign_directory(payload, ec.generate_private_key(ec.SECP256R1())) + "\n").encode())
                refused = await _nth_reload(a, 3)
                assert refused["accepted"] is False and refused["code"] == "UNAVAILABLE"
                assert "Signature verification failed" in refused["detail"]
                operator = load_private_key(ops / "operator.key")
                assert isinstance(operator, ec.EllipticCurvePrivateKey)
                expired = payload | {"issued_at": "2020-01-01T00:00:00Z", "not_after": "2021-01-01T00:00:00Z"}
                _replace(signed, (sign_directory(expired, operator) + "\n").encode())
                refused = await _nth_reload(a, 4)
                assert refused["accepted"] is False and "expired" in refused["detail"]
                assert current.version == 1 and a.directory.current.version == 2  # version 2 still serves

                sent = await carrier.submit(
                    MANIFEST, ["US-CBP"], to_bytes(cargo_manifest("M-AFTER")), schema=MESSAGE_TYPES[MANIFEST].schema
                )
                message_id = str(sent.body["message_id"])
                await eventually(delivered)
        metrics, _ = await a.operations.metrics_text()  # type: ignore[union-attr]
        assert b'cgw_directory_reloads_total{outcome="accepted"} 1.0' in metrics
        assert b'cgw_directory_reloads_total{outcome="refused"} 3.0' in metrics
        assert b"cgw_directory_version 2.0" in metrics


@pytest.mark.parametrize("trigger", ["sighup"])
async def test_a_directory_that_drops_this_gateway_is_refused(tmp_path: Path, trigger: str) -> None:
    """The new directory must still list this gateway as it runs (its origin, checkpoint and witness keys)."""
    out = tmp_path / "peers"
    cn, _ = (config.parent for config in init_peers(out, base_port=free_base_port()))
    ops = out / "ops"
    async with running_gateway(_settings(cn, tmp_path / "a")) as a:
        assert a.directory is not None
        draft = json.loads((ops / "directory.json").read_text())
        draft["gateways"] = [g for g in draft["gateways"] if g["id"] != "CN-GACC"]
        (ops / "directory.json").write_text(json.dumps(draft))
        assert await _sign(ops) == 0
        result = await a.directory.reload(trigger)
        assert not result.accepted and result.code == "UNAVAILABLE"
        assert "does not list this gateway as CN-GACC" in result.detail
        assert a.directory.current.version == 1
        # the refused version was not recorded as accepted: the operator can still publish a fixed version 3
        accepted = json.loads((tmp_path / "a" / "directory.accepted").read_text())
        assert accepted["version"] == 1
