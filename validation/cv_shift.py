"""SYNTHETIC: the bias and variance of a mean-based row's θ estimate when its shift comes from its own sample CVs.

A row printing means ± SD before and after enters the model as y = log(mean post / mean pre)
shifted by (s_post² − s_pre²)/2, s² = log(1 + CV²) from the row's own CVs
(crsmeta.comparisons.mean_shift, Higgins et al. 2008). For log-normal levels (log-SD ``s_pre``
before) and changes ~ Normal(θ, σ) independent of the level, the true shift is σ²/2. This draws
``--reps`` cohorts of ``--n`` patients per (s_pre, σ) and prints the mean error of
y − shift − θ, its SD across cohorts, and the mean CV-based shift against σ²/2: sample CVs of
skewed levels fall short of their population values, the more so the larger the log-SD, and the
post levels' log-SD (√(s_pre² + σ²)) is the larger, so the shift falls short and θ comes out high.
The mean error once the model's correction at the true σ is added to the shift (crsmeta.cv_shift:
s_pre from the row's pre CV by indirect inference) is computed for ``--corrected`` of the cohorts
(a table per cohort is slow), and so is the question whether the row's variance, which the model
takes as known, is right: the corrected error divided by the square root of the delta-method
variance from the row's two sample CVs (crsmeta.model.build's functions, at the patients' true
log-level correlation s_pre/√(s_pre² + σ²); the model's variance for such rows until 2026-12-07).
Its SD should be 1 and its share beyond ±1.645 and ±2.576 0.10 and 0.01. Then: that SD with the
population CVs in place of the sample ones; with the simulated Var[y − shift] at the true σ
(crsmeta.cv_shift); and with the model's variance since, the mean of the two
(crsmeta.model.build.cv_shifted_row_variance).

    python validation/cv_shift.py [--n 20] [--reps 20000] [--corrected 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from crsmeta import cv_shift
from crsmeta.model.build import cv_shifted_row_variance, log_normal_levels_correlation, summary_change_variance

THETA = -1.0
LOG_SD_PRE = (0.4, 0.8, 1.2)  # 1.2: the simulator's IL-6 and IFN-γ (crsmeta.simulate.spec)
CHANGE_SD = (0.5, 1.0, 1.5)


def cv_shift_errors(rng: np.random.Generator, log_sd_pre: float, change_sd: float, n: int,
                    reps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per simulated cohort: the CV-shifted log ratio of means minus θ, the CV-based shift and
    the pre and post CVs."""
    pre = np.exp(rng.normal(0.0, log_sd_pre, (reps, n)))
    post = pre * np.exp(rng.normal(THETA, change_sd, (reps, n)))
    mean_pre, mean_post = pre.mean(axis=1), post.mean(axis=1)
    cv_pre, cv_post = pre.std(axis=1, ddof=1) / mean_pre, post.std(axis=1, ddof=1) / mean_post
    shift = (np.log1p(cv_post**2) - np.log1p(cv_pre**2)) / 2
    return np.log(mean_post / mean_pre) - shift - THETA, shift, cv_pre, cv_post


def corrected_errors(error: np.ndarray, cv_pre: np.ndarray, change_sd: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The errors with the model's small-sample correction at the true σ subtracted, and the
    variance the model gives each row (both crsmeta.cv_shift, s_pre from the row's pre CV)."""
    bias, variance = np.array([cv_shift.cv_shift_moments(cv_shift.baseline_log_sd(cv, n), change_sd, n)
                               for cv in cv_pre]).T
    return error - bias, variance


def row_variance(cv_pre: np.ndarray, cv_post: np.ndarray, log_sd_pre: float, change_sd: float,
                 n: int) -> np.ndarray:
    """The delta-method variance of a row of means with CVs ``cv_pre`` and ``cv_post``, as the model
    computes it, at ρ the log levels' true correlation when changes are independent of the
    baseline level."""
    rho = log_sd_pre / np.hypot(log_sd_pre, change_sd)
    correlation = log_normal_levels_correlation(rho, cv_pre, cv_post).eval()
    return summary_change_variance(cv_pre, cv_post, correlation) / n


def population_cvs(log_sd_pre: float, change_sd: float) -> tuple[float, float]:
    """The CVs of the log-normal levels before and after (log-SDs s_pre and √(s_pre² + σ²))."""
    return (float(np.sqrt(np.expm1(log_sd_pre**2))),
            float(np.sqrt(np.expm1(log_sd_pre**2 + change_sd**2))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="patients per cohort")
    parser.add_argument("--reps", type=int, default=20000, help="cohorts per (s_pre, σ)")
    parser.add_argument("--corrected", type=int, default=1000, help="cohorts per (s_pre, σ) to correct")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    rng = np.random.default_rng(arguments.seed)
    print("| log-SD before | σ | mean error of θ | SD of the estimate | mean CV-based shift | σ²/2 "
          "| mean error, corrected | SD of z | beyond ±1.645 | beyond ±2.576 | SD of z, population CVs "
          "| SD of z, simulated | beyond ±2.576 | SD of z, model | beyond ±1.645 | beyond ±2.576 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for log_sd_pre, change_sd in itertools.product(LOG_SD_PRE, CHANGE_SD):
        error, shift, cv_pre, cv_post = cv_shift_errors(rng, log_sd_pre, change_sd, arguments.n, arguments.reps)
        kept = slice(arguments.corrected)
        corrected, simulated_variance = corrected_errors(error[kept], cv_pre[kept], change_sd, arguments.n)
        of_sds = row_variance(cv_pre[kept], cv_post[kept], log_sd_pre, change_sd, arguments.n)
        z = corrected / np.sqrt(of_sds)
        z_simulated = corrected / np.sqrt(simulated_variance)
        z_model = corrected / np.sqrt(cv_shifted_row_variance(of_sds, simulated_variance))
        population = (np.full(corrected.size, cv) for cv in population_cvs(log_sd_pre, change_sd))
        z_population = corrected / np.sqrt(row_variance(*population, log_sd_pre, change_sd, arguments.n))
        print(f"| {log_sd_pre} | {change_sd} | {error.mean():+.3f} | {error.std():.3f} | {shift.mean():.3f} "
              f"| {change_sd**2 / 2:.3f} | {corrected.mean():+.3f} ± {corrected.std() / np.sqrt(corrected.size):.3f} "
              f"| {z.std():.2f} | {np.mean(np.abs(z) > 1.645):.3f} | {np.mean(np.abs(z) > 2.576):.4f} "
              f"| {z_population.std():.2f} | {z_simulated.std():.2f} | {np.mean(np.abs(z_simulated) > 2.576):.4f} "
              f"| {z_model.std():.2f} | {np.mean(np.abs(z_model) > 1.645):.3f} | {np.mean(np.abs(z_model) > 2.576):.4f} |")


if __name__ == "__main__":
    main()
