"""SYNTHETIC: how often a change of means printed with their SDs covers its truth, with and without
the variance inflation κ(n, λ) (crsmeta.mean_spread).

Two kinds of row, each in cohorts drawn as the simulator draws them (a baseline Normal(0, s²), plus
changes Normal(0, σ²) independent of it, so the two sides correlate by ρ = s/√(s² + σ²) and their
SDs' ratio λ is ρ too):

- temperature's, a difference of means with the variance (d_pre² + d_post² − 2ρ·d_pre·d_post)/n
  from the row's sample SDs (°C), which the model multiplies by κ(n, λ, r) at the row's own SDs and r (here ρ);
- a log-ratio marker's, log(mean post / mean pre) of log-normal levels less the shift from the
  row's own CVs and its simulated bias (crsmeta.cv_shift), with the mean of the delta-method
  variance from its CVs and the variance simulated at σ (crsmeta.model.build.cv_shifted_row_variance),
  which the model does not inflate: printed with κ on its delta-method half, to show why not.

Per design: the 95% interval's coverage without and with κ, and the SD of the z-scores.

    python validation/mean_sd_inflation.py [--cohorts 20000] [--seed 3]
"""

from __future__ import annotations

import argparse

import numpy as np

from crsmeta import cv_shift, mean_spread
from crsmeta.comparisons import Z95
from crsmeta.model.build import log_normal_levels_correlation, summary_change_variance

SIZES = (4, 6, 10, 20)
TEMPERATURE_DESIGNS = [(0.6, 0.3), (0.6, 0.6), (0.4, 0.9)]  # (s, σ) in °C
MARKER_DESIGNS = [(0.6, 0.5), (1.0, 1.0), (1.2, 1.5), (0.4, 1.0)]  # (s, σ) of the log levels


def temperature_z(n: int, s: float, sigma: float, cohorts: int, rng: np.random.Generator):
    """z-scores of simulated rows, without and with κ."""
    pre = rng.normal(0.0, s, (cohorts, n))
    post = pre + rng.normal(0.0, sigma, pre.shape)
    rho = s / np.hypot(s, sigma)
    d_pre, d_post = pre.std(axis=1, ddof=1), post.std(axis=1, ddof=1)
    variance = summary_change_variance(d_pre, d_post, rho) / n
    z = (post.mean(axis=1) - pre.mean(axis=1)) / np.sqrt(variance)
    return z, z / np.sqrt(mean_spread.mean_difference_inflation(n, d_pre, d_post, rho))


def marker_z(n: int, s: float, sigma: float, cohorts: int, rng: np.random.Generator):
    """z-scores of simulated CV-shifted rows (bias and simulated variance at the true s and σ), with
    their model variance and with κ on its delta-method half."""
    bias, simulated = cv_shift.cv_shift_moments(s, sigma, n)
    log_pre = rng.normal(0.0, s, (cohorts, n))
    pre, post = np.exp(log_pre), np.exp(log_pre + rng.normal(0.0, sigma, log_pre.shape))
    mean_pre, mean_post = pre.mean(axis=1), post.mean(axis=1)
    cv_pre, cv_post = pre.std(axis=1, ddof=1) / mean_pre, post.std(axis=1, ddof=1) / mean_post
    error = np.log(mean_post / mean_pre) - (np.log1p(cv_post**2) - np.log1p(cv_pre**2)) / 2 - bias
    rho = s / np.hypot(s, sigma)
    levels_correlation = log_normal_levels_correlation(rho, cv_pre, cv_post).eval()
    delta = summary_change_variance(cv_pre, cv_post, levels_correlation) / n
    inflation = mean_spread.mean_difference_inflation(n, cv_pre, cv_post, levels_correlation)
    return error / np.sqrt((delta + simulated) / 2), error / np.sqrt((inflation * delta + simulated) / 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cohorts", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print("| row | n | s | σ | 95% covered, as before | with κ | SD of z, as before | with κ |")
    print("|---|---|---|---|---|---|---|---|")
    for row, designs, z_scores in (("temperature", TEMPERATURE_DESIGNS, temperature_z),
                                   ("log marker, CV-shifted", MARKER_DESIGNS, marker_z)):
        for n in SIZES:
            for s, sigma in designs:
                plain, inflated = z_scores(n, s, sigma, args.cohorts, rng)
                print(f"| {row} | {n} | {s} | {sigma} | {np.mean(np.abs(plain) < Z95):.3f} | "
                      f"{np.mean(np.abs(inflated) < Z95):.3f} | {plain.std():.2f} | {inflated.std():.2f} |")


if __name__ == "__main__":
    main()
