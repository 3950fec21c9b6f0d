"""Startup persistence checks on a real redis-server of our own (a free port, a temp dir; never the shared
Redis at 6379): ``appendfsync no`` is refused like the other unsafe settings, unless ``allow_no_persistence``."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core.errors import Unavailable
from gateway.infra.redis_store import RedisStore
from tests.integration.test_redis_crash import REDIS_SERVER, DurableRedis

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="needs the redis-server binary")


@pytest.fixture
def redis_fsync_no(tmp_path: Path) -> Iterator[DurableRedis]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = DurableRedis(tmp_path, port, options=("--appendfsync", "no"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def test_appendfsync_no_is_refused_at_startup_unless_allow_no_persistence(
    redis_fsync_no: DurableRedis,
) -> None:
    with pytest.raises(Unavailable) as refused:
        await RedisStore.open(redis_fsync_no.url, key_prefix="cgw-fsync-no")
    assert "appendfsync no" in refused.value.detail
    assert refused.value.field == "store.redis_url"

    store = await RedisStore.open(redis_fsync_no.url, key_prefix="cgw-fsync-no", allow_no_persistence=True)
    try:
        assert (store.persistence.appendonly, store.persistence.appendfsync) == ("yes", "no")
        assert not store.persistence.durable
    finally:
        await store.close()
