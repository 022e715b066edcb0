"""How close are synthetic option chains to real SPY snapshots? The tables behind the defaults.

Question: ``framework.options.synthetic`` prices a chain per day from the underlying's close and
VIX. Its defaults (``DEFAULT_SPEC``) were fit on ONE snapshot (SPY, 2025-08-26); how large are
the errors there and on the snapshots it was not fit on (2026-02-10, 2026-05-01)?

Data: ``<data-dir>/options/SPY_chain_<date>.csv.gz`` (real end-of-day chains), VIX closes from
``<data-dir>/daily/VIX.csv.gz`` on the snapshot day, SPY spot = the snapshot's underlying price
(equal to the unadjusted close in ``daily_unadjusted/SPY`` where that file reaches, checked
below). Rates: the values the data README records for 2026-02-10 (3.72 %) and 2026-05-01
(3.71 %, q 1.02 %); 2025-08-26 has no recorded rate, so r 4.30 % and q 1.10 % are assumed
(call and put mid IVs near the money agree within about 0.5 vol points with them).

Printed: (1) the fit on 2025-08-26 next to DEFAULT_SPEC; (2) per snapshot, for 20-60 day
contracts with |delta| 0.10-0.50: median absolute IV error (vol points), median IV bias, median
relative mid error and median half-spreads, with the defaults and with a same-day refit (the
best the functional form can do); (3) the same errors by delta bucket; (4) the measured
constants behind ``rv_premium`` and ``QQQ_VOL_RATIO``.

Run: ``.venv/bin/python -m research.options_synthetic_check --data-dir ../shared/data``
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from framework.options.chains import load_chain
from framework.options.synthetic import DEFAULT_SPEC, QQQ_VOL_RATIO
from framework.options.synthetic_fit import (
    FIT_WINDOW,
    compare_to_snapshot,
    comparison_summary,
    fit_to_snapshot,
)

FIT_DATE = "2025-08-26"
# date -> (rate, dividend yield): README values for 2026, an assumption for 2025 (see docstring)
SNAPSHOTS = {
    "2025-08-26": (0.0430, 0.0110),
    "2026-02-10": (0.0372, 0.0105),
    "2026-05-01": (0.0371, 0.0102),
}
FITTED_FIELDS = ("vix_scale", "term_long_run", "term_speed", "skew_put_slope", "skew_call_slope",
                 "skew_vertex", "skew_smoothness", "spread_base", "spread_frac",
                 "spread_moneyness")


def daily_close(data_dir: Path, folder: str, symbol: str) -> pd.Series:
    frame = pd.read_csv(data_dir / folder / f"{symbol}.csv.gz", index_col="date",
                        parse_dates=True)
    return frame["close"]


def snapshot_inputs(data_dir: Path, day: str):
    chain = load_chain(data_dir / "options" / f"SPY_chain_{day}.csv.gz")
    vix = float(daily_close(data_dir, "daily", "VIX").loc[day])
    raw = daily_close(data_dir, "daily_unadjusted", "SPY")
    check = f"{raw.loc[day]:.2f}" if pd.Timestamp(day) in raw.index else "n/a (file ends earlier)"
    print(f"  {day}: SPY {chain.spot:.2f} (daily_unadjusted close {check}), VIX {vix:.2f}, "
          f"r {SNAPSHOTS[day][0]:.2%}, q {SNAPSHOTS[day][1]:.2%}, {len(chain)} contracts")
    return chain, vix


def fit_table(chain, vix: float, rate: float, div: float) -> None:
    fitted, rows = fit_to_snapshot(chain, vix, DEFAULT_SPEC, rate=rate, div=div)
    print(f"\n(1) fit on {FIT_DATE}: {len(rows)} OTM contracts, {FIT_WINDOW.min_days}-"
          f"{FIT_WINDOW.max_days} days, |delta| {FIT_WINDOW.min_abs_delta}-"
          f"{FIT_WINDOW.max_abs_delta}; median |IV error| "
          f"{np.median(np.abs(rows['iv_error'])) * 100:.2f} vp")
    print(f"  {'parameter':18s} {'fitted':>10s} {'DEFAULT_SPEC':>13s}")
    for name in FITTED_FIELDS:
        print(f"  {name:18s} {getattr(fitted, name):10.4f} {getattr(DEFAULT_SPEC, name):13.4f}")


def error_tables(chains: dict) -> None:
    print("\n(2) 20-60 days, |delta| 0.10-0.50 (IV errors in vol points; rel. mid = synthetic "
          "mid / real mid - 1)")
    head = (f"  {'snapshot':10s} {'spec':14s} {'n':>4s} {'med|IVerr|':>10s} {'IV bias':>8s} "
            f"{'med|rel mid|':>12s} {'real half':>9s} {'synth half':>10s}")
    print(head)
    for day, (chain, vix) in chains.items():
        rate, div = SNAPSHOTS[day]
        refit, _ = fit_to_snapshot(chain, vix, DEFAULT_SPEC, rate=rate, div=div)
        label = "defaults(fit)" if day == FIT_DATE else "defaults"
        for name, spec in ((label, DEFAULT_SPEC), ("same-day refit", refit)):
            rows = compare_to_snapshot(chain, vix, spec, rate=rate, div=div)
            s = comparison_summary(rows)
            print(f"  {day:10s} {name:14s} {int(s['contracts']):4d} "
                  f"{s['median_abs_iv_error_vp']:10.2f} {s['median_iv_bias_vp']:+8.2f} "
                  f"{s['median_abs_rel_mid_error']:12.1%} {s['median_real_half_spread']:9.3f} "
                  f"{s['median_synthetic_half_spread']:10.3f}")


def bucket_tables(chains: dict) -> None:
    print("\n(3) defaults by |delta| bucket, 20-60 days: median |IV err| vp / median |rel mid|")
    bins = [0.10, 0.20, 0.30, 0.40, 0.50]
    for day, (chain, vix) in chains.items():
        rate, div = SNAPSHOTS[day]
        rows = compare_to_snapshot(chain, vix, DEFAULT_SPEC, rate=rate, div=div)
        rows = rows.assign(bucket=pd.cut(rows["delta"].abs(), bins, include_lowest=True),
                           side=rows["right"])
        table = rows.groupby(["side", "bucket"], observed=True).agg(
            n=("iv_error", "size"),
            iv_vp=("iv_error", lambda e: float(np.median(np.abs(e)) * 100)),
            rel_mid=("rel_mid_error", lambda e: float(np.median(np.abs(e)))),
        )
        print(f"  {day}")
        print(table.round(3).to_string().replace("\n", "\n    "))


def realized_constants(data_dir: Path) -> None:
    spy = daily_close(data_dir, "daily", "SPY")
    qqq = daily_close(data_dir, "daily", "QQQ")
    vix = daily_close(data_dir, "daily", "VIX")
    window = DEFAULT_SPEC.rv_window
    rv = np.log(spy).diff().rolling(window).std() * math.sqrt(252)
    atm = DEFAULT_SPEC.vix_scale * vix / 100
    ratio = (atm / rv).dropna()
    print(f"\n(4) rv_premium: median of (vix_scale * VIX / 100) / RV{window}(SPY), "
          f"{ratio.index[0].date()}..{ratio.index[-1].date()}: {ratio.median():.3f} "
          f"(quartiles {ratio.quantile(0.25):.3f} / {ratio.quantile(0.75):.3f}); "
          f"DEFAULT_SPEC.rv_premium = {DEFAULT_SPEC.rv_premium}")
    vols = pd.concat([np.log(x).diff().rolling(63).std() for x in (qqq, spy)], axis=1,
                     sort=True).dropna()
    recent = vols.loc["2010":]
    print(f"    QQQ/SPY 63-day realised-vol ratio, median 2010..: "
          f"{(recent.iloc[:, 0] / recent.iloc[:, 1]).median():.3f}; QQQ_VOL_RATIO = "
          f"{QQQ_VOL_RATIO}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    print("inputs")
    chains = {day: snapshot_inputs(args.data_dir, day) for day in SNAPSHOTS}
    fit_table(chains[FIT_DATE][0], chains[FIT_DATE][1], *SNAPSHOTS[FIT_DATE])
    error_tables(chains)
    bucket_tables(chains)
    realized_constants(args.data_dir)


if __name__ == "__main__":
    main()
