"""SYNTHETIC: how much case series that print their patients' levels tell the model about s[marker].

s[marker], the baseline log-SD across patients, sets the variance (and the means' bias) of a ratio
of two cohort summaries without spread (crsmeta.cohort_log_ratio). Those rows inform it only
weakly; since the term ``baseline_spread`` (crsmeta.model.build._baseline_spread), a study whose
cases print their levels before the intervention informs it through the levels' sum of squares,
s²·χ²(n − 1). This fits replicates of the SBC route ``case_levels`` (4 case series of 3–8
patients beside 6 cohorts printing means only; crsmeta.calibration.ROUTES) twice, with and
without that term, on the same prior truth, data and sampler seed, and prints per version the
posterior SD of s as a share of its prior SD, the RMSE of its posterior median against the truth,
and its 90% coverage; and the same for θ of the cells.

    python validation/baseline_spread.py [--replicates 20] [--seed 1] [--draws 500]
"""

from __future__ import annotations

import argparse
from unittest import mock

import numpy as np
import pandas as pd

from crsmeta.calibration import fit_replicate
from crsmeta.model.build import BASELINE_MARKER
from crsmeta.model.settings import ModelSettings

ROUTE = "case_levels"


def estimates(replicate: int, seed: int, settings: ModelSettings, with_levels: bool,
              truth: dict | None) -> tuple[dict, pd.DataFrame]:
    """The replicate's truth and, per parameter (s and θ), its posterior median, SD and 90% interval."""
    if with_levels:
        truth, idata = fit_replicate(replicate, seed, settings, ROUTE, truth=truth)
    else:
        with mock.patch("crsmeta.model.build._baseline_spread", return_value=[]):
            truth, idata = fit_replicate(replicate, seed, settings, ROUTE, truth=truth)
    post = idata.posterior
    rows = []
    for marker, true in truth["baseline_sd"].items():
        rows.append(_row("s", marker, post["baseline_sd"].sel({BASELINE_MARKER: marker}).values.ravel(), true))
    for (intervention, marker), true in truth["theta"].items():
        draws = post["theta"].sel(intervention=intervention, marker=marker).values.ravel()
        rows.append(_row("theta", f"{intervention}|{marker}", draws, true))
    return truth, pd.DataFrame(rows).assign(replicate=replicate, with_levels=with_levels)


def _row(kind: str, name: str, draws: np.ndarray, truth: float) -> dict:
    low, high = np.quantile(draws, [0.05, 0.95])
    return {"kind": kind, "parameter": name, "truth": truth, "median": float(np.median(draws)),
            "sd": float(draws.std()), "covered90": bool(low <= truth <= high)}


def summary(table: pd.DataFrame, settings: ModelSettings) -> pd.DataFrame:
    """Per version and kind: posterior SD (s: as a share of its prior SD), RMSE, 90% coverage."""
    prior_sd_of_s = settings.baseline_sd / np.sqrt(2.0)  # Gamma(2, 2/mean)
    table = table.assign(error=table["median"] - table["truth"])
    grouped = table.groupby(["kind", "with_levels"])
    out = pd.DataFrame({
        "parameters": grouped.size(),
        "mean_posterior_sd": grouped["sd"].mean(),
        "rmse": grouped["error"].agg(lambda e: float(np.sqrt((e**2).mean()))),
        "coverage90": grouped["covered90"].mean(),
    }).reset_index()
    out["posterior_sd_over_prior_sd"] = np.where(out["kind"] == "s", out["mean_posterior_sd"] / prior_sd_of_s, np.nan)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicates", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1, help="the SBC's master seed")
    parser.add_argument("--draws", type=int, default=500)
    args = parser.parse_args()
    settings = ModelSettings().replace(chains=2, draws=args.draws, tune=300, cores=2)
    frames = []
    for replicate in range(args.replicates):
        truth, with_levels = estimates(replicate, args.seed, settings, True, None)
        _, without = estimates(replicate, args.seed, settings, False, truth)
        frames += [with_levels, without]
    table = pd.concat(frames, ignore_index=True)
    print(f"SYNTHETIC: route {ROUTE}, replicates 0-{args.replicates - 1} of master seed {args.seed}, "
          f"2 chains x {args.draws} draws after 300 tuning steps")
    print(summary(table, settings).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
