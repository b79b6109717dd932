"""SYNTHETIC: the bias of a mean-based row's θ estimate when its shift comes from its own sample CVs.

A row printing means ± SD before and after enters the model as y = log(mean post / mean pre)
shifted by (s_post² − s_pre²)/2, s² = log(1 + CV²) from the row's own CVs
(crsmeta.comparisons.mean_shift, Higgins et al. 2008). For log-normal levels (log-SD ``s_pre``
before) and changes ~ Normal(θ, σ) independent of the level, the true shift is σ²/2. This draws
``--reps`` cohorts of ``--n`` patients per (s_pre, σ) and prints the mean error of
y − shift − θ, its SD across cohorts, and the mean CV-based shift against σ²/2: sample CVs of
skewed levels fall short of their population values, the more so the larger the log-SD, and the
post levels' log-SD (√(s_pre² + σ²)) is the larger, so the shift falls short and θ comes out high.
The last column is the mean error once the model's correction at the true σ is added to the shift
(crsmeta.cv_shift: s_pre from the row's pre CV by indirect inference); it is computed for
``--corrected`` of the cohorts (a table per cohort is slow).

    python validation/cv_shift.py [--n 20] [--reps 20000] [--corrected 1000] [--seed 1]
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from crsmeta import cv_shift

THETA = -1.0
LOG_SD_PRE = (0.4, 0.8, 1.2)  # 1.2: the simulator's IL-6 and IFN-γ (crsmeta.simulate.spec)
CHANGE_SD = (0.5, 1.0, 1.5)


def cv_shift_errors(rng: np.random.Generator, log_sd_pre: float, change_sd: float, n: int,
                    reps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per simulated cohort: the CV-shifted log ratio of means minus θ, the CV-based shift and
    the pre CV."""
    pre = np.exp(rng.normal(0.0, log_sd_pre, (reps, n)))
    post = pre * np.exp(rng.normal(THETA, change_sd, (reps, n)))
    mean_pre, mean_post = pre.mean(axis=1), post.mean(axis=1)
    cv_pre, cv_post = pre.std(axis=1, ddof=1) / mean_pre, post.std(axis=1, ddof=1) / mean_post
    shift = (np.log1p(cv_post**2) - np.log1p(cv_pre**2)) / 2
    return np.log(mean_post / mean_pre) - shift - THETA, shift, cv_pre


def corrected_errors(error: np.ndarray, cv_pre: np.ndarray, change_sd: float, n: int) -> np.ndarray:
    """The errors with the model's small-sample correction at the true σ subtracted."""
    return np.array([e - cv_shift.cv_shift_bias(cv_shift.baseline_log_sd(cv, n), change_sd, n)
                     for e, cv in zip(error, cv_pre)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="patients per cohort")
    parser.add_argument("--reps", type=int, default=20000, help="cohorts per (s_pre, σ)")
    parser.add_argument("--corrected", type=int, default=1000, help="cohorts per (s_pre, σ) to correct")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    rng = np.random.default_rng(arguments.seed)
    print("| log-SD before | σ | mean error of θ | SD of the estimate | mean CV-based shift | σ²/2 "
          "| mean error, corrected |")
    print("|---|---|---|---|---|---|---|")
    for log_sd_pre, change_sd in itertools.product(LOG_SD_PRE, CHANGE_SD):
        error, shift, cv_pre = cv_shift_errors(rng, log_sd_pre, change_sd, arguments.n, arguments.reps)
        corrected = corrected_errors(error[:arguments.corrected], cv_pre[:arguments.corrected], change_sd, arguments.n)
        print(f"| {log_sd_pre} | {change_sd} | {error.mean():+.3f} | {error.std():.3f} | {shift.mean():.3f} "
              f"| {change_sd**2 / 2:.3f} | {corrected.mean():+.3f} ± {corrected.std() / np.sqrt(corrected.size):.3f} |")


if __name__ == "__main__":
    main()
