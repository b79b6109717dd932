"""SYNTHETIC: the variance of a change of medians printed with their IQRs or ranges, as simulated
and as the model computes it.

The SBC routes `iqr` and `range` showed the markers' τ leaning low (docs/validation.md). This
draws cohorts as the simulator does (log levels Normal(0, ``--log-sd``²) before, plus changes
Normal(0, σ²) independent of them, so ρ = s/√(s² + σ²); medians and quantiles of the levels as
numpy computes them, read back to log-SDs by Wan et al.'s denominators,
crsmeta.comparisons.log_sd_from_quantiles) and prints, per design, Var[y] of y = log(median post /
median pre) divided by the mean row variance the model gives, at the patients' ρ:

- asymptotically, (π/2)(d_pre² + d_post² − (4/π)·arcsin(ρ)·d_pre·d_post)/n (the model before 0272eee);
- in finite samples (crsmeta.median_spread, the model since), whose ratio should be 1;

and E[y²/se²], how far the row's z-score departs from a unit variance, d being estimated, with
how often the row's 95% interval covers y's mean (0) with that variance and with it times κ(n)
(the model's since the variance inflation, crsmeta.median_spread).

    python validation/median_quantile_variance.py [--cohorts 40000] [--log-sd 1.2] [--seed 3]
"""

from __future__ import annotations

import argparse

import numpy as np
import pytensor.tensor as pt

from crsmeta import median_spread
from crsmeta.comparisons import Z95, log_sd_from_quantiles
from crsmeta.model.build import pre_post_correlation, summary_change_variance

DESIGNS = [(spread, n, sigma) for spread in ("iqr", "range") for n in (5, 12, 30) for sigma in (0.3, 1.0, 2.0)]


def row_variances(spread: str, n: int, sigma: float, log_sd: float, cohorts: int, rng: np.random.Generator):
    """Simulated y, and each cohort's asymptotic and finite-sample row variance at the true ρ."""
    pre = rng.normal(0.0, log_sd, (cohorts, n))
    post = pre + rng.normal(0.0, sigma, pre.shape)
    quantiles = [np.percentile(np.exp(side), median_spread.QUANTILES[spread], axis=1) for side in (pre, post)]
    y = np.log(quantiles[1][1] / quantiles[0][1])
    d_pre, d_post = (np.array([log_sd_from_quantiles(low, high, n, spread) for low, high in zip(side[0], side[2])])
                     for side in quantiles)
    rho = log_sd / np.hypot(log_sd, sigma)
    asymptotic = np.pi / 2 * summary_change_variance(d_pre, d_post, 2 / np.pi * np.arcsin(rho)) / n
    efficiency, table, inflation = median_spread.median_difference_terms(n, spread)
    correlation = pre_post_correlation(pt.as_tensor(rho), 1.0, table[None, :], 1.0).eval()
    finite = efficiency * summary_change_variance(d_pre, d_post, correlation) / n
    return y, asymptotic, finite, inflation, rho


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", type=int, default=40_000)
    parser.add_argument("--log-sd", type=float, default=1.2)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print("| spread | n | σ | ρ | Var[y] ÷ mean asymptotic se² | Var[y] ÷ mean finite-sample se² | E[y²/se²] "
          "| 95% interval covers | κ(n) | with κ(n) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for spread, n, sigma in DESIGNS:
        y, asymptotic, finite, inflation, rho = row_variances(spread, n, sigma, args.log_sd, args.cohorts, rng)
        z = np.abs(y) / np.sqrt(finite)
        print(f"| {spread} | {n} | {sigma} | {rho:.2f} | {y.var() / asymptotic.mean():.2f} | "
              f"{y.var() / finite.mean():.2f} | {np.mean(y**2 / finite):.2f} | {np.mean(z < Z95):.3f} | "
              f"{inflation:.2f} | {np.mean(z < Z95 * np.sqrt(inflation)):.3f} |")


if __name__ == "__main__":
    main()
