"""The CV-based shift's small-sample bias (crsmeta.cv_shift): SYNTHETIC cohorts only."""

import numpy as np
import pytest

from crsmeta import cv_shift
from crsmeta.comparisons import mean_shift
from crsmeta.model.build import cv_shift_bias_at

THETA, LOG_SD_PRE, CHANGE_SD, PATIENTS = -1.0, 1.2, 1.0, 20


def _cohorts(rng: np.random.Generator, cohorts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per SYNTHETIC cohort: log ratio of means, the CV-based shift and the pre CV."""
    pre = np.exp(rng.normal(0.0, LOG_SD_PRE, (cohorts, PATIENTS)))
    post = pre * np.exp(rng.normal(THETA, CHANGE_SD, (cohorts, PATIENTS)))
    cv_pre, cv_post = (x.std(axis=1, ddof=1) / x.mean(axis=1) for x in (pre, post))
    shift = mean_shift(np.sqrt(np.log1p(cv_pre**2)), np.sqrt(np.log1p(cv_post**2)))
    return np.log(post.mean(axis=1) / pre.mean(axis=1)), shift, cv_pre


def test_the_corrected_shift_recovers_theta_where_the_cv_shift_overstates_it():
    y, shift, cv_pre = _cohorts(np.random.default_rng(3), 400)
    bias = np.array([cv_shift.cv_shift_bias(cv_shift.baseline_log_sd(cv, PATIENTS), CHANGE_SD, PATIENTS)
                     for cv in cv_pre])
    standard_error = (y - shift).std() / np.sqrt(y.size)
    assert (y - shift - THETA).mean() > 10 * standard_error  # the CV shift alone: θ comes out high
    assert abs((y - shift - bias - THETA).mean()) < 3 * standard_error


def test_the_baseline_log_sd_undoes_the_sample_cv_shortfall():
    rng = np.random.default_rng(4)
    cv2 = [(x.std(ddof=1) / x.mean()) ** 2 for x in np.exp(rng.normal(0.0, LOG_SD_PRE, (2000, PATIENTS)))]
    assert np.sqrt(np.mean(np.log1p(cv2))) < LOG_SD_PRE - 0.2  # the plain CV's log-SD falls short
    typical_cv = np.sqrt(np.expm1(np.mean(np.log1p(cv2))))
    assert cv_shift.baseline_log_sd(typical_cv, PATIENTS) == pytest.approx(LOG_SD_PRE, abs=0.05)


def test_the_table_is_the_same_on_every_call_and_vanishes_without_change_sd():
    table = cv_shift.cv_shift_bias_table(1.5, 20.4)
    np.testing.assert_array_equal(table, cv_shift.cv_shift_bias_table(1.5, 20))
    assert table[0] == pytest.approx(0.0, abs=1e-12)  # σ = 0: post is pre shifted, CVs equal
    assert table[20] > 0.1  # σ = 1


def test_bias_at_interpolates_each_row_and_holds_beyond_the_grid():
    tables = np.vstack([np.sin(cv_shift.SIGMA_GRID), cv_shift.SIGMA_GRID**2])
    sigma = np.array([0.333, 9.0])
    got = cv_shift_bias_at(tables, sigma).eval()
    expected = [np.interp(sigma[0], cv_shift.SIGMA_GRID, tables[0]), tables[1, -1]]
    np.testing.assert_allclose(got, expected)
