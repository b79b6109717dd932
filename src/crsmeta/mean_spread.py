"""The variance inflation κ of a change of means printed with their SDs (or SEs) in cohorts of n.

A summary row printing a mean and its SD (or SE, ×√n) before and after enters the model with the
variance (d_pre² + d_post² − 2·r·d_pre·d_post)/n, its dispersions d read from the row and r from
the model's ρ (crsmeta.model.build.summary_change_variance). That variance is right on average,
but each row's is read from its own sample SDs, so the row's z-score y/√variance has a heavier
tail than a normal's, as a mean's with an estimated SD is a t: in cohorts of 4–6 the row's own 95%
interval covers 88–92% (docs/model.md, "Their estimated d"). As for a change of medians with their
quantiles (crsmeta.median_spread), the model's Normal likelihood takes the variance times
κ = (q₉₅ of |z| / 1.96)², at least 1, so that the row's own 95% interval covers 95%.

How heavy the tail is depends on n, on how unequal the two sides' SDs are, and on the
correlation r the row's variance subtracts: with equal SDs the estimate pools both sides' n − 1
degrees of freedom (κ 1.35 at n = 5), where one side much wider than the other leaves about
n − 1 (κ 2.0, a t₄'s), and a high r with unequal SDs makes the variance a small difference of two
estimates (κ 2.4 at n = 5, λ = 0.5, r = 0.9, against 1.7 at r = 0.5). So κ(n, λ, r) is simulated
on a grid of λ = the smaller SD over the larger and of r, and the model reads it at the row's
printed λ and at the row's own r, which moves with ρ as the model samples it
(crsmeta.model.build). The row's 95% interval then covers 95% whatever ρ is; with κ simulated at
ρ = 0.5 alone (until 2026-12-08) it covered 91.7–96% as ρ went from 0.9 to 0
(validation/mean_sd_inflation.py, tests/test_model_build.py).

The model leaves out the means of a log-ratio marker shifted by their CVs, whose variance is half
simulated (crsmeta.model.build). Numpy only, kept on disk as the cohort tables are
(crsmeta.cohort_log_ratio).

A change printed with its own SE, s/√n of the patients' n changes, is a mean with an estimated
SD and n − 1 degrees of freedom, so its κ needs no simulation: (t₀.₉₇₅,ₙ₋₁ / 1.96)²
(:func:`reported_se_inflation`), which makes its Normal 95% interval the paired-t interval its SE
gives. A change printed with its 95% CI has it already: its SE is the CI's half-width over 1.96
(crsmeta.comparisons.se_from_ci), the t quantile × s/√n where the CI is a t interval.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats
from scipy.interpolate import RegularGridInterpolator

from crsmeta.cohort_log_ratio import kept_on_disk
from crsmeta.comparisons import Z95
from crsmeta.median_spread import correlated, patients, variance_inflation

SD_RATIO_GRID = np.linspace(0.0, 1.0, 11)
"""λ, the smaller of a row's two SDs over the larger, at which κ(n, λ, r) is tabulated."""
CORRELATION_GRID = np.linspace(0.0, 0.95, 20)
"""r, the correlation a row's variance subtracts, at which κ(n, λ, r) is tabulated (constant
beyond 0.95: at r → 1 with equal SDs the variance vanishes and so would any row's scatter)."""
SIMULATED_COHORTS = 20_000
_SEED = 20261208
_SOURCE = Path(__file__)


def mean_difference_inflation(n: float, sd_pre: ArrayLike, sd_post: ArrayLike, correlation: ArrayLike) -> np.ndarray:
    """κ of a change of means printed with SDs ``sd_pre`` and ``sd_post`` (or the SEs × √n) in a
    cohort of ``n`` whose variance subtracts ``correlation`` (module docstring), interpolated at
    their ratio λ and at r; elementwise, the arguments broadcast."""
    ratio, correlation = np.broadcast_arrays(sd_ratio(sd_pre, sd_post), np.asarray(correlation, dtype=float))
    table = RegularGridInterpolator((SD_RATIO_GRID, CORRELATION_GRID), _inflation_table(patients(n)))
    return table(np.stack([ratio, np.clip(correlation, CORRELATION_GRID[0], CORRELATION_GRID[-1])], axis=-1))


def inflation_by_correlation(n: float, sd_pre: float, sd_post: float) -> np.ndarray:
    """κ on :data:`CORRELATION_GRID` of a row of ``n`` with SDs ``sd_pre`` and ``sd_post``: what the
    model reads at the row's r (crsmeta.model.build)."""
    return mean_difference_inflation(n, sd_pre, sd_post, CORRELATION_GRID)


def sd_ratio(sd_pre: ArrayLike, sd_post: ArrayLike) -> np.ndarray:
    """λ, the smaller SD over the larger (1 where both are 0)."""
    larger = np.maximum(sd_pre, sd_post)
    return np.divide(np.minimum(sd_pre, sd_post), larger, out=np.ones(np.shape(larger)), where=larger > 0)


def reported_se_inflation(n: ArrayLike) -> np.ndarray:
    """κ = (t₀.₉₇₅ with n − 1 df / 1.96)² of a change printed with its SE in a cohort of ``n``
    (at least 2 patients' worth of df, as crsmeta.comparisons.se_from_p_value; every comparison
    has its n) (module docstring)."""
    degrees = np.maximum(np.asarray(n, dtype=float) - 1.0, 1.0)
    return (stats.t.ppf(0.975, degrees) / Z95) ** 2


@functools.lru_cache(maxsize=256)
def _inflation_table(n: int) -> np.ndarray:
    return kept_on_disk("mean_difference_inflation", n, lambda: _simulated_inflation(n), _SOURCE)


def _simulated_inflation(n: int) -> np.ndarray:
    """κ(n, λ, r) on :data:`SD_RATIO_GRID` × :data:`CORRELATION_GRID`: pairs of normals correlated by
    r, the pre side's SD λ and the post side's 1 (κ is symmetric in the two sides), on fixed common
    random numbers per n (so κ is smooth in λ and r)."""
    rng = np.random.default_rng([_SEED, n])
    first, noise = rng.standard_normal((SIMULATED_COHORTS, n)), rng.standard_normal((SIMULATED_COHORTS, n))
    pre_sides = [(pre.std(axis=1, ddof=1), pre.mean(axis=1)) for pre in (ratio * first for ratio in SD_RATIO_GRID)]
    table = np.empty((SD_RATIO_GRID.size, CORRELATION_GRID.size))
    for j, r in enumerate(CORRELATION_GRID):
        post = correlated(first, noise, r)
        sd_post, mean_post = post.std(axis=1, ddof=1), post.mean(axis=1)
        for i, (sd_pre, mean_pre) in enumerate(pre_sides):
            variance = (sd_pre**2 + sd_post**2 - 2 * r * sd_pre * sd_post) / n
            table[i, j] = variance_inflation((mean_post - mean_pre) / np.sqrt(variance))
    return table
