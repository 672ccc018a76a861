"""The circuit breaker's states, driven by a fake clock."""

import pytest

from gateway.routing.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_opens_after_consecutive_failures(clock):
    b = CircuitBreaker(failure_threshold=3, cooldown_s=10, clock=clock)
    for _ in range(2):
        assert b.allow()
        b.record_failure()
    assert b.state == CLOSED
    b.record_success()  # a success resets the run
    b.record_failure()
    b.record_failure()
    assert b.state == CLOSED
    b.record_failure()
    assert b.state == OPEN
    assert not b.allow()


def test_cooldown_then_exactly_one_probe(clock):
    b = CircuitBreaker(failure_threshold=1, cooldown_s=10, clock=clock)
    b.record_failure()
    clock.advance(9.99)
    assert not b.allow() and b.state == OPEN
    clock.advance(0.01)
    assert b.allow() and b.state == HALF_OPEN
    assert not b.allow() and not b.allow()  # others wait for the probe's result
    b.record_success()
    assert b.state == CLOSED and b.allow() and b.allow()


def test_failed_probe_reopens_for_another_cooldown(clock):
    b = CircuitBreaker(failure_threshold=1, cooldown_s=10, clock=clock)
    b.record_failure()
    clock.advance(10)
    assert b.allow()
    b.record_failure()
    assert b.state == OPEN and not b.allow()
    clock.advance(5)
    assert not b.allow()
    clock.advance(5)
    assert b.allow() and b.state == HALF_OPEN
    assert b.opened_count == 2


def test_probe_that_never_reports_is_replaced(clock):
    b = CircuitBreaker(failure_threshold=1, cooldown_s=10, clock=clock)
    b.record_failure()
    clock.advance(10)
    assert b.allow()
    clock.advance(9)
    assert not b.allow()
    clock.advance(1)
    assert b.allow() and not b.allow()


def test_late_results_while_open_change_nothing(clock):
    b = CircuitBreaker(failure_threshold=1, cooldown_s=10, clock=clock)
    b.record_failure()
    b.record_success()
    assert b.state == OPEN
    b.record_failure()
    assert b.opened_count == 1


def test_error_rate_over_window(clock):
    b = CircuitBreaker(failure_threshold=None, error_rate=0.5, window_s=30, min_requests=10, clock=clock)
    for _ in range(4):
        b.record_success()
        b.record_failure()
    assert b.state == CLOSED  # 4/8: too few requests to judge
    b.record_success()
    b.record_failure()
    assert b.state == CLOSED  # 5/10 is not above 50%
    b.record_failure()
    assert b.state == OPEN  # 6/11
    assert b.snapshot()["window_failures"] == 6


def test_error_rate_forgets_old_requests(clock):
    b = CircuitBreaker(failure_threshold=None, error_rate=0.5, window_s=30, min_requests=4, clock=clock)
    for _ in range(3):
        b.record_failure()
    clock.advance(31)
    for _ in range(3):
        b.record_success()
    b.record_failure()
    assert b.state == CLOSED  # the old failures left the window: 1/4
    snap = b.snapshot()
    assert (snap["window_requests"], snap["window_failures"]) == (4, 1)


def test_success_in_half_open_clears_the_window(clock):
    b = CircuitBreaker(failure_threshold=None, error_rate=0.2, min_requests=5, cooldown_s=1, clock=clock)
    for _ in range(5):
        b.record_failure()
    assert b.state == OPEN
    clock.advance(1)
    assert b.allow()
    b.record_success()
    b.record_failure()
    assert b.state == CLOSED  # one failure in a fresh window is under min_requests


def test_snapshot(clock):
    b = CircuitBreaker(failure_threshold=2, error_rate=0.9, cooldown_s=30, clock=clock)
    assert b.snapshot() == {"state": "closed", "consecutive_failures": 0, "window_requests": 0,
                            "window_failures": 0, "error_rate": None, "retry_in_s": 0.0, "opened_count": 0}
    b.record_success()
    b.record_failure()
    b.record_failure()
    clock.advance(12)
    assert b.snapshot() == {"state": "open", "consecutive_failures": 2, "window_requests": 3,
                            "window_failures": 2, "error_rate": 0.6667, "retry_in_s": 18.0, "opened_count": 1}


def test_bad_settings():
    with pytest.raises(ValueError):
        CircuitBreaker(error_rate=1.5)
    with pytest.raises(ValueError):
        CircuitBreaker(window_s=0)


def test_router_compile_carries_breakers_per_target_and_changes_none():
    from gateway.config.schema import ModelConfig
    from gateway.routing.router import Router

    def models(failures: int) -> dict[str, ModelConfig]:
        return {"a": ModelConfig(targets=[{"provider": "p", "model": "m"}], breaker_failures=failures),
                "b": ModelConfig(targets=[{"provider": "p", "model": "n"}])}

    old = Router.compile(models(2), {})
    kept, other = old.breakers["p/m"], old.breakers["p/n"]
    kept.record_failure()
    kept.record_failure()
    assert kept.state == OPEN
    before = dict(old.breakers)
    same = Router.compile(models(2), {}, old.breakers)
    assert same.breakers["p/m"] is kept and same.breakers["p/n"] is other and kept.state == OPEN
    changed = Router.compile(models(1), {}, old.breakers)
    assert changed.breakers["p/m"] is not kept and changed.breakers["p/m"].failure_threshold == 1
    assert changed.breakers["p/m"].state == CLOSED and changed.breakers["p/n"] is other
    assert old.breakers == before and kept.failure_threshold == 2 and kept.state == OPEN  # nothing changed
