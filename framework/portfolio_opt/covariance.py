"""Covariance estimates for the optimizers: Ledoit-Wolf shrinkage and the sample covariance."""

from __future__ import annotations

import numpy as np

from framework.errors import ParameterError

# Relative size of the ridge added to a covariance that is not positive definite: large enough
# for a Cholesky/QP to work, small enough not to change well-conditioned answers.
_RIDGE = 1e-8


def ledoit_wolf(returns: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf shrunk covariance of ``returns`` (t, m), towards ``mean variance * I``.

    Same estimator as ``sklearn.covariance.ledoit_wolf`` (biased sample covariance of the
    demeaned returns, optimal shrinkage intensity clipped to ``[0, 1]``).
    """
    x = np.asarray(returns, dtype=np.float64)
    t, m = x.shape
    x = x - x.mean(axis=0)
    emp = x.T @ x / t
    if m == 1:
        return emp
    x2 = x**2
    trace_terms = x2.sum(axis=0) / t
    mu = trace_terms.sum() / m
    beta_raw = float((x2.T @ x2).sum())
    delta_raw = float((emp**2).sum())
    beta = (beta_raw / t - delta_raw) / (m * t)
    delta = (delta_raw - 2.0 * mu * trace_terms.sum() + m * mu**2) / m
    beta = min(beta, delta)
    shrink = 0.0 if beta == 0.0 else beta / delta
    return (1.0 - shrink) * emp + shrink * mu * np.eye(m)


def sample_covariance(returns: np.ndarray) -> np.ndarray:
    """Unbiased sample covariance of ``returns`` (t, m) (``ddof=1``)."""
    x = np.asarray(returns, dtype=np.float64)
    if x.shape[0] < 2:
        raise ParameterError(
            f"a covariance needs at least 2 rows of returns; got {x.shape[0]}. Use a longer window."
        )
    return np.atleast_2d(np.cov(x, rowvar=False, ddof=1))


def estimate_covariance(returns: np.ndarray, shrinkage: str) -> np.ndarray:
    """Covariance by ``shrinkage`` (``"ledoit_wolf"`` or ``"none"``), made positive definite.

    A singular estimate (fewer rows than assets, duplicated or constant assets) gets a ridge of
    ``1e-8 * mean variance`` on its diagonal: the stated fallback, so every optimizer sees a
    positive definite matrix.
    """
    cov = ledoit_wolf(returns) if shrinkage == "ledoit_wolf" else sample_covariance(returns)
    return make_positive_definite(cov)


def make_positive_definite(cov: np.ndarray) -> np.ndarray:
    """``cov`` symmetrized, plus a small ridge when its smallest eigenvalue is not positive."""
    cov = 0.5 * (cov + cov.T)
    scale = float(np.mean(np.diag(cov)))
    if scale <= 0.0:
        # every asset constant in the window: any variance is as good as another
        return np.eye(cov.shape[0])
    if np.linalg.eigvalsh(cov)[0] <= _RIDGE * scale:
        cov = cov + _RIDGE * scale * np.eye(cov.shape[0])
    return cov
