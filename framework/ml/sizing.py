"""From a model's probability to a position: threshold, confidence scaling, optional Kelly cap.

For the probability ``p`` that the label is positive (the price rises, or the primary signal is
right when meta-labelling):

* below ``threshold`` nothing is held (and, unless ``long_only``, a short is taken when
  ``1 - p`` clears the threshold);
* ``scaling="fixed"``: a position that clears the threshold is full size;
  ``scaling="confidence"``: its size grows linearly from 0 at ``p = 0.5`` to 1 at
  ``p = full_at`` (so a bare threshold crossing is a small bet);
* ``kelly > 0`` caps the size at ``kelly`` times the Kelly fraction ``p - (1 - p) / b``, with
  ``b`` the payoff ratio (average win over average loss) estimated on the training labels.

The risk layer then applies its sizing and caps as for any strategy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from framework.errors import ParameterError, unknown_name_message

SCALINGS: tuple[str, ...] = ("fixed", "confidence")


@dataclass(frozen=True)
class SizingSpec:
    """How probabilities become positions (see the module docstring)."""

    threshold: float = 0.55
    scaling: str = "confidence"
    full_at: float = 0.7
    long_only: bool = True
    kelly: float = 0.0

    def __post_init__(self) -> None:
        if self.scaling not in SCALINGS:
            raise ParameterError(unknown_name_message("scaling", self.scaling, SCALINGS))
        if not 0.5 <= self.threshold < 1.0:
            raise ParameterError(f"threshold must be in [0.5, 1); got {self.threshold}.")
        if not 0.5 < self.full_at <= 1.0:
            raise ParameterError(f"full_at must be in (0.5, 1]; got {self.full_at}.")
        if self.kelly < 0:
            raise ParameterError(f"kelly must be >= 0 (0 turns the cap off); got {self.kelly}.")


def probability_to_position(prob: np.ndarray, spec: SizingSpec, payoff: float = 1.0) -> np.ndarray:
    """Position in ``[-1, 1]`` (``[0, 1]`` when long only) per probability; ``nan`` -> 0.

    Parameters
    ----------
    prob : ndarray
        Probability of a positive label, any shape.
    spec : SizingSpec
    payoff : float
        Average win over average loss of the training labels (Kelly's ``b``).
    """
    p = np.asarray(prob, dtype=np.float64)
    valid = np.isfinite(p)
    q = np.where(valid, p, 0.5)
    long_size = _size(q, spec, payoff)
    out = np.where(q >= spec.threshold, long_size, 0.0)
    if not spec.long_only:
        short_size = _size(1.0 - q, spec, 1.0 / payoff if payoff > 0 else 1.0)
        out = np.where(1.0 - q >= spec.threshold, -short_size, out)
    return np.where(valid, out, 0.0)


def _size(q: np.ndarray, spec: SizingSpec, payoff: float) -> np.ndarray:
    if spec.scaling == "fixed":
        size = np.ones_like(q)
    else:
        size = np.clip((q - 0.5) / (spec.full_at - 0.5), 0.0, 1.0)
    if spec.kelly > 0:
        b = payoff if payoff > 0 else 1.0
        kelly = np.clip(q - (1.0 - q) / b, 0.0, 1.0)
        size = np.minimum(size, spec.kelly * kelly)
    return size
