"""SYNTHETIC: what a raw-scale P value printed as a bound says about the SE of a log ratio of means.

The `p_bound` route's SBC (docs/validation.md section 1) found σ of its log-ratio markers far
too high and θ too low. A row printing means and ``p < x`` or ``p > x`` entered the model with a
learned se² ~ InverseGamma(3, mean σ[marker]²/n) restricted to se ≤ or ≥ |y| / t⁻¹(1 − x/2)
(crsmeta.comparisons.se_from_p_value), y the log ratio of the means; since 9fd2294, on what this
script shows, a marker's ``p > x`` sets no floor, and since the learned se² is centred on the
simulated variance of a ratio of cohort means (crsmeta.cohort_log_ratio), ``p < x`` no ceiling
either: the ceiling lies below that SD in a quarter of the rows. This draws cohorts as the
simulator does (log-normal levels with log-SD ``--log-sd``, changes ~ Normal(θ, σ) independent of
the level, a paired t test on the raw values, the P value printed as the smallest of ``<0.001``,
``<0.01``, ``<0.05`` it lies below, else ``>0.05``) and prints how each bound compares with
σ/√n (the SE the learned se² was centred on before), with the delta-method SE of a log ratio of
two means of such levels, √(e^{s²}(e^{σ²} − 1)/n), and with its simulated sampling SD (the
model's since, crsmeta.cohort_log_ratio).

    python validation/p_bound_scale.py [--cohorts 4000] [--log-sd <IL-6's 1.2>] [--seed 1]

θ ~ Normal(−0.5, 1), σ ~ Gamma(2, 2/mean) with the model's default prior mean
(``ModelSettings().sigma_sd``), n uniform on the `p_bound` route's cohort sizes; the P value is
printed by the simulator (``crsmeta.simulate.studies.p_bound_text``) and read back as the
pipeline reads it (``crsmeta.censoring.parse_p_value``).
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy import stats

from crsmeta.calibration import route_design
from crsmeta.censoring import parse_p_value
from crsmeta.cohort_log_ratio import ratio_tables, table_at
from crsmeta.comparisons import se_from_p_value
from crsmeta.model.settings import ModelSettings
from crsmeta.simulate import SimulationSpec
from crsmeta.simulate.studies import p_bound_text

COHORT_SIZE = route_design("p_bound").spec.cohort_size
SIGMA_PRIOR_MEAN = ModelSettings().sigma_sd
IL6_LOG_SD = SimulationSpec().baseline["IL-6"][1]


def cohort(rng: np.random.Generator, log_sd: float) -> dict[str, float]:
    """One cohort's printed bound on the SE and the two reference SEs, in units of σ/√n."""
    n = int(rng.integers(COHORT_SIZE[0], COHORT_SIZE[1] + 1))
    sigma = rng.gamma(2.0, SIGMA_PRIOR_MEAN / 2.0)
    pre = np.exp(rng.normal(0.0, log_sd, n))
    post = pre * np.exp(rng.normal(rng.normal(-0.5, 1.0), sigma, n))
    printed = parse_p_value(p_bound_text(float(stats.ttest_rel(post, pre).pvalue)))
    y = float(np.log(post.mean() / pre.mean()))
    sigma_se = sigma / np.sqrt(n)
    delta_se = np.sqrt(np.exp(log_sd**2) * np.expm1(sigma**2) / n)
    _, variance_table = ratio_tables(n, medians=False)
    simulated_se = sigma * np.sqrt(table_at(variance_table, log_sd, sigma))
    return {"relation": printed.relation, "bound": se_from_p_value(y, printed.value, n) / sigma_se,
            "delta": delta_se / sigma_se, "simulated": simulated_se / sigma_se}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cohorts", type=int, default=4000)
    parser.add_argument("--log-sd", type=float, default=IL6_LOG_SD, help="baseline log-SD (default: the simulator's IL-6)")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    rng = np.random.default_rng(arguments.seed)
    rows = [cohort(rng, arguments.log_sd) for _ in range(arguments.cohorts)]
    relation = np.array([row["relation"] for row in rows])
    bound = np.array([row["bound"] for row in rows])
    delta = np.array([row["delta"] for row in rows])
    simulated = np.array([row["simulated"] for row in rows])
    print(f"{arguments.cohorts} cohorts, baseline log-SD {arguments.log_sd}, seed {arguments.seed}")
    print(f"delta-method SE of a log ratio of means / (σ/√n): median {np.median(delta):.2f}; "
          f"simulated: median {np.median(simulated):.2f}")
    for sign, what in (("<", "upper"), (">", "lower")):
        ratio = bound[relation == sign]
        print(f"p {sign} x: {ratio.size / len(rows):.0%} of rows; {what} bound on se / (σ/√n): median "
              f"{np.median(ratio):.2f}, above 1 in {np.mean(ratio > 1):.0%}, above 2 in {np.mean(ratio > 2):.0%}")
    below = bound[relation == "<"] < simulated[relation == "<"]
    print(f"p < x: the ceiling lies below the simulated SE in {np.mean(below):.0%} of those rows")


if __name__ == "__main__":
    main()
