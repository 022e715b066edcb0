"""The logic behind ``fw regime``: load bars, classify, summarize, plot, write files.

Indicators are computed on the whole loaded history and the report is then cut to
``[start, end]``, so the window does not lose its first year to warm-up and stays causal.
The plot uses matplotlib's object API (``Figure`` + Agg canvas): no pyplot, no global backend.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from framework.errors import DataError
from framework.regime.rules import Classification, align_vix, classify
from framework.regime.spec import REGIME_NAMES, RegimeSpec
from framework.types import Bars

_COLORS = ("#2ca02c", "#d62728", "#bdbdbd", "#9467bd")


@dataclass(frozen=True)
class RegimeRunSpec:
    """What ``fw regime`` analyses: symbol, VIX symbol, data source and window."""

    symbol: str | None = None
    vix: str | None = None
    use_vix: bool = True
    data_dir: Path | None = None
    start: str | None = None
    end: str | None = None


@dataclass(frozen=True)
class RegimeStat:
    """Time spent in one regime over the report window."""

    name: str
    bars: int
    share: float
    runs: int
    average_duration: float


@dataclass(frozen=True)
class RegimeReport:
    """The summary ``fw regime`` prints and writes."""

    symbol: str
    vix_symbol: str | None
    frame: pd.DataFrame
    changes: list[tuple[str, str, str]]
    stats: list[RegimeStat]
    current: str
    current_since: str
    notes: list[str]
    data_hash: str = ""


def _load(symbol: str, data_dir: Path | None) -> Bars:
    from framework.data.loading import load_bars

    return load_bars([symbol], data_dir=data_dir)


def load_inputs(run: RegimeRunSpec) -> tuple[str, Bars, str | None, pd.Series | None, list[str]]:
    """Resolve the symbol and the VIX (``None`` when absent and not asked for) and load them."""
    notes: list[str] = []
    symbol = run.symbol or ("SPY" if run.data_dir is not None else "GSPC")
    bars = _load(symbol, run.data_dir)
    if bars.n_bars == 0:
        raise DataError(f"no bars for {symbol!r}; check the symbol and the data source.")
    vix_symbol, vix = None, None
    if run.use_vix:
        wanted = run.vix or "VIX"
        try:
            vix_bars = _load(wanted, run.data_dir)
        except DataError:
            if run.vix is not None:
                raise  # the user asked for this VIX symbol: a missing one is an error
            notes.append("no VIX found in the data source; realized volatility stands in")
        else:
            vix_symbol = wanted
            vix = pd.Series(vix_bars.close[:, 0], index=vix_bars.index)
    return symbol, bars, vix_symbol, vix, notes


def _runs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start rows, lengths and labels of the runs of equal labels."""
    if len(labels) == 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    lengths = np.diff(np.r_[starts, len(labels)])
    return starts, lengths, labels[starts]


def summarize(
    symbol: str, index: pd.DatetimeIndex, close: np.ndarray, found: Classification, window: slice
) -> tuple[pd.DataFrame, list[tuple[str, str, str]], list[RegimeStat]]:
    """Per-bar frame, changes (date, from, to) and per-regime time shares for ``window`` rows."""
    labels = found.labels[window]
    frame = pd.DataFrame(
        {
            "close": close[window],
            "raw": found.raw[window],
            "label": labels,
            "regime": [REGIME_NAMES[k] if k >= 0 else "WARMUP" for k in labels],
            "vix_used": found.vix_used[window],
        },
        index=index[window],
    )
    for name, column in found.inputs.items():
        frame[name] = column[window]
    starts, lengths, values = _runs(labels)
    changes = [
        (index[window][s].strftime("%Y-%m-%d"), _name(values[k - 1]), _name(values[k]))
        for k, s in enumerate(starts)
        if k > 0
    ]
    valid = labels >= 0
    total = max(int(valid.sum()), 1)
    stats = []
    for code, name in enumerate(REGIME_NAMES):
        mask = values == code
        bars = int(lengths[mask].sum())
        stats.append(
            RegimeStat(
                name=name,
                bars=bars,
                share=bars / total,
                runs=int(mask.sum()),
                average_duration=float(lengths[mask].mean()) if mask.any() else 0.0,
            )
        )
    return frame, changes, stats


def _name(code: int) -> str:
    return REGIME_NAMES[code] if code >= 0 else "WARMUP"


