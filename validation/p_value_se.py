"""How well does the SE implied by a raw-scale paired-t P value describe a log ratio of means?

SYNTHETIC cohorts as the simulator writes them (log-normal pre values with the demo spec's
baseline spread, per-patient log change ~ Normal(θ + u, σ), u ~ Normal(0, τ) per cohort): for
each, y = log(mean post / mean pre), its paired-t P value on the raw values and the SE that
``crsmeta.comparisons.se_from_p_value`` derives from it. The residual y − (θ + u + σ²/2) is
pure sampling error; it is scaled by three candidate SEs:

* ``p_value``: the P-value-implied SE (what the model uses as the prior mean of se²),
* ``sigma``: σ/√n, the SE of a mean of log ratios (what a learned se² is centred on),
* ``geometric``: the geometric mean of the two,
* ``lognormal``: the SE the same t statistic implies under the model's own assumptions
  (log-normal levels, change independent of the baseline level; true σ), a candidate not
  used by the model: see :func:`lognormal_se`.

    python validation/p_value_se.py [--cohorts 1500] [--seed 2]

prints, per marker, SD(z), the coverage of y ± 1.645·se, the mean log ratio of each SE to the
residuals' SD, and the correlation of log se with the cohort effect u (a P-value SE that grows
with the cohort's own effect discounts exactly the cohorts that would show heterogeneity).

A second table (:func:`pull_toward_no_change`) follows the same SE across true changes θ, with no
study effect. For log-normal levels the patients with the highest levels drive both the change of
the mean and the SD of the raw differences, so the SE is correlated with the row's own sampling
error, and weighting rows by 1/se² favours those whose error brought y nearer 0 (for temperature's
normal levels |y|/t is the sample SD/√n, independent of y: no pull). It prints the plain mean of y
against θ (the σ²/2 shift and its small-sample bias) and how far the inverse-variance weighted
mean lies from it: the pull of the P-value SE toward no change (y = 0, i.e. θ = −shift), and the
same pull for three candidate SEs that would replace it (see :func:`pull_toward_no_change`).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from scipy import stats

from crsmeta.comparisons import se_from_p_value
from crsmeta.simulate import SimulationSpec
from crsmeta.simulate.truth import is_difference

# (marker, sigma, theta): simulation settings within the demo hyperprior's range
CASES = (("IL-6", 0.45, -0.6), ("ferritin", 0.7, -0.6), ("CRP", 0.5, -0.8), ("TNF-alpha", 0.45, -0.3))
TAU = 0.4
PULL_THETAS = (-1.5, -1.0, -0.5, -0.25, 0.0, 0.5, 1.0)
COHORT_SIZE = (12, 40)


def lognormal_se(y: float, t: float, n: int, sigma: float) -> float:
    """SE of y = log(mean post / mean pre) from a raw-scale paired t statistic, for log-normal
    levels whose log change ~ Normal(·, σ) is independent of the baseline level.

    With R = e^y, t fixes the relative SD of the raw differences, D² = n(1 − R)²/t², which under
    these assumptions equals e^{s²}((1 − R)² + R²(e^{σ²} − 1)) − (1 − R)², s the baseline log-SD;
    solving for e^{s²} gives Var(y) ≈ e^{s²}(e^{σ²} − 1)/n (delta method).
    """
    ratio = np.exp(y)
    d2 = n * (1 - ratio) ** 2 / t**2
    baseline = (d2 + (1 - ratio) ** 2) / ((1 - ratio) ** 2 + ratio**2 * np.expm1(sigma**2))
    return float(np.sqrt(baseline * np.expm1(sigma**2) / n))


def cohort_levels(marker: str, n: int, change: float, sigma: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One SYNTHETIC cohort's levels before and after, as the simulator draws them: log-normal
    levels with a log change ~ Normal(change, σ), or for temperature normal levels with a change
    ~ Normal(change, σ)."""
    centre, spread = SimulationSpec().baseline[marker]
    if is_difference(marker):
        pre = rng.normal(centre, spread, size=n)
        return pre, pre + rng.normal(change, sigma, size=n)
    pre = np.exp(rng.normal(np.log(centre), spread, size=n))
    return pre, pre * np.exp(rng.normal(change, sigma, size=n))


