"""Study: does dual momentum sector rotation beat SPY out of sample?

Walk-forward optimization of ``dual_momentum`` on the nine SPDR sector ETFs (XLB XLE XLF XLI XLK
XLP XLU XLV XLY, daily bars from ``/work/shared/data/daily``), benchmarked against SPY:
rolling 5-year in-sample windows, 2-year out-of-sample windows, grid search on the Sharpe ratio,
next-open fills and default costs. Writes into ``--out`` (default
``/tmp/fw-study-vol_target_trend``): ``tearsheet.html`` (stitched out-of-sample vs SPY buy and
hold), ``walkforward.html``, ``folds.csv``, ``summary.json`` and ``notes.md``; prints the notes.

Run: ``.venv/bin/python research/study_vol_target_trend.py [--out DIR] [--data-dir DIR]``
"""

from __future__ import annotations

from _study import Study, run_study

from framework.walkforward import WindowSpec
from strategies.dual_momentum import SECTOR_ETFS

STUDY = Study(
    strategy="dual_momentum",
    symbols=tuple(SECTOR_ETFS),
    universe="the SPDR sector ETFs",
    windows=WindowSpec(train="5y", test="2y"),
    exposure_comment="the absolute-momentum filter rarely moved the book to cash.",
    # two local worker processes: a universe grid simulates every candidate separately
    executor="local",
    workers=2,
)

if __name__ == "__main__":
    run_study(STUDY, __doc__)