def run_regime(run: RegimeRunSpec, spec: RegimeSpec) -> RegimeReport:
    """Load, classify on the full history, and summarize the ``[start, end]`` window.

    Raises
    ------
    DataError
        Unknown symbols, or a window without any classified bar.
    """
    symbol, bars, vix_symbol, vix, notes = load_inputs(run)
    vix_values = None if vix is None else align_vix(vix, bars.index)
    found = classify(bars.high[:, 0], bars.low[:, 0], bars.close[:, 0], spec, vix_values)
    window_bars = bars.between(run.start, run.end)
    if window_bars.n_bars == 0:
        raise DataError(
            f"no {symbol} bars between {run.start or 'the start'} and {run.end or 'the end'}; "
            f"the data covers {bars.index[0].date()}..{bars.index[-1].date()}."
        )
    lo = int(bars.index.searchsorted(window_bars.index[0]))
    window = slice(lo, lo + window_bars.n_bars)
    frame, changes, stats = summarize(symbol, bars.index, bars.close[:, 0], found, window)
    valid = frame.index[frame["label"].to_numpy() >= 0]
    if len(valid) == 0:
        raise DataError(
            f"every {symbol} bar in the window is still warm-up (the classifier needs about "
            f"{spec.trend_window + spec.percentile_window} bars of history); widen --start/--end."
        )
    if vix is not None:
        used = frame.index[frame["vix_used"].to_numpy()]
        if len(used) == 0:
            notes.append(
                f"{vix_symbol} never had a full percentile window here; "
                "realized volatility stood in"
            )
        elif used[0] > valid[0]:
            notes.append(
                f"{vix_symbol} terms used from {used[0].date()}; before that realized "
                "volatility stood in"
            )
    last = frame["label"].to_numpy()
    since = frame.index[_runs(last)[0][-1]].strftime("%Y-%m-%d")
    return RegimeReport(
        symbol=symbol,
        vix_symbol=vix_symbol,
        frame=frame,
        changes=changes,
        stats=stats,
        current=_name(int(last[-1])),
        current_since=since,
        notes=notes,
        data_hash=bars.content_hash(),
    )


def format_report(report: RegimeReport, max_changes: int = 40) -> str:
    """Plain-text summary: current regime, recent changes, time in each regime."""
    idx = report.frame.index
    vix = report.vix_symbol or "none (realized volatility stands in)"
    lines = [
        f"regimes of {report.symbol}, {idx[0].date()}..{idx[-1].date()} ({len(idx)} bars), "
        f"VIX: {vix}",
        f"current regime: {report.current} since {report.current_since}",
    ]
    lines += [f"note: {note}" for note in report.notes]
    shown = report.changes[-max_changes:]
    hidden = len(report.changes) - len(shown)
    lines.append(
        f"changes ({len(report.changes)}" + (f", last {len(shown)} shown):" if hidden else "):")
    )
    lines += [f"  {date}  {old:>8} -> {new}" for date, old, new in shown]
    lines.append(f"  {'regime':<9}{'share':>7}{'bars':>7}{'runs':>6}{'avg bars':>10}")
    for s in report.stats:
        lines.append(
            f"  {s.name:<9}{s.share:>7.1%}{s.bars:>7}{s.runs:>6}{s.average_duration:>10.1f}"
        )
    return "\n".join(lines)


def _minor_tick(value: float, _position: int) -> str:
    # Label the 2x and 5x minor ticks of a log axis only, so labels never crowd.
    if value <= 0:
        return ""
    lead = value / 10 ** np.floor(np.log10(value))
    return f"{value:,.0f}" if round(lead) in (2, 5) and abs(lead - round(lead)) < 1e-6 else ""


def plot_regimes(report: RegimeReport, path: Path) -> Path:
    """Write a PNG of the close (log scale) with the background shaded by regime."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    frame = report.frame
    fig = Figure(figsize=(12, 5.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    starts, lengths, values = _runs(frame["label"].to_numpy())
    # One span per run, from its first bar to the next run's first bar: no gaps between runs.
    edges = frame.index.append(frame.index[-1:])
    for start, length, code in zip(starts, lengths, values, strict=True):
        if code >= 0:
            ax.axvspan(
                edges[start], edges[start + length], color=_COLORS[code], alpha=0.35, linewidth=0
            )
    ax.plot(frame.index, frame["close"].to_numpy(), color="black", linewidth=0.9)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(_minor_tick))
    ax.set_ylabel(f"{report.symbol} close (log scale)")
    ax.set_xlim(frame.index[0], frame.index[-1])
    ax.set_title(
        f"{report.symbol} market regimes (VIX: {report.vix_symbol or 'none'}); "
        f"current: {report.current} since {report.current_since}"
    )
    handles = [
        Patch(color=c, alpha=0.5, label=n) for n, c in zip(REGIME_NAMES, _COLORS, strict=True)
    ]
    ax.legend(handles=handles, loc="upper left", ncol=4, framealpha=0.9)
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def write_outputs(
    report: RegimeReport,
    spec: RegimeSpec,
    run: RegimeRunSpec,
    out: Path,
    provenance: dict[str, str] | None = None,
) -> list[Path]:
    """Write ``regimes.png``, ``regimes.csv`` (per bar) and ``regime_run.json``.

    The JSON holds the resolved spec, the data hash and ``provenance`` (e.g. the git revision,
    which the CLI supplies).
    """
    out.mkdir(parents=True, exist_ok=True)
    png = plot_regimes(report, out / "regimes.png")
    csv = out / "regimes.csv"
    report.frame.to_csv(csv, index_label="time")
    meta = out / "regime_run.json"
    resolved = {
        "symbol": report.symbol,
        "vix": report.vix_symbol,
        "data_dir": None if run.data_dir is None else str(run.data_dir),
        "start": run.start,
        "end": run.end,
        "spec": asdict(spec),
        "data_hash": report.data_hash,
        **(provenance or {}),
        "current": report.current,
        "current_since": report.current_since,
        "stats": [asdict(s) for s in report.stats],
        "notes": report.notes,
    }
    meta.write_text(json.dumps(resolved, indent=2), encoding="utf-8")
    return [png, csv, meta]


__all__ = [
    "RegimeReport",
    "RegimeRunSpec",
    "RegimeStat",
    "format_report",
    "load_inputs",
    "plot_regimes",
    "run_regime",
    "summarize",
    "write_outputs",
]
