"""The test Redis, for every test that needs one: its URL and the skip when it does not answer.

``CGW_TEST_REDIS_URL`` names it (default ``redis://127.0.0.1:6379/0``, what CI runs). Tests marked ``redis``
(whole modules, or the ``redis`` parameter of a backend fixture) skip with a reason naming the URL and the variable
when nothing answers there (tests/conftest.py); each test works under its own key prefix and deletes it.
"""

from __future__ import annotations

import os
from functools import cache

import pytest
import redis

REDIS_URL_VARIABLE = "CGW_TEST_REDIS_URL"
REDIS_URL = os.environ.get(REDIS_URL_VARIABLE, "redis://127.0.0.1:6379/0")


@cache
def redis_unavailable() -> str:
    """Why the test Redis cannot be used ("" when it answers a PING); asked once per session."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"no Redis answers at {REDIS_URL} ({exc}); start one there or set {REDIS_URL_VARIABLE} to one"
    finally:
        client.close()
    return ""


def require_redis() -> None:
    if reason := redis_unavailable():
        pytest.skip(reason)


# The ``redis`` parameter of a backend fixture that runs on SQLite and on Redis.
REDIS_PARAM = pytest.param("redis", marks=pytest.mark.redis)
