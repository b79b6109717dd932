"""The variance inflation κ of a change of means printed with their SDs (or SEs) in cohorts of n.

A summary row printing a mean and its SD (or SE, ×√n) before and after enters the model with the
variance (d_pre² + d_post² − 2·r·d_pre·d_post)/n, its dispersions d read from the row and r from
the model's ρ (crsmeta.model.build.summary_change_variance). That variance is right on average,
but each row's is read from its own sample SDs, so the row's z-score y/√variance has a heavier
tail than a normal's, as a mean's with an estimated SD is a t: in cohorts of 4–6 the row's own 95%
interval covers 88–92% (docs/model.md, "Their estimated d"). As for a change of medians with their
quantiles (crsmeta.median_spread), the model's Normal likelihood takes the variance times
κ = (q₉₅ of |z| / 1.96)², at least 1, so that the row's own 95% interval covers 95%.

How heavy the tail is depends on n and on how unequal the two sides' SDs are: with equal ones
the estimate pools both sides' n − 1 degrees of freedom (κ 1.35 at n = 5), where one side much
wider than the other leaves about n − 1 (κ 2.0, a t₄'s). So κ(n, λ) is simulated on a grid of
λ = the smaller SD over the larger, at ρ = :data:`median_spread.INFLATION_RHO`, and the model
reads it at the row's printed λ. Where ρ ≈ λ (as a patient's change independent of the baseline
level makes them) the intervals then cover 94–95.6% in cohorts of 4–30
(validation/mean_sd_inflation.py, tests/test_model_build.py); at ρ far above λ somewhat less.
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

from crsmeta.cohort_log_ratio import kept_on_disk
from crsmeta.comparisons import Z95
from crsmeta.median_spread import INFLATION_RHO, correlated, patients, variance_inflation

SD_RATIO_GRID = np.linspace(0.0, 1.0, 11)
"""λ, the smaller of a row's two SDs over the larger, at which κ(n, λ) is tabulated."""
SIMULATED_COHORTS = 20_000
_SEED = 20261208
_SOURCE = Path(__file__)


def mean_difference_inflation(n: float, sd_pre: ArrayLike, sd_post: ArrayLike) -> np.ndarray:
    """κ of a change of means printed with SDs ``sd_pre`` and ``sd_post`` (or the SEs × √n) in a
    cohort of ``n``, interpolated at their ratio λ (module docstring); elementwise over arrays of
    SDs."""
    larger = np.maximum(sd_pre, sd_post)
    ratio = np.divide(np.minimum(sd_pre, sd_post), larger, out=np.ones(np.shape(larger)), where=larger > 0)
    return np.interp(ratio, SD_RATIO_GRID, _inflation_table(patients(n)))


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
    """κ(n, λ) on :data:`SD_RATIO_GRID`: pairs of normals correlated by ρ, the pre side's SD λ and the
    post side's 1 (κ is symmetric in the two sides), on fixed common random numbers per n."""
    rng = np.random.default_rng([_SEED, n])
    first, noise = rng.standard_normal((SIMULATED_COHORTS, n)), rng.standard_normal((SIMULATED_COHORTS, n))
    post = correlated(first, noise, INFLATION_RHO)
    sd_post = post.std(axis=1, ddof=1)
    inflation = []
    for ratio in SD_RATIO_GRID:
        pre = ratio * first
        sd_pre = pre.std(axis=1, ddof=1)
        variance = (sd_pre**2 + sd_post**2 - 2 * INFLATION_RHO * sd_pre * sd_post) / n
        inflation.append(variance_inflation((post.mean(axis=1) - pre.mean(axis=1)) / np.sqrt(variance)))
    return np.array(inflation)
