"""Retry delays: exponential with full jitter, Retry-After honoured and capped, the budget."""

from email.utils import formatdate

import pytest

from gateway.routing.backoff import RetryPolicy, parse_retry_after, retryable_status

NOW = 1_764_139_200.0


def test_exponential_without_jitter_caps_at_max():
    p = RetryPolicy(base_s=0.1, max_s=1.0, jitter=False)
    assert [p.delay(a) for a in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert p.delay(10_000) == 1.0  # no overflow on absurd attempt numbers


def test_full_jitter_draws_between_zero_and_the_ceiling():
    draws = iter([0.0, 0.5, 0.999])
    p = RetryPolicy(base_s=1.0, max_s=10.0, rng=lambda: next(draws))
    assert p.delay(3) == 0.0
    assert p.delay(3) == pytest.approx(2.0)
    assert p.delay(3) == pytest.approx(3.996)


def test_real_jitter_stays_in_range():
    p = RetryPolicy(base_s=0.1, max_s=5.0)
    for attempt in range(1, 10):
        ceiling = min(5.0, 0.1 * 2 ** (attempt - 1))
        assert all(0 <= p.delay(attempt) <= ceiling for _ in range(50))


@pytest.mark.parametrize(("value", "expected"), [
    ("2", 2.0), (" 0 ", 0.0), ("1.5", 1.5), ("-3", 0.0),
    (formatdate(NOW + 3, usegmt=True), 3.0), (formatdate(NOW - 60, usegmt=True), 0.0),
    ("", None), (None, None), ("soon", None), ("nan", None), ("inf", None),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_replaces_the_computed_delay_and_is_capped():
    p = RetryPolicy(base_s=0.1, max_s=5.0, rng=lambda: 0.5, now=lambda: NOW)
    assert p.delay(1, "2") == 2.0
    assert p.delay(1, "120") == 5.0
    assert p.delay(1, formatdate(NOW + 4, usegmt=True)) == pytest.approx(4.0)
    assert p.delay(1, "garbage") == pytest.approx(0.05)  # unreadable: computed as usual
    assert RetryPolicy(max_retry_after_s=30, now=lambda: NOW).delay(1, "120") == 30


def test_should_retry_counts_attempts_and_budget():
    p = RetryPolicy(max_attempts=3, retry_budget_s=2.0)
    assert p.should_retry(1, 0.0, 0.1)
    assert p.should_retry(2, 1.0, 1.0)
    assert not p.should_retry(3, 0.0, 0.0)  # three attempts made
    assert not p.should_retry(1, 1.5, 0.6)  # the wait would pass the budget


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
def test_retryable(status):
    assert retryable_status(status) and RetryPolicy().retryable_status(status)


@pytest.mark.parametrize("status", [200, 400, 401, 403, 404, 408, 413, 422, 501])
def test_not_retryable(status):
    assert not retryable_status(status)


def test_bad_settings():
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
