"""The provider interface for remote bar sources, and bounded retries with backoff.

A provider turns ``(symbol, start, end, timeframe)`` into a canonical frame (UTC close-time index,
float64 ``open, high, low, close, volume``). It raises :class:`TransientProviderError` for failures
worth retrying (network errors, HTTP 429/5xx, rate limits) and
:class:`~framework.errors.ProviderError` for everything else (bad symbol, bad credentials).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import pandas as pd

from framework.data.frames import Timeframe
from framework.errors import ProviderError
from framework.types import SymbolInfo

T = TypeVar("T")


class TransientProviderError(ProviderError):
    """A provider call failed in a way that may succeed if repeated (network, 429, 5xx)."""


class Provider(Protocol):
    """A remote source of bars (see the module docstring for the contract)."""

    name: str

    def fetch(
        self,
        symbol: str,
        start: pd.Timestamp | None,
        end: pd.Timestamp | None,
        timeframe: Timeframe,
    ) -> pd.DataFrame:
        """Bars of ``symbol`` whose session/bar falls in ``[start, end]`` (naive UTC dates or
        times, either may be None), as a canonical frame; empty when there are none."""
        ...

    def describe(self, symbol: str, timeframe: Timeframe) -> SymbolInfo:
        """Source text, adjustment flag and basis recorded with fetched bars."""
        ...


@dataclass(frozen=True)
class RetrySpec:
    """Bounded retries with exponential backoff.

    Attributes
    ----------
    attempts : int
        Total tries including the first (>= 1).
    initial_delay : float
        Seconds before the second try; doubled (``multiplier``) after each failure.
    max_delay : float
        Upper bound on one wait, in seconds.
    multiplier : float
        Backoff growth factor.
    """

    attempts: int = 4
    initial_delay: float = 1.0
    max_delay: float = 16.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_delay < 0 or self.max_delay < 0 or self.multiplier < 1:
            raise ProviderError(
                f"invalid RetrySpec {self!r}; expected attempts >= 1, delays >= 0 and "
                "multiplier >= 1."
            )

    def delays(self) -> list[float]:
        """The waits between consecutive tries (``attempts - 1`` of them)."""
        return [
            min(self.initial_delay * self.multiplier**k, self.max_delay)
            for k in range(self.attempts - 1)
        ]


def call_with_retries(
    action: Callable[[], T],
    spec: RetrySpec,
    *,
    describe: str,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, Exception], None] | None = None,
) -> T:
    """Run ``action``, repeating it after :class:`TransientProviderError` up to ``spec.attempts``.

    Parameters
    ----------
    action : callable
        The call to make; it must raise :class:`TransientProviderError` for retryable failures.
    spec : RetrySpec
        Number of attempts and backoff.
    describe : str
        What is being done, for the final error message (e.g. ``"yahoo: fetch SPY"``).
    sleep : callable
        Waits between attempts (injectable for tests).
    on_retry : callable, optional
        Called with ``(attempt_number, error)`` before each wait.

    Raises
    ------
    ProviderError
        The last transient error wrapped with the attempt count, or any permanent error as is.
    """
    delays = spec.delays()
    attempt = 1
    while True:
        try:
            return action()
        except TransientProviderError as exc:
            if attempt >= spec.attempts:
                raise ProviderError(
                    f"{describe} failed after {spec.attempts} attempt(s): {exc}. Check the "
                    "network connection or try again later."
                ) from exc
            if on_retry is not None:
                on_retry(attempt, exc)
            sleep(delays[attempt - 1])
            attempt += 1
