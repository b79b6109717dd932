"""The small-sample bias and variance of a log ratio of sample means shifted by the row's own sample CVs.

A summary row printing means ± SD (or SE) before and after enters the model as
y = log(mean post / mean pre) with the shift (ŝ_post² − ŝ_pre²)/2, ŝ² = log(1 + CV²) from the
row's own CVs (:func:`crsmeta.comparisons.mean_shift`, Higgins et al. 2008). For log-normal levels
that shift is right in the population but not in a sample of n: the sample CV of skewed levels
falls short of the population's, and the log of a sample mean falls short of the log of the
population mean, both the more so the larger the log-SD. The post levels have the larger log-SD
(s_post² = s_pre² + σ² when a patient's change is independent of the baseline level), so the
shifted y overstates θ, by about 0.24 with s_pre 1.2, σ 1 and n 20 (validation/cv_shift.py; the
sd and se routes' SBC in docs/validation.md).

:func:`cv_shift_tables` gives, for one row, that bias E[y − shift] − θ under the model as a
function of σ on :data:`SIGMA_GRID`, by simulation with fixed common random numbers (so the same
row always gets the same table). s_pre is the row's own, estimated from its pre CV by indirect
inference (the s whose expected log(1 + ĈV²) in samples of n equals the row's), which removes
most of the sample CV's own bias. The model adds the table at its σ[marker] to the row's shift
(crsmeta.model.build); the frequentist cross-check adds it at σ̂ (crsmeta.study_estimates): the
row's CVs still carry the shift, and σ corrects what a sample of n loses. Numpy only, so that the
cross-check need not import the model.

The same simulation gives the row's variance, Var[y − shift], which the model averages with the
delta-method variance from the row's two sample CVs and ρ (crsmeta.model.build.cv_shifted_row_variance):
that one alone is right on average for σ up to 1 but too small beyond, and its errors' tails are
heavier than a normal's (at s_pre 1.2, σ 1.5 and n 20 the standardised error has SD 1.16 and
3.6% beyond ±2.576; validation/cv_shift.py, docs/model.md, "Its variance").
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from crsmeta.cohort_log_ratio import standard_normals

# the flag of an observation (crsmeta.tables.OBSERVATIONS) whose mean_shift comes from both sides'
# printed CVs, set by crsmeta.comparisons; ``disp_pre`` is then its pre CV
SHIFT_FROM_CVS_FLAG = "shift_from_cvs"
SIGMA_GRID = np.linspace(0.0, 4.0, 81)  # σ[marker] of the log change; beyond 4 the table's last value
BASELINE_LOG_SD_GRID = np.linspace(0.01, 4.0, 200)
_STREAM = ()  # of crsmeta.cohort_log_ratio.standard_normals


def _log_mean_and_cv2(log_levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per simulated cohort: log of the sample mean and the squared sample CV (ddof 1, as printed)."""
    levels = np.exp(log_levels)
    mean = levels.mean(axis=1)
    return np.log(mean), (levels.std(axis=1, ddof=1) / mean) ** 2


@functools.lru_cache(maxsize=64)
def _expected_log_cv_term(n: int) -> np.ndarray:
    """E[log(1 + ĈV²)] in samples of n log-normal levels, on :data:`BASELINE_LOG_SD_GRID`."""
    baseline, _ = standard_normals(n, _STREAM)
    return np.array([np.log1p(_log_mean_and_cv2(s * baseline)[1]).mean() for s in BASELINE_LOG_SD_GRID])


def baseline_log_sd(cv_pre: float, n: int) -> float:
    """The log-SD of the baseline levels whose samples of n give, on average, the row's
    log(1 + CV²): the CV's own small-sample shortfall removed (indirect inference)."""
    return float(np.interp(np.log1p(cv_pre**2), _expected_log_cv_term(n), BASELINE_LOG_SD_GRID))


def cv_shift_moments(log_sd_pre: float, change_sd: float, n: int) -> tuple[float, float]:
    """Mean and variance of log(mean post / mean pre) − (ŝ_post² − ŝ_pre²)/2 − θ for samples of n
    log-normal levels with log-SD ``log_sd_pre`` and changes ~ Normal(θ, ``change_sd``)
    independent of them: the bias of the CV-shifted row and its variance."""
    baseline, change = standard_normals(n, _STREAM)
    log_pre = log_sd_pre * baseline
    log_mean_pre, cv2_pre = _log_mean_and_cv2(log_pre)
    log_mean_post, cv2_post = _log_mean_and_cv2(log_pre + change_sd * change)
    shifted = log_mean_post - log_mean_pre - (np.log1p(cv2_post) - np.log1p(cv2_pre)) / 2
    return float(shifted.mean()), float(shifted.var(ddof=1))


def cv_shift_tables(cv_pre: float, n: float) -> np.ndarray:
    """(2, :data:`SIGMA_GRID`): :func:`cv_shift_moments` of a row with pre CV ``cv_pre`` and n
    patients at each σ, the bias above the variance (n rounded to a whole number of patients, at
    least 2, for the simulation)."""
    patients = max(2, int(round(n)))
    log_sd_pre = baseline_log_sd(cv_pre, patients)
    return np.array([cv_shift_moments(log_sd_pre, change_sd, patients) for change_sd in SIGMA_GRID]).T


def has_shift_from_cvs(flags: str) -> bool:
    """Do an observation's ``flags`` (crsmeta.tables.OBSERVATIONS) hold :data:`SHIFT_FROM_CVS_FLAG`?"""
    return SHIFT_FROM_CVS_FLAG in flags.split(";")


def observation_tables(observation: Mapping) -> np.ndarray | None:
    """:func:`cv_shift_tables` of an observation with a shift from its CVs, from its pre CV and
    n_effective; None for any other."""
    if not has_shift_from_cvs(observation["flags"]):
        return None
    return cv_shift_tables(float(observation["disp_pre"]), float(observation["n_effective"]))
