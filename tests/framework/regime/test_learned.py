"""The Gaussian HMM detector: forward filter vs references, causality, state mapping."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import ConfigError, DataError
from framework.regime import BEAR, BULL, CHOPPY, VOLATILE
from framework.regime._nb import forward_filter_nb
from framework.regime.learned import (
    HmmSpec,
    filtered_probabilities,
    fit_hmm_regimes,
    hmm_observations,
    hmm_regime_labels,
    log_emission,
    map_states,
)

hmmlearn = pytest.importorskip("hmmlearn")

FAST = HmmSpec(n_states=2, volatility_window=10, n_iter=30, min_duration=5)


def switching_closes(n_blocks: int = 8, block: int = 120, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Alternating calm up-drift and volatile down-drift blocks; returns closes and true regime."""
    rng = np.random.default_rng(seed)
    returns, truth = [], []
    for b in range(n_blocks):
        wild = b % 2 == 1
        returns.append(rng.normal(-0.002 if wild else 0.0008, 0.03 if wild else 0.006, block))
        truth.append(np.full(block, VOLATILE if wild else BULL))
    return 100 * np.exp(np.cumsum(np.concatenate(returns))), np.concatenate(truth)


@pytest.fixture(scope="module")
def fitted():
    close, truth = switching_closes()
    return fit_hmm_regimes(close[:480], FAST), close, truth


def filter_reference(emission, start, transition):
    """Slow forward filter in plain numpy (no scaling tricks)."""
    out = np.full(emission.shape, np.nan)
    belief = None
    for i, row in enumerate(emission):
        if np.isnan(row).any():
            if belief is None:
                continue
            belief = belief @ transition
        else:
            prior = start if belief is None else belief @ transition
            post = prior * np.exp(row)
            belief = post / post.sum()
        out[i] = belief
    return out


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 4), n=st.integers(0, 60))
def test_forward_filter_equals_reference(seed, k, n):
    rng = np.random.default_rng(seed)
    emission = rng.normal(-2, 3, size=(n, k))
    emission[rng.random(n) < 0.2] = np.nan  # missing observations
    start = rng.dirichlet(np.ones(k))
    transition = rng.dirichlet(np.ones(k), size=k)
    got = forward_filter_nb(emission, start, transition)
    np.testing.assert_allclose(got, filter_reference(emission, start, transition), rtol=1e-9)
    full = got
    cut = n // 2
    np.testing.assert_array_equal(forward_filter_nb(emission[:cut], start, transition), full[:cut])


def test_filter_matches_hmmlearn_posterior_of_each_prefix(fitted):
    # hmmlearn's posterior of the LAST row of a prefix is the filtered probability there.
    from hmmlearn.hmm import GaussianHMM

    model, close, _ = fitted
    probs = filtered_probabilities(model, close)
    obs = hmm_observations(close, FAST.volatility_window)
    first = int(np.argmax(~np.isnan(obs).any(axis=1)))
    oracle = GaussianHMM(n_components=2, covariance_type="diag")
    oracle.startprob_, oracle.transmat_ = model.start, model.transition
    oracle.means_, oracle.covars_ = model.means, model.variances
    for end in (first + 1, first + 50, 300, 700):
        expected = oracle.predict_proba(obs[first : end + 1])[-1]
        np.testing.assert_allclose(probs[end], expected, rtol=1e-6, atol=1e-9)


def test_labels_are_causal_and_recover_the_regimes(fitted):
    model, close, truth = fitted
    labels = hmm_regime_labels(model, close)
    for k in (30, 481, 700, 959):
        np.testing.assert_array_equal(hmm_regime_labels(model, close[:k]), labels[:k])
        future = np.r_[close[:k], close[k - 1] * np.exp(np.cumsum(np.full(50, 0.05)))]
        np.testing.assert_array_equal(hmm_regime_labels(model, future)[:k], labels[:k])
    assert (labels[: FAST.volatility_window] == -1).all()
    out_of_sample = slice(480, None)  # trained on the first 480 bars only
    assert (labels[out_of_sample] == truth[out_of_sample]).mean() >= 0.8
    assert set(model.state_regimes) == {BULL, VOLATILE}


@pytest.mark.parametrize(
    ("means", "stds", "expected"),
    [
        ([0.001, -0.001], [0.01, 0.03], (BULL, VOLATILE)),
        ([0.001, -0.002, 0.0], [0.01, 0.012, 0.04], (BULL, BEAR, VOLATILE)),
        ([0.0, 0.001, -0.001, -0.002], [0.01, 0.008, 0.012, 0.05], (CHOPPY, BULL, BEAR, VOLATILE)),
    ],
)
def test_state_mapping(means, stds, expected):
    m = np.column_stack([means, np.zeros(len(means))])
    v = np.column_stack([np.square(stds), np.ones(len(stds))])
    assert map_states(m, v) == expected


def test_log_emission_is_the_gaussian_density():
    obs = np.array([[0.01, 0.2]])
    got = log_emission(obs, np.array([[0.0, 0.1]]), np.array([[0.0004, 0.01]]))
    expected = sum(
        -0.5 * np.log(2 * np.pi * var) - (x - mu) ** 2 / (2 * var)
        for x, mu, var in [(0.01, 0.0, 0.0004), (0.2, 0.1, 0.01)]
    )
    assert got[0, 0] == pytest.approx(expected)


def test_errors(monkeypatch):
    with pytest.raises(DataError, match="need at least"):
        fit_hmm_regimes(np.linspace(100, 110, 30), FAST)
    with pytest.raises(ConfigError, match="n_states"):
        HmmSpec(n_states=5)
    with pytest.raises(DataError, match="1-D"):
        hmm_observations(np.ones((5, 2)), 3)
    monkeypatch.setitem(sys.modules, "hmmlearn.hmm", None)  # as if not installed
    with pytest.raises(ConfigError, match="pip install"):
        fit_hmm_regimes(np.linspace(100, 110, 300), FAST)
