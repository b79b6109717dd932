"""The simulated bias and variance of a log ratio of two cohort summaries (crsmeta.cohort_log_ratio)."""

from __future__ import annotations

import numpy as np
import pytest

from crsmeta import cohort_log_ratio


def _independent_moments(s: float, sigma: float, n: int, medians: bool) -> tuple[float, float]:
    """SYNTHETIC: mean and variance of y − θ − (σ²/2 for means) from 40,000 cohorts of other random numbers."""
    rng = np.random.default_rng(99)
    log_pre = s * rng.standard_normal((40_000, n))
    log_post = log_pre + sigma * rng.standard_normal((40_000, n))
    if medians:
        y = np.median(log_post, axis=1) - np.median(log_pre, axis=1)
    else:
        y = np.log(np.exp(log_post).mean(axis=1)) - np.log(np.exp(log_pre).mean(axis=1)) - sigma**2 / 2
    return float(y.mean()), float(y.var())


@pytest.mark.parametrize("s, sigma, n", [(1.2, 0.75, 12), (1.0, 0.3, 5), (0.5, 1.5, 30), (1.6, 0.6, 20)])
def test_the_tables_give_the_moments_of_simulated_cohorts_between_grid_points(s, sigma, n):
    """Within 10% of the variance (the tables' 2,000 cohorts and their bilinear interpolation)
    and 0.1 SD of the bias; a ratio of medians is unbiased."""
    for medians in (False, True):
        bias_table, variance_table = cohort_log_ratio.ratio_tables(n, medians)
        mean, variance = _independent_moments(s, sigma, n, medians)
        assert cohort_log_ratio.table_at(variance_table, s, sigma) * sigma**2 == pytest.approx(variance, rel=0.1)
        if not medians:
            assert cohort_log_ratio.table_at(bias_table, s, sigma) * sigma**2 == pytest.approx(mean, abs=0.1 * variance**0.5)
        else:
            assert abs(mean) < 0.05 * variance**0.5


def test_the_baseline_spread_widens_a_ratio_of_means_beyond_sigma_squared_over_n():
    """With no baseline spread and small changes the variance is σ²/n (a mean of log ratios); at
    s = 1.2 and σ = 0.75 it is twice what it is at s = 0 and 2.5× σ²/n, the model's earlier prior
    mean of a learned se²."""
    _, variance = cohort_log_ratio.ratio_tables(12, medians=False)
    assert cohort_log_ratio.table_at(variance, 0.0, 0.05) == pytest.approx(1 / 12, rel=0.1)
    assert cohort_log_ratio.table_at(variance, 1.2, 0.75) > 2 * cohort_log_ratio.table_at(variance, 0.0, 0.75)
    assert cohort_log_ratio.table_at(variance, 1.2, 0.75) > 2.5 / 12


def test_a_rows_tables_are_the_same_in_every_process_and_n_rounds_to_whole_patients():
    """Fixed common random numbers per n: the same row gets the same table (reproducible fits);
    an effective n of 11.6 (a cohort total) is simulated as 12 patients, and below 2 as 2."""
    first = cohort_log_ratio.mean_ratio_tables(12)
    cohort_log_ratio.mean_ratio_tables.cache_clear()
    cohort_log_ratio.standard_normals.cache_clear()
    np.testing.assert_array_equal(first[1], cohort_log_ratio.mean_ratio_tables(12)[1])
    np.testing.assert_array_equal(cohort_log_ratio.ratio_tables(11.6, False)[1], first[1])
    assert cohort_log_ratio.patients(0.7) == cohort_log_ratio.MIN_PATIENTS


def test_table_at_is_exact_at_grid_points_and_holds_the_edge_beyond():
    table = np.arange(cohort_log_ratio.BASELINE_SD_GRID.size * cohort_log_ratio.CHANGE_SD_GRID.size,
                      dtype=float).reshape(cohort_log_ratio.BASELINE_SD_GRID.size, -1)
    s, sigma = cohort_log_ratio.BASELINE_SD_GRID[3], cohort_log_ratio.CHANGE_SD_GRID[5]
    assert cohort_log_ratio.table_at(table, s, sigma) == pytest.approx(table[3, 5])
    assert cohort_log_ratio.table_at(table, 99.0, 99.0) == pytest.approx(table[-1, -1])
    assert cohort_log_ratio.table_at(table, 0.0, 0.0) == pytest.approx(table[0, 0])


@pytest.fixture
def tables_not_in_memory():
    """The in-process caches of the tables emptied before and after the test."""
    def clear():
        cohort_log_ratio.median_ratio_variance_table.cache_clear()
        cohort_log_ratio.mean_ratio_tables.cache_clear()

    clear()
    yield
    clear()


def test_a_table_kept_on_disk_is_read_back_bit_for_bit_and_only_under_its_own_key(tmp_path, monkeypatch,
                                                                                   tables_not_in_memory):
    """With ``CRSMETA_TABLE_CACHE`` set (the workflow sets it), the first process to simulate a
    table writes it there and later ones read it: the same bytes as simulating it; a file under
    another key (another n, another kind of table) is never read for it."""
    simulated = cohort_log_ratio._simulated_median_ratio_variance_table(7)
    monkeypatch.setenv("CRSMETA_TABLE_CACHE", str(tmp_path))
    first = cohort_log_ratio.median_ratio_variance_table(7)
    kept = list(tmp_path.glob("median_ratio_variance_7_*.npy"))
    assert len(kept) == 1 and not list(tmp_path.glob(".*.tmp"))
    np.testing.assert_array_equal(np.load(kept[0]), simulated)
    np.save(kept[0], np.zeros_like(simulated))  # what a later process would read instead of simulating
    cohort_log_ratio.median_ratio_variance_table.cache_clear()
    np.testing.assert_array_equal(cohort_log_ratio.median_ratio_variance_table(7), np.zeros_like(simulated))
    np.testing.assert_array_equal(first, simulated)
    bias, variance = cohort_log_ratio.mean_ratio_tables(7)
    np.testing.assert_array_equal(variance, cohort_log_ratio._simulated_mean_ratio_tables(7)[1])
    assert len(list(tmp_path.glob("*.npy"))) == 2
