"""``[store]``: backend choice, Redis URL without credentials, key prefix, and the persistence refusal."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.app.settings import StoreSettings, load_settings
from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import Unavailable
from gateway.infra.backends import open_store
from gateway.infra.redis_store import RedisPersistence, RedisStore
from tests.redisenv import REDIS_URL

BASE = """
[gateway]
member_id = "CN-GACC"
origin = "cgw.test/ledger"
host = "127.0.0.1"
rest_port = 0
data_dir = "data"
[tls]
cert = "t.crt"
key = "t.key"
[trust]
anchors = "a.crt"
crl = "a.crl"
registry = "r.json"
[signing]
cert = "s.crt"
key = "s.key"
checkpoint_key = "c.key"
"""


def settings_with(tmp_path: Path, store: str) -> StoreSettings:
    path = tmp_path / "gateway.toml"
    path.write_text(BASE + store)
    return load_settings(path).store


def test_the_default_store_is_sqlite(tmp_path: Path) -> None:
    assert settings_with(tmp_path, "") == StoreSettings()
    assert StoreSettings().backend == "sqlite"


def test_redis_settings_are_read(tmp_path: Path) -> None:
    store = settings_with(
        tmp_path,
        '[store]\nbackend = "redis"\nredis_url = "rediss://redis.example:6380/2"\nkey_prefix = "cgw-prod"\n'
        'redis_password_file = "secrets/redis.pass"\nallow_no_persistence = true\n',
    )
    assert store == StoreSettings(
        backend="redis",
        redis_url="rediss://redis.example:6380/2",
        redis_password_file=tmp_path / "secrets/redis.pass",
        key_prefix="cgw-prod",
        allow_no_persistence=True,
    )


@pytest.mark.parametrize(
    ("store", "field"),
    [
        ('[store]\nbackend = "postgres"\n', "store.backend"),
        ('[store]\nredis_url = "redis://:secret@127.0.0.1:6379/0"\n', "store.redis_url"),
        ('[store]\nallow_no_persistence = "yes"\n', "store.allow_no_persistence"),
        ("[store]\nreplicas = 2\n", "store"),
    ],
)
def test_bad_store_settings_fail_closed(tmp_path: Path, store: str, field: str) -> None:
    with pytest.raises(Unavailable) as err:
        settings_with(tmp_path, store)
    assert err.value.field == field


def test_persistence_verdicts() -> None:
    assert RedisPersistence("yes", "always", "", "noeviction").durable
    assert RedisPersistence("yes", "everysec", "3600 1", "noeviction").durable
    rdb_only = RedisPersistence("no", "everysec", "3600 1", "noeviction")
    assert not rdb_only.durable
    assert "RDB snapshots only" in rdb_only.problem()
    evicting = RedisPersistence("yes", "always", "", "allkeys-lru")
    assert not evicting.durable
    assert "allkeys-lru" in evicting.problem()


@pytest.mark.redis
async def test_a_redis_without_persistence_is_refused_unless_allowed() -> None:
    """The machine's Redis runs without AOF (as CI's does): production settings must refuse it."""
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    probe = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
    try:
        if probe.persistence.durable:
            pytest.skip("this Redis has AOF and noeviction: nothing to refuse")
    finally:
        await probe.close()
    with pytest.raises(Unavailable) as err:
        await RedisStore.open(REDIS_URL, key_prefix=prefix)
    assert "appendonly" in err.value.detail
    assert err.value.field == "store.redis_url"


async def test_an_unreachable_redis_or_a_bad_prefix_fails_closed() -> None:
    with pytest.raises(Unavailable):
        await RedisStore.open("redis://127.0.0.1:1/0", key_prefix="cgw")
    with pytest.raises(Unavailable) as err:
        await RedisStore.open(REDIS_URL, key_prefix="{cgw}")
    assert err.value.field == "store.key_prefix"


@pytest.fixture
def password_redis() -> Iterator[int]:
    """A throw-away redis-server that requires the password ``s3cret``; yields its port."""
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--requirepass", "s3cret"],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield port
    finally:
        server.kill()
        server.wait(timeout=10)


async def test_the_password_file_must_be_private_and_is_sent(tmp_path: Path, password_redis: int) -> None:
    port = password_redis
    secret = tmp_path / "redis.pass"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    path = tmp_path / "gateway.toml"
    path.write_text(
        BASE + f'[store]\nbackend = "redis"\nredis_url = "redis://127.0.0.1:{port}/0"\n'
        'redis_password_file = "redis.pass"\nallow_no_persistence = true\n'
    )
    settings = load_settings(path)
    with pytest.raises(Unavailable) as err:
        await open_store(settings)
    assert err.value.field == "store.redis_password_file"
    secret.chmod(0o600)
    for _ in range(100):  # wait for the server to listen
        try:
            store = await open_store(settings)
            break
        except Unavailable:
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("redis-server did not start")
    await store.record(AuditEvent(EventKind.ADMIN, datetime.now(UTC), {"n": 1}))
    await store.close()
    secret.write_text("wrong\n")
    with pytest.raises(Unavailable):
        await open_store(settings)


def settings_with_watch(tmp_path: Path, value: str | None) -> Path:
    """``[trust] watch_seconds`` (gateway/ops/trustadmin.py) set to ``value``, or absent."""
    path = tmp_path / "gateway.toml"
    line = f"watch_seconds = {value}\n" if value is not None else ""
    path.write_text(BASE.replace('registry = "r.json"\n', f'registry = "r.json"\n{line}'))
    return path


@pytest.mark.parametrize(("value", "seconds"), [(None, 1.0), ("0", 0.0), ("0.25", 0.25), ("3600", 3600.0)])
def test_trust_watch_seconds(tmp_path: Path, value: str | None, seconds: float) -> None:
    assert load_settings(settings_with_watch(tmp_path, value)).trust_watch_seconds == seconds


@pytest.mark.parametrize("value", ["-1", "3601", "true", '"1"'])
def test_bad_trust_watch_seconds_fail_closed(tmp_path: Path, value: str) -> None:
    with pytest.raises(Unavailable) as err:
        load_settings(settings_with_watch(tmp_path, value))
    assert err.value.field == "trust.watch_seconds"
