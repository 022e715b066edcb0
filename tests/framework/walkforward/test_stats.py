"""Overfitting statistics against hand computations, the DSR paper's example and a slow reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.errors import DataError, ParameterError
from framework.walkforward.stats import (
    cscv_combinations,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    parameter_stability,
    per_period_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    skewness_kurtosis,
    walk_forward_efficiency,
)


# -- walk-forward efficiency --------------------------------------------------------------------
def test_walk_forward_efficiency_is_a_ratio_of_means():
    # mean OOS = (0.10 + 0.05 + 0.00) / 3 = 0.05; mean IS = (0.2 + 0.1 + 0.3) / 3 = 0.2 -> 0.25
    assert walk_forward_efficiency([0.2, 0.1, 0.3], [0.10, 0.05, 0.0]) == pytest.approx(
        0.25, abs=1e-15
    )
    # a fold with a nan on either side is left out of both means: (0.1 + 0.0) / (0.2 + 0.3)
    assert walk_forward_efficiency([0.2, math.nan, 0.3], [0.1, 0.5, 0.0]) == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("is_returns", "oos_returns"),
    [([-0.1, 0.05], [0.1, 0.1]), ([0.0], [0.1]), ([math.nan], [0.1]), ([], [])],
)
def test_walk_forward_efficiency_undefined(is_returns, oos_returns):
    assert math.isnan(walk_forward_efficiency(is_returns, oos_returns))


def test_walk_forward_efficiency_rejects_mismatched_folds():
    with pytest.raises(DataError, match="one IS and one OOS"):
        walk_forward_efficiency([0.1, 0.2], [0.1])


# -- parameter stability ------------------------------------------------------------------------
def test_parameter_stability_by_hand():
    chosen = [
        {"fast": 10, "slow": 50, "short": False},
        {"fast": 10, "slow": 60, "short": False},
        {"fast": 20, "slow": 50, "short": False},
        {"fast": 10, "slow": 60, "short": True},
    ]
    table = parameter_stability(chosen)
    # fast: 10, 10, 20, 10 -> mode 10 in 3 of 4 folds; mean 12.5; deviations -2.5 x3, +7.5:
    # population variance (3 * 6.25 + 56.25) / 4 = 18.75; cv = sqrt(18.75) / 12.5
    assert table.loc["fast", "mode"] == 10 and table.loc["fast", "mode_fraction"] == 0.75
    assert table.loc["fast", "mean"] == 12.5
    assert table.loc["fast", "std"] == pytest.approx(math.sqrt(18.75))
    assert table.loc["fast", "cv"] == pytest.approx(math.sqrt(18.75) / 12.5)
    # slow: 50, 60, 50, 60 -> a tie: the value chosen first (50) is the mode
    assert table.loc["slow", "mode"] == 50 and table.loc["slow", "mode_fraction"] == 0.5
    assert table.loc["slow", "cv"] == pytest.approx(5.0 / 55.0)
    # booleans have a mode but no coefficient of variation
    assert not table.loc["short", "mode"] and table.loc["short", "mode_fraction"] == 0.75
    assert math.isnan(table.loc["short", "cv"]) and table.loc["short", "n_distinct"] == 2


def test_parameter_stability_of_a_constant_choice_is_perfect():
    table = parameter_stability([{"a": 3}] * 5)
    assert table.loc["a", "mode_fraction"] == 1.0 and table.loc["a", "cv"] == 0.0


# -- deflated Sharpe ratio ----------------------------------------------------------------------
def test_dsr_numerical_example_of_the_paper():
    # Bailey and Lopez de Prado (2014), section "A numerical example": N = 100 trials whose
    # annualized Sharpe ratios have variance 1/2, best annualized SR 2.5 over T = 1250 daily
    # returns (250 per year), skewness -3, kurtosis 10. The paper gets SR0 = 0.1132 (per day)
    # and DSR = 0.9004.
    sr0 = expected_max_sharpe(0.5 / 250, 100)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = probabilistic_sharpe_ratio(2.5 / math.sqrt(250), sr0, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_expected_max_sharpe_by_hand():
    # sqrt(0.04) * ((1 - g) * z(1 - 1/10) + g * z(1 - 1/(10 e))), z(0.9) = 1.2815516,
    # z(1 - 0.0367879) = 1.78924, g = 0.5772157
    expected = 0.2 * ((1 - 0.5772157) * 1.2815516 + 0.5772157 * 1.78924)
    assert expected_max_sharpe(0.04, 10) == pytest.approx(expected, abs=1e-6)
    assert expected_max_sharpe(0.04, 1) == 0.0
    assert (
        expected_max_sharpe(0.04, 1000)
        > expected_max_sharpe(0.04, 100)
        > expected_max_sharpe(0.04, 10)
    )
    with pytest.raises(ParameterError):
        expected_max_sharpe(-1.0, 10)


def test_psr_is_one_half_at_the_benchmark_and_grows_with_sample_size():
    assert probabilistic_sharpe_ratio(0.1, 0.1, 500, 0.0, 3.0) == 0.5
    assert probabilistic_sharpe_ratio(0.1, 0.05, 1000, 0.0, 3.0) > probabilistic_sharpe_ratio(
        0.1, 0.05, 100, 0.0, 3.0
    )
    # negative skew and fat tails make the same Sharpe less convincing
    assert probabilistic_sharpe_ratio(0.1, 0.05, 500, -2.0, 9.0) < probabilistic_sharpe_ratio(
        0.1, 0.05, 500, 0.0, 3.0
    )


def test_deflated_sharpe_ratio_assembles_the_pieces():
    rng = np.random.default_rng(7)
    returns = rng.normal(0.001, 0.01, 500)
    trials = [0.02, 0.05, -0.01, 0.03, 0.0]
    out = deflated_sharpe_ratio(returns, trials)
    # by hand: sample moments and the formulas above
    mean, std = returns.mean(), returns.std(ddof=1)
    centred = returns - mean
    m2 = np.mean(centred**2)
    skew, kurt = np.mean(centred**3) / m2**1.5, np.mean(centred**4) / m2**2
    variance = np.var(trials, ddof=1)
    sr0 = expected_max_sharpe(variance, 5)
    z = (
        (mean / std - sr0)
        * math.sqrt(499)
        / math.sqrt(1 - skew * mean / std + (kurt - 1) / 4 * (mean / std) ** 2)
    )
    assert out.sharpe == pytest.approx(mean / std, rel=1e-12)
    assert (out.skewness, out.kurtosis) == pytest.approx((skew, kurt), rel=1e-10)
    assert out.sharpe_variance == pytest.approx(variance) and out.n_trials == 5
    assert out.dsr == pytest.approx(0.5 * math.erfc(-z / math.sqrt(2)), rel=1e-9)
    # more trials (same dispersion) can only deflate more
    assert deflated_sharpe_ratio(returns, trials, n_trials=500).dsr < out.dsr


def test_sharpe_and_moments_edge_cases():
    assert math.isnan(per_period_sharpe(np.zeros(10))) and math.isnan(per_period_sharpe(np.ones(1)))
    assert all(math.isnan(x) for x in skewness_kurtosis(np.full(5, 0.01)))
    symmetric = np.array([-1.0, 1.0, -1.0, 1.0])
    assert skewness_kurtosis(symmetric) == (0.0, 1.0)


# -- probability of backtest overfitting --------------------------------------------------------
def _slow_pbo(matrix: np.ndarray, n_blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain-Python CSCV: rows of each half concatenated and their Sharpe computed directly."""
    blocks = np.array_split(np.arange(matrix.shape[0]), n_blocks)
    n_trials = matrix.shape[1]
    logits, best_is, best_oos = [], [], []
    for combo in itertools.combinations(range(n_blocks), n_blocks // 2):
        rows_in = np.concatenate([blocks[b] for b in combo])
        rows_out = np.concatenate([blocks[b] for b in range(n_blocks) if b not in combo])
        perf_in = [_sharpe_or_minus_inf(matrix[rows_in, j]) for j in range(n_trials)]
        perf_out = [_sharpe_or_minus_inf(matrix[rows_out, j]) for j in range(n_trials)]
        best = max(range(n_trials), key=lambda j: (perf_in[j], -j))  # first maximum
        below = sum(1 for v in perf_out if v < perf_out[best])
        ties = sum(1 for v in perf_out if v == perf_out[best])
        omega = (below + (ties + 1) / 2) / (n_trials + 1)
        logits.append(math.log(omega / (1 - omega)))
        best_is.append(perf_in[best])
        best_oos.append(perf_out[best])
    return np.array(logits), np.array(best_is), np.array(best_oos)


def _sharpe_or_minus_inf(x: np.ndarray) -> float:
    value = per_period_sharpe(x)
    return -math.inf if math.isnan(value) else value


def test_pbo_two_blocks_by_hand():
    # T = 4 rows, S = 2 blocks of 2 rows, N = 2 trials that swap places between the halves.
    # A = [3, 1 | -1, -3], B = [-1, -3 | 3, 1]. Per-period Sharpe of (3, 1) is 2 / sqrt(2).
    # Combination IS = block 0: A is best in sample (+1.414 vs -1.414); out of sample (block 1)
    # A has -1.414 < B's +1.414, so A ranks 1 of 2: w = 1/3, logit = log(0.5) < 0.
    # Combination IS = block 1: B is best, ranks last out of sample: same logit. PBO = 1.
    matrix = np.array([[3.0, -1.0], [1.0, -3.0], [-1.0, 3.0], [-3.0, 1.0]]) / 100
    out = probability_of_backtest_overfitting(matrix, n_blocks=2)
    assert out.pbo == 1.0 and out.n_combinations == 2
    np.testing.assert_allclose(out.logits, [math.log(0.5)] * 2, rtol=1e-12)
    np.testing.assert_allclose(out.best_in_sample, [math.sqrt(2)] * 2, rtol=1e-12)
    np.testing.assert_allclose(out.best_out_of_sample, [-math.sqrt(2)] * 2, rtol=1e-12)


def test_pbo_zero_when_one_trial_dominates_everywhere():
    # A = B + 2 and C = B + 1 on every row (same dispersion): A has the best Sharpe in every
    # half, so it is best IS and ranks 3 of 3 OOS: w = 3/4, logit = log 3 > 0 for every split
    rng = np.random.default_rng(3)
    base = rng.normal(0.0, 1.0, 64)
    matrix = np.column_stack([base + 2.0, base, base + 1.0]) / 100
    out = probability_of_backtest_overfitting(matrix, n_blocks=8)
    assert out.pbo == 0.0 and out.n_combinations == math.comb(8, 4)
    np.testing.assert_allclose(out.logits, math.log(3.0))


def test_pbo_of_pure_noise_is_one_half_on_average_and_deterministic():
    # trials without skill: the IS winner is a coin flip OOS, so PBO averages 1/2 (one matrix
    # alone varies a lot, the combinations being strongly dependent)
    values = [
        probability_of_backtest_overfitting(
            np.random.default_rng(s).normal(0, 0.01, (240, 20)), 8
        ).pbo
        for s in range(40)
    ]
    assert 0.4 < np.mean(values) < 0.6
    matrix = np.random.default_rng(11).normal(0.0, 0.01, (480, 40))
    first = probability_of_backtest_overfitting(matrix, n_blocks=10)
    np.testing.assert_array_equal(
        first.logits, probability_of_backtest_overfitting(matrix, n_blocks=10).logits
    )


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n_blocks=st.sampled_from([2, 4, 6, 8]),
    n_trials=st.integers(2, 9),
    rows=st.integers(0, 30),
    duplicate=st.booleans(),
)
def test_pbo_kernel_matches_the_slow_reference(seed, n_blocks, n_trials, rows, duplicate):
    rng = np.random.default_rng(seed)
    matrix = np.round(rng.normal(0.0005, 0.01, (n_blocks * 3 + rows, n_trials)), 5)
    if duplicate:  # identical trials (ties) and a flat trial (undefined Sharpe)
        matrix[:, 1] = matrix[:, 0]
        matrix[:, -1] = 0.0
    out = probability_of_backtest_overfitting(matrix, n_blocks=n_blocks)
    logits, best_is, best_oos = _slow_pbo(matrix, n_blocks)
    np.testing.assert_allclose(out.logits, logits, rtol=1e-9, atol=1e-12)
    # Sharpe ratios of near-zero mean differ only by rounding in the summation order
    np.testing.assert_allclose(out.best_in_sample, best_is, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out.best_out_of_sample, best_oos, rtol=1e-9, atol=1e-12)
    assert out.pbo == np.mean(logits <= 0)


