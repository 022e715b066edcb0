"""Walk-forward optimization with stitched out-of-sample results and overfitting statistics.

``walk_forward(strategy, bars, params, WalkForwardSpec(...), BacktestSpec(...), benchmark)``
cuts the data into folds (:mod:`.splits`), searches each in-sample window (:mod:`.search`),
stitches the chosen parameters' out-of-sample targets into one engine run (:mod:`.run`) and
reports walk-forward efficiency, parameter stability, the deflated Sharpe ratio and the
probability of backtest overfitting (:mod:`.stats`).
"""

from framework.walkforward.objectives import OBJECTIVES, Objective, resolve_objective
from framework.walkforward.run import WalkForwardResult, WalkForwardSpec, walk_forward
from framework.walkforward.schedule import load_schedule, write_schedule
from framework.walkforward.search import SEARCH_METHODS, SearchSpec
from framework.walkforward.splits import Fold, Length, WindowSpec, make_folds, parse_length

__all__ = [
    "OBJECTIVES",
    "SEARCH_METHODS",
    "Fold",
    "Length",
    "Objective",
    "SearchSpec",
    "WalkForwardResult",
    "WalkForwardSpec",
    "WindowSpec",
    "load_schedule",
    "make_folds",
    "parse_length",
    "resolve_objective",
    "walk_forward",
    "write_schedule",
]
