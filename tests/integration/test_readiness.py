"""/readyz semantics on real components: ready only with the store answering a read and taking a real write,
keys, trust list and policies loaded, the CRL current, and not draining; each failing component is named with
its reason. The expiry gauges are read from the current trust at scrape time."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio
import redis.exceptions
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from gateway.app.main import Gateway, SystemClock, load_state, running_gateway
from gateway.app.settings import load_settings
from gateway.core.payloads import MESSAGE_TYPES
from gateway.delivery.deadletters import DeadLetters
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.exchange.metrics import Metrics
from gateway.exchange.rejections import Rejections
from gateway.exchange.state import GatewayState
from gateway.infra.devpki import CRL_VALIDITY, create_federation
from gateway.infra.redis_store import RedisStore
from gateway.infra.sqlite import SqliteStore
from gateway.interfaces.protocols import Store
from gateway.ops.operations import Operations
from tests.integration.conftest import ClientFactory
from tests.integration.test_redis_crash import REDIS_SERVER, DurableRedis


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of the metric ``name``, by its sorted labels."""
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def operations_of(store: Store, state: GatewayState, clock: SystemClock, *, keys: bool = True) -> Operations:
    """The readiness service over ``store``, as the gateway wires it (its own metrics and dead-letter service)."""
    dead = DeadLetters(store=store, state=state, clock=clock, rejections=Rejections(store=store, clock=clock))
    return Operations(
        store=store,
        state=state,
        metrics=Metrics(MESSAGE_TYPES),
        dead_letters=dead,
        checkpoint_key_loaded=keys,
        clock=clock,
    )


async def test_each_missing_component_makes_the_gateway_unready(federation: Path, tmp_path: Path) -> None:
    settings = load_settings(federation / "gateway.toml", overrides={"gateway.data_dir": str(tmp_path)})
    loaded = load_state(settings)
    bare = GatewayState(
        member_id=loaded.member_id, issuer=loaded.issuer, identity=loaded.identity, limits=loaded.limits
    )
    store = await SqliteStore.open(tmp_path / "gateway.db")
    clock = SystemClock()

    def operations(state: GatewayState, *, keys: bool = True) -> Operations:
        return operations_of(store, state, clock, keys=keys)

    try:
        ready = await operations(loaded).readiness()
        assert (ready.ready, ready.reasons) == (True, {})
        assert ready.components == dict.fromkeys(
            ("store", "store_writes", "keys", "trust", "crl", "policies", "accepting"), True
        )
        unready = await operations(bare).readiness()
        assert not unready.ready
        assert unready.reasons == {
            "trust": "the trust list is not loaded",
            "crl": "the trust list is not loaded",
            "policies": "no policy set is loaded",
        }
        assert unready.components["store"] and unready.components["store_writes"]
        no_keys = await operations(loaded, keys=False).readiness()
        assert (no_keys.ready, no_keys.components["keys"]) == (False, False)
    finally:
        await store.close()
    closed = await operations(loaded).readiness()
    assert (closed.ready, closed.components["store"], closed.components["store_writes"]) == (False, False, False)


async def test_the_write_probe_is_a_real_durable_write_shared_for_its_cache_time(
    federation: Path, tmp_path: Path
) -> None:
    settings = load_settings(federation / "gateway.toml", overrides={"gateway.data_dir": str(tmp_path)})
    state = load_state(settings)
    store = await SqliteStore.open(tmp_path / "gateway.db")
    clock = SystemClock()
    operations = operations_of(store, state, clock)
    try:
        before = store.commits
        for _ in range(5):  # a burst of probes: one write
            assert (await operations.readiness()).ready
        assert store.commits == before + 1
        await asyncio.sleep(1.6)  # WRITE_PROBE_CACHE_SECONDS later, the next probe writes again
        assert (await operations.readiness()).ready
        assert store.commits == before + 2
    finally:
        await store.close()