def test_pbo_combination_subset_is_seeded():
    assert cscv_combinations(16).shape == (12870, 8)
    a, b = cscv_combinations(16, 100, seed=1), cscv_combinations(16, 100, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, cscv_combinations(16, 100, seed=2))
    matrix = np.random.default_rng(0).normal(0, 0.01, (64, 5))
    assert probability_of_backtest_overfitting(matrix, 16, max_combinations=50).n_combinations == 50
    # a subset (complements mostly missing) gives the same logits as those combinations of the full run
    full = probability_of_backtest_overfitting(matrix, 8)
    part = probability_of_backtest_overfitting(matrix, 8, max_combinations=20, seed=5)
    rows = [
        list(map(tuple, cscv_combinations(8))).index(tuple(c))
        for c in cscv_combinations(8, 20, seed=5)
    ]
    np.testing.assert_array_equal(part.logits, full.logits[rows])


@pytest.mark.parametrize(
    ("matrix", "blocks", "error"),
    [
        (np.zeros((20, 1)), 4, DataError),
        (np.zeros(20), 4, DataError),
        (np.full((20, 3), np.nan), 4, DataError),
        (np.zeros((20, 3)), 5, ParameterError),
        (np.zeros((6, 3)), 8, ParameterError),
    ],
)
def test_pbo_rejects_bad_input(matrix, blocks, error):
    with pytest.raises(error):
        probability_of_backtest_overfitting(matrix, n_blocks=blocks)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_blocks=st.sampled_from([4, 6, 8, 10]))