def simulate_cohorts(marker: str, sigma: float, theta: float, n_cohorts: int,
                     rng: np.random.Generator) -> pd.DataFrame:
    """One row per SYNTHETIC cohort: n, u, y, the residual and the three candidate SEs."""
    rows = []
    for _ in range(n_cohorts):
        n = int(rng.integers(COHORT_SIZE[0], COHORT_SIZE[1] + 1))
        u = rng.normal(0.0, TAU)
        pre, post = cohort_levels(marker, n, theta + u, sigma, rng)
        y = float(np.log(post.mean() / pre.mean()))
        p = float(stats.ttest_rel(post, pre).pvalue)
        if not 0 < p < 1:
            continue
        t = float(stats.t.ppf(1 - p / 2, df=n - 1))
        rows.append({"n": n, "u": u, "residual": y - (theta + u + sigma**2 / 2),
                     "p_value": se_from_p_value(y, p, n), "sigma": sigma / np.sqrt(n),
                     "lognormal": lognormal_se(y, t, n, sigma)})
    frame = pd.DataFrame(rows)
    frame["geometric"] = np.sqrt(frame["p_value"] * frame["sigma"])
    return frame


def pull_toward_no_change(marker: str, sigma: float, thetas: tuple[float, ...], n_cohorts: int,
                          rng: np.random.Generator) -> pd.DataFrame:
    """Per true θ (no study effect): the mean of y (a log ratio of means; for temperature a
    difference of means) minus θ, the inverse-variance weighted mean of y (weights 1/se², se from
    the P value printed to two significant digits, as the simulator prints it) minus the plain
    mean, and corr(y, log se).

    The same pull for three other SEs of the same cohorts, candidates for removing it (levels
    only; temperature has no pull to remove): ``lognormal`` (:func:`lognormal_se` at the true σ);
    ``g at mean``, the P-value SE with its factor |y/(e^y − 1)| (|y|/t = that factor × the
    relative SD of the raw differences / √n) taken at the plain mean of y instead of the row's
    own y; and σ/√n, an SE that does not depend on the row's data (a learned se²'s centre)."""
    difference = is_difference(marker)
    rows = []
    for theta in thetas:
        y, se, n_patients = [], [], []
        for _ in range(n_cohorts):
            n = int(rng.integers(COHORT_SIZE[0], COHORT_SIZE[1] + 1))
            pre, post = cohort_levels(marker, n, theta, sigma, rng)
            p = float(f"{stats.ttest_rel(post, pre).pvalue:.2g}")
            if not 0 < p < 1:
                continue
            y.append(float(np.mean(post - pre) if difference else np.log(post.mean() / pre.mean())))
            se.append(se_from_p_value(y[-1], p, n))
            n_patients.append(n)
        y, se, n_patients = np.array(y), np.array(se), np.array(n_patients)
        t = np.abs(y) / se  # the t statistic the P value prints, as se_from_p_value read it
        row = {"marker": marker, "σ": sigma, "θ": theta, "mean y − θ": y.mean() - theta,
               "weighted − mean": _pull(y, se), "corr(y, log se)": np.corrcoef(y, np.log(se))[0, 1]}
        if not difference:
            row |= {
                "lognormal": _pull(y, np.array([lognormal_se(*cohort, sigma) for cohort in zip(y, t, n_patients)])),
                "g at mean": _pull(y, se * _log_ratio_factor(np.full_like(y, y.mean())) / _log_ratio_factor(y)),
                "σ/√n": _pull(y, sigma / np.sqrt(n_patients)),
            }
        rows.append(row)
    return pd.DataFrame(rows)


def _pull(y: np.ndarray, se: np.ndarray) -> float:
    """The inverse-variance weighted mean of y minus its plain mean."""
    return float(np.sum(y / se**2) / np.sum(1 / se**2) - y.mean())


def _log_ratio_factor(y: np.ndarray) -> np.ndarray:
    """|y / (e^y − 1)|, 1 at y = 0."""
    factor = np.ones_like(y)
    moved = y != 0
    factor[moved] = np.abs(y[moved] / np.expm1(y[moved]))
    return factor


def summarise(frame: pd.DataFrame, marker: str) -> pd.DataFrame:
    spread = frame["residual"].std()
    rows = []
    for name in ("p_value", "sigma", "geometric", "lognormal"):
        z = frame["residual"] / frame[name]
        rows.append({"marker": marker, "se": name, "SD(z)": z.std(), "coverage_90": np.mean(np.abs(z) < 1.645),
                     "mean log(se / SD of residuals)": np.log(frame[name] / spread).mean(),
                     "corr(log se, u)": np.corrcoef(np.log(frame[name]), frame["u"])[0, 1]})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    tables = [summarise(simulate_cohorts(marker, sigma, theta, args.cohorts, rng), marker)
              for marker, sigma, theta in CASES]
    print(pd.concat(tables).to_markdown(index=False, floatfmt=".2f"))
    print()
    pulls = [pull_toward_no_change(marker, sigma, PULL_THETAS, args.cohorts, rng)
             for marker, sigma in (*((m, s) for m, s, _ in CASES[:2]), ("temperature", 0.6))]
    pulls = pd.concat(pulls).astype(object)
    print(pulls.where(pulls.notna(), None).to_markdown(index=False, floatfmt="+.3f"))  # None prints blank


if __name__ == "__main__":
    main()
