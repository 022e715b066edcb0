"""Go-live readiness: the paper record against configurable criteria and red flags.

Every measured value comes from :func:`framework.paper_metrics.paper_metrics` over the whole
record, formatted as the reports format it. A trade statistic measured on fewer than
``MIN_TRADES`` closed trades does not pass, whatever its value: the row says so and shows the
bootstrap confidence interval instead of pretending to be significant.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from framework.errors import ConfigError, unknown_name_message
from framework.paper_metrics import paper_metrics, uptime_detail
from framework.paper_record import PaperRecord
from reports.paper_report import interval, num, pct

CRITERION, RED_FLAG = "criterion", "red flag"


@dataclass(frozen=True)
class ReadinessSpec:
    """Go-live thresholds (defaults from issue 8). Fractions are plain numbers (0.6 = 60%).

    Criteria: ``min_months`` of paper trading, ``min_win_rate``, ``min_sharpe`` (strictly
    above), ``max_drawdown`` (strictly below), ``min_profit_factor`` (strictly above), no
    unresolved failures, ``min_uptime`` (strictly above). Red flags: win rate below
    ``flag_win_rate`` after ``flag_after_trades`` trades, ``flag_losing_weeks`` losing weeks in
    a row, drawdown above ``flag_drawdown``, more than ``max_breaker_trips`` breaker trips,
    more than ``max_crashes`` crashes.
    """

    min_months: float = 3.0
    min_win_rate: float = 0.60
    min_sharpe: float = 1.0
    max_drawdown: float = 0.20
    min_profit_factor: float = 1.5
    min_uptime: float = 0.95
    flag_win_rate: float = 0.40
    flag_after_trades: int = 30
    flag_losing_weeks: int = 2
    flag_drawdown: float = 0.25
    max_breaker_trips: int = 1
    max_crashes: int = 2

    def __post_init__(self) -> None:
        for name in ("min_win_rate", "max_drawdown", "min_uptime", "flag_win_rate", "flag_drawdown"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise ConfigError(f"readiness {name}={value!r}; expected a fraction in [0, 1] "
                                  "(e.g. 0.6 for 60%).")
        if not (isinstance(self.min_sharpe, int | float) and math.isfinite(self.min_sharpe)):
            raise ConfigError(f"readiness min_sharpe={self.min_sharpe!r}; expected a finite number.")
        for name in ("min_months", "min_profit_factor", "flag_after_trades",
                     "flag_losing_weeks", "max_breaker_trips", "max_crashes"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"readiness {name}={value!r}; expected a number >= 0.")

    def with_overrides(self, overrides: Mapping[str, str | float]) -> ReadinessSpec:
        """A copy with ``name=value`` overrides (values may be strings from the command line)."""
        fields = {f.name: f.type for f in dataclasses.fields(self)}
        values = {}
        for name, raw in overrides.items():
            if name not in fields:
                raise ConfigError(unknown_name_message("readiness criterion", name, fields))
            try:
                number = float(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"readiness {name}={raw!r}; expected a number.") from None
            values[name] = int(number) if fields[name] == "int" and number.is_integer() else number
        return dataclasses.replace(self, **values)


@dataclass(frozen=True)
class ReadinessRow:
    """One check: what was measured, against what, and whether it passed."""

    name: str
    kind: str
    measured: str
    threshold: str
    passed: bool
    note: str = ""


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``["min_sharpe=1.5", ...]`` -> ``{"min_sharpe": "1.5"}``."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--criterion expects NAME=VALUE; got {pair!r} (e.g. "
                              "--criterion min_sharpe=1.5).")
        name, value = (s.strip() for s in pair.split("=", 1))
        out[name] = value
    return out


def evaluate(record: PaperRecord, spec: ReadinessSpec | None = None,
             measured: Mapping | None = None) -> list[ReadinessRow]:
    """Every criterion and red flag of ``spec`` on the whole record.

    Parameters
    ----------
    record : PaperRecord
    spec : ReadinessSpec, optional
    measured : mapping, optional
        ``paper_metrics(record)`` when already computed.

    Returns
    -------
    list of ReadinessRow
        Criteria first, then red flags (a red flag "passes" when it is not raised).
    """
    spec = spec or ReadinessSpec()
    m = dict(measured) if measured is not None else paper_metrics(record)
    return _criteria(m, spec) + _red_flags(m, spec)


def is_ready(rows: Sequence[ReadinessRow]) -> bool:
    """Ready to go live: every criterion passed and no red flag raised."""
    return all(row.passed for row in rows)


def _ok(value: float, test) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and bool(test(value))


def _few(m: Mapping) -> str:
    return (f"too few trades to be significant ({m['trades']} < {m['min_trades']})"
            if m["too_few_trades"] else "")


def _criteria(m: Mapping, spec: ReadinessSpec) -> list[ReadinessRow]:
    dd = abs(m["cumulative_max_drawdown"]) if _ok(m["cumulative_max_drawdown"], lambda v: True) else math.nan
    failures = m["unresolved_failures"]
    return [
        ReadinessRow("paper trading period", CRITERION, f"{num(m['months'], 1)} months",
                     f">= {num(spec.min_months, 1)} months", _ok(m["months"], lambda v: v >= spec.min_months)),
        ReadinessRow("win rate", CRITERION, pct(m["win_rate"]), f">= {pct(spec.min_win_rate, 0)}",
                     _ok(m["win_rate"], lambda v: v >= spec.min_win_rate) and not m["too_few_trades"],
                     _join(f"95% CI {interval(m['win_rate_ci'], pct)}", _few(m))),
        ReadinessRow("Sharpe", CRITERION, num(m["sharpe"]), f"> {num(spec.min_sharpe)}",
                     _ok(m["sharpe"], lambda v: v > spec.min_sharpe),
                     f"95% CI {interval(m['sharpe_ci'])}"),
        ReadinessRow("max drawdown", CRITERION, pct(m["cumulative_max_drawdown"]),
                     f"depth < {pct(spec.max_drawdown, 0)}", _ok(dd, lambda v: v < spec.max_drawdown)),
        ReadinessRow("profit factor", CRITERION, num(m["profit_factor"]),
                     f"> {num(spec.min_profit_factor)}",
                     _ok(m["profit_factor"], lambda v: v > spec.min_profit_factor) and not m["too_few_trades"],
                     _join(f"95% CI {interval(m['profit_factor_ci'])}", _few(m))),
        ReadinessRow("unresolved system failures", CRITERION, str(len(failures)), "0",
                     not failures, "; ".join(failures)),
        ReadinessRow("uptime", CRITERION, pct(m["uptime"], 1), f"> {pct(spec.min_uptime, 0)}",
                     _ok(m["uptime"], lambda v: v > spec.min_uptime),
                     uptime_detail(m)),
    ]


def _red_flags(m: Mapping, spec: ReadinessSpec) -> list[ReadinessRow]:
    dd = abs(m["cumulative_max_drawdown"]) if _ok(m["cumulative_max_drawdown"], lambda v: True) else 0.0
    judged = m["trades"] >= spec.flag_after_trades
    low_win = judged and _ok(m["win_rate"], lambda v: v < spec.flag_win_rate)
    return [
        ReadinessRow("low win rate", RED_FLAG, f"{pct(m['win_rate'])} after {m['trades']} trades",
                     f"< {pct(spec.flag_win_rate, 0)} after {spec.flag_after_trades} trades",
                     not low_win, "" if judged else "not judged yet: too few trades"),
        ReadinessRow("losing weeks in a row", RED_FLAG, str(m["losing_weeks_streak"]),
                     f">= {spec.flag_losing_weeks}",
                     m["losing_weeks_streak"] < spec.flag_losing_weeks, "latest complete weeks"),
        ReadinessRow("deep drawdown", RED_FLAG, pct(m["cumulative_max_drawdown"]),
                     f"depth > {pct(spec.flag_drawdown, 0)}",
                     not dd > spec.flag_drawdown),
        ReadinessRow("repeated breaker trips", RED_FLAG, str(m["breaker_trips"]),
                     f"> {spec.max_breaker_trips}", m["breaker_trips"] <= spec.max_breaker_trips),
        ReadinessRow("frequent crashes", RED_FLAG, str(m["crashes"]), f"> {spec.max_crashes}",
                     m["crashes"] <= spec.max_crashes, "restarts without a clean end"),
    ]


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