def test_pbo_kernel_is_the_same_for_any_task_split_and_as_a_plain_block_loop(seed, n_blocks):
    # The kernel's prefix sums reuse the leading blocks of the previous half and its parallel
    # loop cuts the combinations into tasks; neither may change a single bit.
    from framework.walkforward import _nb
    from framework.walkforward.stats import _complements, _partners

    rng = np.random.default_rng(seed)
    matrix = np.round(rng.normal(0.0005, 0.01, (n_blocks * 4 + 3, 7)), 5)
    matrix[:, 2] = matrix[:, 1]
    blocks = np.array_split(np.arange(matrix.shape[0]), n_blocks)
    counts = np.array([len(b) for b in blocks], dtype=np.float64)
    sums = np.array([matrix[b].sum(axis=0) for b in blocks])
    squares = np.array([(matrix[b] ** 2).sum(axis=0) for b in blocks])
    combos = cscv_combinations(n_blocks)
    rng.shuffle(combos)  # an irregular order: fewer shared leading blocks
    rest = _complements(combos, n_blocks)
    partner = _partners(combos, rest)
    runs = [_nb.cscv_nb(counts, sums, squares, combos, rest, partner, t) for t in (1, 3, 64)]
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)
    # the same sums added block by block from 0.0, left to right, without any cache
    for c in range(0, len(combos), max(1, len(combos) // 7)):
        sharpes = []
        for half in (combos[c], rest[c]):
            n, total, square = 0.0, np.zeros(7), np.zeros(7)
            for b in half:
                n, total, square = n + counts[b], total + sums[b], square + squares[b]
            mean = total / n
            variance = (square - total * mean) / (n - 1.0)
            with np.errstate(invalid="ignore", divide="ignore"):
                sharpe = np.where(variance > 1e-12 * square / n, mean / np.sqrt(variance), -np.inf)
            sharpes.append(sharpe)
        best = int(np.argmax(sharpes[0]))
        assert runs[0][1][c] == sharpes[0][best]
        assert runs[0][2][c] == sharpes[1][best]
