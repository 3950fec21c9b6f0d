"""Session-wide test setup: tests marked ``redis`` skip, with the reason, when the test Redis does not answer."""

from __future__ import annotations

import pytest

from tests.redisenv import require_redis


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("redis") is not None:
        require_redis()
