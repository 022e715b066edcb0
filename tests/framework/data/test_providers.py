"""Bounded retries with backoff."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from framework.data.providers import RetrySpec, TransientProviderError, call_with_retries
from framework.errors import ProviderError


class Flaky:
    def __init__(self, failures, error=TransientProviderError):
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(f"boom {self.calls}")
        return "ok"


def test_transient_failures_are_retried_with_backoff():
    waits, seen = [], []
    action = Flaky(2)
    result = call_with_retries(
        action,
        RetrySpec(attempts=4, initial_delay=0.5),
        describe="x",
        sleep=waits.append,
        on_retry=lambda n, e: seen.append(n),
    )
    assert result == "ok" and action.calls == 3
    assert waits == [0.5, 1.0] and seen == [1, 2]


def test_attempts_are_bounded_and_the_error_says_so():
    waits = []
    action = Flaky(10)
    with pytest.raises(ProviderError, match="yahoo: fetch SPY failed after 3 attempt") as info:
        call_with_retries(
            action, RetrySpec(attempts=3), describe="yahoo: fetch SPY", sleep=waits.append
        )
    assert action.calls == 3 and len(waits) == 2
    assert not isinstance(info.value, TransientProviderError)


def test_permanent_errors_are_not_retried():
    action = Flaky(1, error=ProviderError)
    with pytest.raises(ProviderError, match="boom 1"):
        call_with_retries(action, RetrySpec(), describe="x", sleep=lambda s: None)
    assert action.calls == 1


@given(st.integers(1, 10), st.floats(0, 5), st.floats(0, 30), st.floats(1, 4))
def test_delays_are_bounded_and_non_decreasing(attempts, initial, cap, multiplier):
    delays = RetrySpec(attempts, initial, cap, multiplier).delays()
    assert len(delays) == attempts - 1
    assert all(0 <= d <= cap for d in delays)
    assert delays == sorted(delays)


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"initial_delay": -1}, {"multiplier": 0.5}])
def test_invalid_retry_spec(kwargs):
    with pytest.raises(ProviderError, match="invalid RetrySpec"):
        RetrySpec(**kwargs)
