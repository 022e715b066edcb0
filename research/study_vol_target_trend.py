"""Study: does volatility targeting on top of a 100-200 day trend filter hold up out of sample?

Walk-forward optimization of ``vol_target_trend`` on SPY daily bars (``/work/shared/data/daily``):
rolling 5-year in-sample windows, 2-year out-of-sample windows, grid search on the Sharpe ratio,
next-open fills and default costs. Writes into ``--out`` (default
``/tmp/fw-study-vol_target_trend``): ``tearsheet.html`` (stitched out-of-sample vs SPY buy and
hold), ``walkforward.html``, ``folds.csv``, ``summary.json`` and ``notes.md``; prints the notes.

Run: ``.venv/bin/python research/study_vol_target_trend.py [--out DIR] [--data-dir DIR]``
"""

from __future__ import annotations

from _study import Study, run_study

from framework.walkforward import WindowSpec

STUDY = Study(
    strategy="vol_target_trend",
    symbols=("SPY",),
    universe="SPY",
    windows=WindowSpec(train="5y", test="2y"),
    exposure_comment="the strategy is partly in cash, so lower raw return is expected.",
)

if __name__ == "__main__":
    run_study(STUDY, __doc__)
