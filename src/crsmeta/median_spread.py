"""The variance of a change of two medians printed with their IQRs or ranges, in cohorts of n.

A summary row printing a median and its IQR (or range) before and after enters the model as
y = median post − median pre (of the log levels for markers, Wan et al. 2014's log-normal
reading; of °C for temperature), with the two sides' dispersions d_pre and d_post read from their
quantiles (crsmeta.comparisons.log_sd_from_quantiles). With the patients' pre/post correlation ρ,

    Var[y] = A(n)·(s_pre² + s_post²) − 2·C(n, ρ)·s_pre·s_post

exactly for normal (log) levels, A(n) the variance of the median of n standard normals and C(n, ρ)
the covariance of the medians of n pairs of standard normals correlated by ρ. Their asymptotic
values, (π/2)/n and arcsin(ρ)/n, overstate Var[y] in cohorts of 5 to 30: by 1.15× to 2.5× for
an IQR at ρ from 0.5 to 0.97 (docs/model.md). And d² overstates s² on average, as the quantiles'
dispersion is itself estimated (by 12% for an IQR of 12 patients). So a row's variance is

    efficiency(n)·(d_pre² + d_post² − 2·r(n, ρ)·d_pre·d_post)/n

with efficiency(n) = n·A(n)/E[d²] and r(n, ρ) = C(n, ρ)·E[d²]/(A(n)·E[d_pre·d_post]) (all at
s = 1), whose mean is Var[y]: both simulated on fixed common random numbers per n and kind of
spread (the same row always gets the same numbers), r on a grid even in √(1 − ρ), along which it
is smooth up to ρ = 1 (in ρ it turns steeply there). The model interpolates r linearly at its ρ
(crsmeta.model.build).

That variance is right on average, but each row's is read from its own estimated d, so the row's
z-score y/√variance has a heavier tail than a normal's (a t-like one: its d is too small as
often as too large, and a small d makes a large z): in cohorts of 5 an IQR row's 95% interval
covers 86–87%, a range row's 90–92%. The model's Normal likelihood therefore takes the variance
times κ(n) ≥ 1, the square of the 95th percentile of |z| over 1.96, so that the row's own 95%
interval covers 95% (as a t's wider quantile does for a mean with an estimated SD), simulated on
the same cohorts at ρ = :data:`INFLATION_RHO`. The simulation is numpy only and kept on disk as
the cohort tables are (crsmeta.cohort_log_ratio).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from crsmeta import cohort_log_ratio
from crsmeta.cohort_log_ratio import kept_on_disk
from crsmeta.comparisons import Z95, wan_denominator

ROOT_ONE_MINUS_RHO_GRID = np.linspace(0.0, np.sqrt(0.8), 21)
"""√(1 − ρ) at which r(n, ρ) is tabulated: ρ from 1 down to 0.2 (below 0.2, 0.2's value: the
cross term is small there, and ρ's Beta(5, 5) prior puts 2% of its mass below)."""
SIMULATED_COHORTS = 10_000
MAX_PATIENTS = 200
"""Larger cohorts take this one's tables (near the asymptotic values there)."""
INFLATION_RHO = 0.5
"""ρ at which κ(n) is simulated: the mean of ρ's default prior, Beta(5, 5). κ varies with ρ much
less than with n (docs/model.md, "Their estimated d: the variance inflation κ(n)")."""
QUANTILES = {"iqr": (25, 50, 75), "range": (0, 50, 100)}
"""Percentiles printed with the median, by kind of spread (as numpy computes a sample's)."""
SPREAD_OF_METHOD = {"iqr_log": "iqr", "iqr": "iqr", "range_log": "range", "range": "range"}
"""The comparisons' ``method`` of a row whose dispersions come from quantiles → its kind of spread."""
_SEED = 20261206
_SOURCE = Path(__file__)


def patients(n: float) -> int:
    """A row's n as the whole number of patients its table is simulated for: the cohort tables'
    (:func:`crsmeta.cohort_log_ratio.patients`), at most :data:`MAX_PATIENTS`."""
    return min(MAX_PATIENTS, cohort_log_ratio.patients(n))


def median_difference_terms(n: float, spread: str) -> tuple[float, np.ndarray, float]:
    """(efficiency(n), r(n, ρ) on :data:`ROOT_ONE_MINUS_RHO_GRID`, κ(n)) of a change of medians
    printed with their ``spread`` ("iqr" or "range") in a cohort of ``n`` (module docstring)."""
    table = _terms_table(patients(n), spread)
    return float(table[0]), table[1:-1], float(table[-1])


@functools.lru_cache(maxsize=256)
def _terms_table(n: int, spread: str) -> np.ndarray:
    if spread not in QUANTILES:
        raise ValueError(f"spread must be one of {sorted(QUANTILES)}, not {spread!r}")
    return kept_on_disk(f"median_difference_{spread}", n, lambda: _simulated_terms(n, spread), _SOURCE)


def _simulated_terms(n: int, spread: str) -> np.ndarray:
    """[efficiency(n), r(n, ρ) on the grid, κ(n)], r such that the row's variance at s_pre = s_post
    averages to the simulated Var[y] exactly: taken from the variance of the simulated y itself,
    not from the covariance of its two medians, whose noise the difference of two close
    variances (ρ near 1) would multiply."""
    rng = np.random.default_rng([_SEED, n, list(QUANTILES).index(spread)])
    pre, noise = rng.standard_normal((SIMULATED_COHORTS, n)), rng.standard_normal((SIMULATED_COHORTS, n))
    median_pre, d_pre = _median_and_dispersion(pre, n, spread)
    variance_per_d_squared = median_pre.var(ddof=1) / np.mean(d_pre**2)  # efficiency(n)/n
    correlation = []
    for root in ROOT_ONE_MINUS_RHO_GRID:
        rho = 1.0 - root**2
        median_post, d_post = _median_and_dispersion(correlated(pre, noise, rho), n, spread)
        variance = (median_post - median_pre).var(ddof=1)
        both_sides = variance_per_d_squared * (np.mean(d_pre**2) + np.mean(d_post**2))
        correlation.append((both_sides - variance) / (2 * variance_per_d_squared * np.mean(d_pre * d_post)))
    median_post, d_post = _median_and_dispersion(correlated(pre, noise, INFLATION_RHO), n, spread)
    r = np.interp(np.sqrt(1.0 - INFLATION_RHO), ROOT_ONE_MINUS_RHO_GRID, correlation)
    row_variance = variance_per_d_squared * (d_pre**2 + d_post**2 - 2 * r * d_pre * d_post)
    inflation = variance_inflation((median_post - median_pre) / np.sqrt(row_variance))
    return np.array([n * variance_per_d_squared, *correlation, inflation])


def correlated(pre: np.ndarray, noise: np.ndarray, rho: float) -> np.ndarray:
    """Standard normals correlated with ``pre`` by ``rho``, from independent ``noise``."""
    return rho * pre + np.sqrt(1.0 - rho**2) * noise


def variance_inflation(z: np.ndarray) -> float:
    """κ: (95th percentile of |z| / 1.96)², at least 1. A quantile rather than E[z²], which
    in cohorts of a few patients is dominated by the rare rows whose d is near 0."""
    return max(1.0, float(np.quantile(np.abs(z), 0.95) / Z95) ** 2)


def _median_and_dispersion(levels: np.ndarray, n: int, spread: str) -> tuple[np.ndarray, np.ndarray]:
    low, median, high = np.percentile(levels, QUANTILES[spread], axis=1)
    return median, (high - low) / wan_denominator(n, spread)
