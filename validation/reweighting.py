"""Reweighted = refitted: the sensitivity analyses computed from the main draws agree with fits of their own.

Fits the main analysis of a data set, then every analysis that may be reweighted
(leave-one-study-out over the contributing studies; τ and ρ prior scales) both ways: from the
main draws (``crsmeta.model.reweight``, as the workflow does) and by sampling it anew. For each
θ[intervention, marker] the median and 95% bounds are compared in units of the refitted
posterior SD: two sets of draws of one posterior differ there by Monte Carlo error only (with
~1000 effective draws, a median's standard error is ≈0.04 SD). An analysis the weights do not
allow (Pareto k̂ > 0.7, too few effective draws, or a model that changes) is listed with its reason.

    python validation/reweighting.py [--dataset hackshaw|bundled] [--leave-out 6] [--chains 4 --draws 1000 --tune 1000]

Data sets as in validation/reparameterisation.py: ``hackshaw`` (37 published studies, each a log
odds ratio with its SE: no study dominates, so leaving one out is a small change) and ``bundled``
(the workflow's tables of the bundled studies; ``snakemake --cores 1 results/model/changes.tsv
results/harmonised/summaries.tsv`` makes them). Writes validation/results/reweighting_<dataset>.tsv
(one row per analysis, cell and quantile) and reweighting_<dataset>_analyses.tsv (one row per
analysis), and prints a markdown table for docs/validation.md.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from crsmeta.comparisons import summary_comparisons
from crsmeta.io import load_yaml, write_tsv
from crsmeta.model import ModelSettings, fit_analysis
from crsmeta.model.analyses import MAIN, analysis_settings, reweighting_of
from crsmeta.model.reweight import REWEIGHTED, MainFit
from reparameterisation import DATASETS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "validation" / "results"
QUANTILES = {"theta_median": "median", "theta_lo95": "2.5%", "theta_hi95": "97.5%"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["hackshaw", "bundled"], default="hackshaw")
    parser.add_argument("--leave-out", type=int, default=6, help="leave-one-out analyses (first N studies)")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    args = parser.parse_args()
    config = load_yaml(ROOT / "config" / "config.yaml")
    base = ModelSettings.from_config(config).replace(chains=args.chains, draws=args.draws, tune=args.tune,
                                                     cores=args.chains)
    changes, summaries = DATASETS[args.dataset]()

    main_fit = fit_analysis(changes, summary_comparisons(summaries)[0], base)
    main = MainFit(idata=main_fit.idata, data=main_fit.data, settings=base, diagnostics=main_fit.diagnostics)
    contributing = list(main_fit.idata.log_likelihood["study"].coords["study_id"].values)
    analyses = analysis_settings(base, config.get("sensitivity", {}) | {"leave_one_out": contributing[:args.leave_out]},
                                 contributing)
    cells, summary = [], []
    for name, settings in analyses.items():
        if name == MAIN or reweighting_of(base, settings) is None:
            continue
        started = time.time()
        reweighted = fit_analysis(changes, summary_comparisons(summaries)[0], settings, analysis=name, main=main)
        reweight_seconds = time.time() - started
        row = {"analysis": name, "route": reweighted.route, "pareto_k": reweighted.pareto_k,
               "note": reweighted.route_note, "reweight_s": round(reweight_seconds, 1)}
        if reweighted.route == REWEIGHTED:
            started = time.time()
            refitted = fit_analysis(changes, summary_comparisons(summaries)[0], settings, analysis=name)
            row["refit_s"] = round(time.time() - started, 1)
            compared = _compare(name, reweighted.effects, refitted)
            cells.append(compared)
            row["max_shift_sd"] = float(compared["shift_sd"].max())
        summary.append(row)
        print(row, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    analyses_table = pd.DataFrame(summary)
    if cells:
        write_tsv(pd.concat(cells, ignore_index=True), RESULTS / f"reweighting_{args.dataset}.tsv")
    write_tsv(analyses_table, RESULTS / f"reweighting_{args.dataset}_analyses.tsv")
    print(analyses_table.to_markdown(index=False, floatfmt=".3g"))


def _compare(name: str, reweighted: pd.DataFrame, refitted) -> pd.DataFrame:
    """|reweighted − refitted| of each θ quantile, in refitted posterior SDs, per cell."""
    sd = refitted.idata.posterior["theta"].std(dim=("chain", "draw")).to_series().rename("theta_sd")
    both = reweighted.merge(refitted.effects, on=["intervention", "marker"], suffixes=("_reweighted", "_refitted"))
    both = both.join(sd, on=["intervention", "marker"])
    rows = []
    for column, quantile in QUANTILES.items():
        shift = (both[f"{column}_reweighted"].astype(float) - both[f"{column}_refitted"].astype(float)).abs()
        rows.append(pd.DataFrame({"analysis": name, "intervention": both["intervention"], "marker": both["marker"],
                                  "quantile": quantile, "reweighted": both[f"{column}_reweighted"],
                                  "refitted": both[f"{column}_refitted"], "shift_sd": shift / both["theta_sd"]}))
    return pd.concat(rows, ignore_index=True)


if __name__ == "__main__":
    main()
