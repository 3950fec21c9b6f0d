"""The one way the gateway's Redis-backed stores beside the message store connect (port streams, witness state).

Rule 1: every command has a socket timeout and redis-py never re-sends a command on its own (a lost reply is
        ambiguous: the caller gets ``Unavailable`` and decides), as ``redis_store`` does for the message store.
Rule 2: a URL redis-py cannot read is ``Unavailable`` on ``store.redis_url``, naming the store that asked.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.core.errors import Unavailable

SOCKET_TIMEOUT_SECONDS = 10.0


def text_client(url: str, *, password: str | None, what: str, max_connections: int | None = None) -> aioredis.Redis:
    """A client answering ``str`` values (Rules 1-2); ``what`` names the store in the error."""
    try:
        return aioredis.Redis.from_url(
            url,
            decode_responses=True,
            password=password,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
            max_connections=max_connections,
            retry=AsyncRetry(NoBackoff(), 0),
        )
    except (ValueError, RedisError) as exc:
        raise Unavailable(f"{what}: bad redis_url: {exc}", field="store.redis_url") from exc
