"""The CV-based shift's small-sample bias and variance (crsmeta.cv_shift): SYNTHETIC cohorts only."""

import numpy as np
import pytest

from crsmeta import cv_shift
from crsmeta.comparisons import mean_shift
from crsmeta.model.build import (
    cv_shift_at, cv_shifted_row_variance, log_normal_levels_correlation, summary_change_variance,
)

THETA, LOG_SD_PRE, CHANGE_SD, PATIENTS = -1.0, 1.2, 1.0, 20


def _cohorts(rng: np.random.Generator, cohorts: int, change_sd: float = CHANGE_SD
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per SYNTHETIC cohort: log ratio of means, the CV-based shift and the pre and post CVs."""
    pre = np.exp(rng.normal(0.0, LOG_SD_PRE, (cohorts, PATIENTS)))
    post = pre * np.exp(rng.normal(THETA, change_sd, (cohorts, PATIENTS)))
    cv_pre, cv_post = (x.std(axis=1, ddof=1) / x.mean(axis=1) for x in (pre, post))
    shift = mean_shift(np.sqrt(np.log1p(cv_pre**2)), np.sqrt(np.log1p(cv_post**2)))
    return np.log(post.mean(axis=1) / pre.mean(axis=1)), shift, cv_pre, cv_post


def _moments_of_rows(cv_pre: np.ndarray, change_sd: float) -> np.ndarray:
    """(bias, variance) of each row at the true σ, s_pre from its pre CV as the model has it."""
    return np.array([cv_shift.cv_shift_moments(cv_shift.baseline_log_sd(cv, PATIENTS), change_sd, PATIENTS)
                     for cv in cv_pre]).T


def test_the_corrected_shift_recovers_theta_where_the_cv_shift_overstates_it():
    y, shift, cv_pre, _ = _cohorts(np.random.default_rng(3), 400)
    bias, _ = _moments_of_rows(cv_pre, CHANGE_SD)
    standard_error = (y - shift).std() / np.sqrt(y.size)
    assert (y - shift - THETA).mean() > 10 * standard_error  # the CV shift alone: θ comes out high
    assert abs((y - shift - bias - THETA).mean()) < 3 * standard_error


def test_the_simulated_variance_standardises_the_corrected_rows_where_their_own_cvs_fall_short():
    """At σ 1.5 the delta-method variance from the rows' sample CVs (at the patients' true log
    correlation) leaves their errors an SD of about 1.2; the simulated variance about 1, and the
    model's mean of the two about 1 as well."""
    change_sd = 1.5
    y, shift, cv_pre, cv_post = _cohorts(np.random.default_rng(5), 600, change_sd)
    bias, variance = _moments_of_rows(cv_pre, change_sd)
    error = y - shift - bias - THETA
    rho = LOG_SD_PRE / np.hypot(LOG_SD_PRE, change_sd)
    correlation = log_normal_levels_correlation(rho, cv_pre, cv_post).eval()
    delta_method = summary_change_variance(cv_pre, cv_post, correlation) / PATIENTS
    assert np.std(error / np.sqrt(delta_method)) > 1.1
    assert np.std(error / np.sqrt(variance)) == pytest.approx(1.0, abs=0.06)
    assert np.std(error / np.sqrt(cv_shifted_row_variance(delta_method, variance))) == pytest.approx(1.0, abs=0.1)


def test_the_baseline_log_sd_undoes_the_sample_cv_shortfall():
    rng = np.random.default_rng(4)
    cv2 = [(x.std(ddof=1) / x.mean()) ** 2 for x in np.exp(rng.normal(0.0, LOG_SD_PRE, (2000, PATIENTS)))]
    assert np.sqrt(np.mean(np.log1p(cv2))) < LOG_SD_PRE - 0.2  # the plain CV's log-SD falls short
    typical_cv = np.sqrt(np.expm1(np.mean(np.log1p(cv2))))
    assert cv_shift.baseline_log_sd(typical_cv, PATIENTS) == pytest.approx(LOG_SD_PRE, abs=0.05)


def test_the_tables_are_the_same_on_every_call_and_vanish_without_change_sd():
    bias, variance = cv_shift.cv_shift_tables(1.5, 20.4)
    np.testing.assert_array_equal(np.stack([bias, variance]), cv_shift.cv_shift_tables(1.5, 20))
    assert bias[0] == pytest.approx(0.0, abs=1e-12)  # σ = 0: post is pre shifted, CVs equal
    assert variance[0] == pytest.approx(0.0, abs=1e-20)
    assert bias[20] > 0.1  # σ = 1
    assert np.all(np.diff(variance) > 0)


def test_bias_at_interpolates_each_row_and_holds_beyond_the_grid():
    tables = np.vstack([np.sin(cv_shift.SIGMA_GRID), cv_shift.SIGMA_GRID**2])
    sigma = np.array([0.333, 9.0])
    got = cv_shift_at(tables, sigma).eval()
    expected = [np.interp(sigma[0], cv_shift.SIGMA_GRID, tables[0]), tables[1, -1]]
    np.testing.assert_allclose(got, expected)
