"""Session-wide test setup: tests marked ``redis`` skip, with the reason, when the test Redis does not answer; no
logger is cached by a logging configuration an in-process CLI run installs."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from tests.redisenv import require_redis


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("redis") is not None:
        require_redis()


@pytest.fixture(autouse=True)
def _uncached_loggers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test that runs the CLI in-process (``gateway.ops.telemetry.configure_logging``) would make every module
    logger first used meanwhile keep that configuration for the rest of the session (structlog's
    ``cache_logger_on_first_use``), so a later test's ``capture_logs`` would miss its lines depending on which
    background log line happened to come first. Why here: caching is right for a serving process, wrong across tests.
    """
    configure = structlog.configure

    def uncached(**settings: Any) -> None:
        configure(**(settings | {"cache_logger_on_first_use": False}))

    monkeypatch.setattr(structlog, "configure", uncached)
