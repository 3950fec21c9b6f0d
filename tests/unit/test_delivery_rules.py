"""Push delivery rules as pure functions: backoff with jitter, the outcome table, endpoint choice, crash points,
the [delivery] settings and bounded metric labels."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.app.settings import load_settings
from gateway.core.errors import Unavailable
from gateway.core.model import Endpoint, Member, MemberKind
from gateway.delivery.worker import backoff_delay, decide, push_endpoint, retry_span
from gateway.exchange.faults import CRASH_POINTS, CrashPoint
from gateway.exchange.metrics import Metrics
from gateway.interfaces.config import Delivery
from gateway.interfaces.protocols import DeliveryAttempt, DeliveryOutcome


@given(attempts=st.integers(1, 10_000), seed=st.integers(0, 2**32))
def test_backoff_is_exponential_capped_and_half_jittered(attempts: int, seed: int) -> None:
    delay = backoff_delay(attempts, base=1.0, cap=300.0, rng=random.Random(seed))
    ceiling = min(300.0, 2.0 ** min(attempts - 1, 62))
    assert ceiling / 2 <= delay <= ceiling


def test_backoff_doubles_and_jitter_spreads_retries() -> None:
    rng = random.Random(7)
    assert [round(backoff_delay(n, base=1.0, cap=1e9, rng=_Fixed()), 3) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert len({backoff_delay(3, base=1.0, cap=60.0, rng=rng) for _ in range(50)}) > 40


def test_the_default_retries_of_an_item_span_at_least_an_hour() -> None:
    """Issue 17 item 8: a receiver outage of a minute or two (or of most of an hour) must dead-letter nothing."""
    config = Delivery()
    shortest, longest = retry_span(
        config.max_attempts, base=config.backoff_base_seconds, cap=config.backoff_max_seconds
    )
    assert (shortest, longest) == (3661.5, 7323.0)  # README "Push delivery": 61 min to 2 h 2 min
    # the span is the sum of the backoff bounds between the attempts, whatever the jitter draws
    for seed in range(20):
        rng = random.Random(seed)
        total = sum(
            backoff_delay(n, base=config.backoff_base_seconds, cap=config.backoff_max_seconds, rng=rng)
            for n in range(1, config.max_attempts)
        )
        assert shortest <= total <= longest
    assert retry_span(1, base=1.0, cap=10.0) == (0.0, 0.0)  # one attempt: no retry at all


class _Fixed(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


DELIVERED = DeliveryAttempt(delivered=True, retryable=False, status="200")
RETRYABLE = DeliveryAttempt(delivered=False, retryable=True, status="503")
PERMANENT = DeliveryAttempt(delivered=False, retryable=False, status="410")


@pytest.mark.parametrize(
    ("attempt", "attempts", "expected"),
    [
        (DELIVERED, 1, DeliveryOutcome.DELIVERED),
        (DELIVERED, 8, DeliveryOutcome.DELIVERED),
        (RETRYABLE, 1, DeliveryOutcome.RETRY),
        (RETRYABLE, 7, DeliveryOutcome.RETRY),
        (RETRYABLE, 8, DeliveryOutcome.DEAD),
        (PERMANENT, 1, DeliveryOutcome.DEAD),
    ],
)
def test_outcome_table(attempt: DeliveryAttempt, attempts: int, expected: DeliveryOutcome) -> None:
    assert decide(attempt, attempts, max_attempts=8) is expected


def test_the_first_pushable_endpoint_is_used_and_pull_members_are_not_pushed() -> None:
    def member(*endpoints: Endpoint) -> Member:
        return Member("PORT-NLRTM", "Port", MemberKind.PORT, "NL", endpoints=endpoints)

    hook = Endpoint("webhook", "https://port.example/hook")
    soap = Endpoint("soap", "https://port.example/soap")
    assert push_endpoint(member(Endpoint("pull"), hook, soap), ["webhook", "soap"]) == hook
    assert push_endpoint(member(soap, hook), ["webhook"]) == hook
    assert push_endpoint(member(Endpoint("pull")), ["webhook", "soap"]) is None


def test_crash_points_are_a_closed_set() -> None:
    assert CrashPoint.parse("").name == ""
    for name in CRASH_POINTS:
        assert CrashPoint.parse(name).name == name
    with pytest.raises(Unavailable):
        CrashPoint.parse("after-persit")
    with pytest.raises(Unavailable):
        CrashPoint().hit("no-such-point")
    CrashPoint("before-delivery").hit("after-persist")  # another point: no crash


def test_delivery_settings_parse_with_defaults_and_refuse_nonsense(tmp_path: Path) -> None:
    base = """
[gateway]
member_id = "CN-GACC"
origin = "o"
host = "127.0.0.1"
rest_port = 0
data_dir = "data"
[tls]
cert = "c"
key = "k"
[trust]
anchors = "a"
crl = "c"
registry = "r"
[signing]
cert = "c"
key = "k"
checkpoint_key = "k"
"""
    config = tmp_path / "gateway.toml"
    config.write_text(base)
    assert load_settings(config).delivery == Delivery()
    config.write_text(base + '[delivery]\nmax_attempts = 3\nbackoff_base_seconds = 2\nca_file = "extra.pem"\n')
    delivery = load_settings(config).delivery
    assert (delivery.max_attempts, delivery.backoff_base_seconds) == (3, 2.0)
    assert isinstance(delivery.backoff_base_seconds, float)
    assert delivery.ca_file == tmp_path / "extra.pem"
    for bad in ("max_attempts = 0", "timeout_seconds = -1", "max_attempts = true", "retries = 3"):
        config.write_text(base + f"[delivery]\n{bad}\n")
        with pytest.raises(Unavailable):
            load_settings(config)


def test_metric_labels_stay_bounded() -> None:
    metrics = Metrics(["manifest.cargo.v1"])
    metrics.submitted(adapter="rest", message_type="manifest.cargo.v1", decision="accepted", seconds=0.01)
    metrics.submitted(adapter="rest", message_type="x" * 500, decision="rejected", seconds=0.01, code="SCHEMA_INVALID")
    metrics.submitted(adapter="rest", message_type=None, decision="rejected", seconds=0.01, code="UNAUTHENTICATED")
    metrics.delivery(kind="webhook", outcome="dead", seconds=0.5)
    text = metrics.render()[0].decode()
    assert 'cgw_messages_total{adapter="rest",decision="rejected",type="other"} 2.0' in text
    assert 'cgw_rejections_total{code="SCHEMA_INVALID"} 1.0' in text
    assert 'cgw_dead_lettered_total{kind="webhook"} 1.0' in text
    assert "x" * 20 not in text