async def test_a_stale_crl_warns_at_startup_and_makes_readyz_503_with_the_reason(tmp_path: Path) -> None:
    """A federation whose CRL passed its nextUpdate an hour ago (its certificates are still valid)."""
    issued = datetime.now(UTC) - CRL_VALIDITY - timedelta(hours=1)
    config = create_federation(tmp_path / "fed", now=issued)
    settings = load_settings(
        config, overrides={"gateway.rest_port": 0, "gateway.grpc_port": None, "gateway.data_dir": str(tmp_path / "d")}
    )
    with capture_logs() as logs:
        async with running_gateway(settings) as gateway:
            context = ssl.create_default_context(cafile=str(tmp_path / "fed/ca/root-ca.crt"))
            async with aiohttp.ClientSession() as session:
                async with session.get(gateway.url + "/readyz", ssl=context) as response:
                    assert response.status == 503
                    body = await response.json()
                async with session.get(gateway.url + "/metrics", ssl=context) as response:
                    text = await response.text()
    assert body["components"]["crl"] is False
    assert body["components"]["trust"] is True
    assert set(body["reasons"]) == {"crl"}  # nothing else is wrong with this gateway
    assert body["reasons"]["crl"].startswith("the CRL is past its nextUpdate (")
    warnings = [e for e in logs if e["log_level"] == "warning" and "CRL not current" in e["event"]]
    assert len(warnings) == 1, logs
    crl_seconds = samples(text, "cgw_crl_next_update_seconds")[()]
    assert -3700 < crl_seconds < -3500  # an hour (and the 5-minute backdate) past nextUpdate


async def test_certificate_expiry_gauges_name_the_gateway_and_each_member_seen(
    gateway: Gateway, clients: ClientFactory, federation: Path
) -> None:
    carrier = clients("CARRIER-COSCO")
    sent = await carrier.submit(
        "manifest.cargo.v1", ["CN-GACC"], to_bytes(cargo_manifest()), schema="cgw.v1.CargoManifest"
    )
    assert sent.status == 201
    assert gateway.operations is not None
    text, _ = await gateway.operations.metrics_text()
    expiry = samples(text.decode(), "cgw_certificate_expiry_seconds")
    now = datetime.now(UTC)

    def left(path: str) -> float:
        cert = x509.load_pem_x509_certificate((federation / path).read_bytes())
        return (cert.not_valid_after_utc - now).total_seconds()

    expected = {
        ("CN-GACC", "gateway-signing"): left("gateway/signing.crt"),
        ("CN-GACC", "gateway-tls"): left("gateway/tls-server.crt"),
        ("CARRIER-COSCO", "signing"): left("members/CARRIER-COSCO/signing.crt"),
        ("CARRIER-COSCO", "tls"): left("members/CARRIER-COSCO/tls-client.crt"),
    }
    got = {(dict(k)["member"], dict(k)["use"]): v for k, v in expiry.items()}
    assert got.keys() == expected.keys()  # members that presented nothing have no series yet
    for key, seconds in expected.items():
        assert abs(got[key] - seconds) < 60, key
    crl = samples(text.decode(), "cgw_crl_next_update_seconds")[()]
    assert 0 < crl <= CRL_VALIDITY.total_seconds()


async def fill(client: redis.asyncio.Redis) -> int:
    """Small values until Redis (noeviction) refuses one: its used memory is then at maxmemory."""
    for i in range(100_000):
        try:
            await client.set(f"filler:{i}", b"x" * 4096)
        except redis.exceptions.OutOfMemoryError:
            return i
    raise AssertionError("Redis never reached its maxmemory")


@pytest.fixture
def small_redis(tmp_path: Path) -> Iterator[DurableRedis]:
    """A durable redis-server of our own (free port, temp dir) with a 16 MB maxmemory and noeviction."""
    if REDIS_SERVER is None:
        pytest.skip("needs the redis-server binary")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = DurableRedis(tmp_path, port, options=("--maxmemory", "16mb"))
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.kill()


async def test_a_redis_at_maxmemory_or_down_makes_readyz_503_and_recovery_needs_no_restart(
    federation: Path, tmp_path: Path, small_redis: DurableRedis
) -> None:
    settings = load_settings(federation / "gateway.toml", overrides={"gateway.data_dir": str(tmp_path)})
    state = load_state(settings)
    store = await RedisStore.open(small_redis.url, key_prefix="cgw-ready")
    clock = SystemClock()
    operations = operations_of(store, state, clock)
    filler = redis.asyncio.Redis.from_url(small_redis.url)
    try:
        assert (await operations.readiness()).ready
        filled = await fill(filler)
        await asyncio.sleep(1.6)  # past the cached answer
        full = await operations.readiness()
        assert (full.ready, full.components["store"], full.components["store_writes"]) == (False, True, False)
        assert full.reasons["store_writes"].startswith("redis store: at maxmemory, writes refused (OOM)")
        assert set(full.reasons) == {"store_writes"}

        await filler.delete(*(f"filler:{i}" for i in range(filled)))
        await asyncio.sleep(1.6)
        assert (await operations.readiness()).ready  # memory back: ready again, same process

        small_redis.kill()
        await asyncio.sleep(1.6)
        down = await operations.readiness()
        assert (down.components["store"], down.components["store_writes"]) == (False, False)
        assert down.reasons["store"] == "the store does not answer a read"
    finally:
        await filler.aclose()
        await store.close()
