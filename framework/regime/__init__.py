"""Market regime detection: a causal rule classifier (BULL / BEAR / CHOPPY / VOLATILE).

:func:`regime_labels` gives one int label per bar and symbol (-1 during warm-up) for use inside
``Strategy.features``; :func:`classify` gives one series' labels with the indicator inputs;
:class:`RegimeSpec` holds the thresholds (``config/regimes.yaml``, :func:`load_regime_spec`).
The decision order is documented in :mod:`framework.regime.rules`. Optional learned detectors
(Gaussian HMM, needs ``hmmlearn``) live in :mod:`framework.regime.learned`; the ``fw regime``
command's logic in :mod:`framework.regime.command`.
"""

from framework.regime.rules import (
    Classification,
    align_vix,
    classify,
    hold_min_duration,
    regime_labels,
)
from framework.regime.spec import (
    BEAR,
    BULL,
    CHOPPY,
    REGIME_NAMES,
    VOLATILE,
    WARMUP,
    RegimeSpec,
    load_regime_spec,
)

__all__ = [
    "BEAR",
    "BULL",
    "CHOPPY",
    "REGIME_NAMES",
    "VOLATILE",
    "WARMUP",
    "Classification",
    "RegimeSpec",
    "align_vix",
    "classify",
    "hold_min_duration",
    "load_regime_spec",
    "regime_labels",
]
