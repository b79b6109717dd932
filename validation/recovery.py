"""Parameter recovery: do the 90% intervals of theta cover the simulator's true values?

One SYNTHETIC dataset is simulated from a spec (by default the demo spec of config/demo.yaml),
its study files run through extract → harmonise → changes (``crsmeta.simulate.pipeline``) and
``fit_analysis`` exactly as the workflow would, and each
(intervention, marker) cell's central 90% interval is compared with the true theta.

    python validation/recovery.py --chains 2 --draws 500 --tune 500 [--seeds 20261121 1 2] [--data cases]
    python validation/recovery.py --report batch1.tsv batch2.tsv   # summaries of earlier runs
    python validation/recovery.py --config other.yaml --set row_variance_shape=10   # other spec/settings

writes validation/results/recovery.tsv and prints markdown summaries: coverage per seed,
per route of the data feeding a cell (``case`` or a summary ``method`` of crsmeta.comparisons) and
the cells missed.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import yaml

from crsmeta.io import load_yaml, write_tsv
from crsmeta.model import FitResult, ModelSettings, fit_analysis
from crsmeta.model.recovery import LEVEL, coverage_summary, truth_coverage
from crsmeta.simulate import SimulationSpec, spec_from_config
from crsmeta.simulate.pipeline import PipelineTables, run_pipeline

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "validation" / "results"
DATA_FILTERS = {"all": {}, "cases": {"include_summaries": False}, "summaries": {"include_cases": False}}


def fit_simulated(simulated: PipelineTables, settings: ModelSettings) -> FitResult:
    """Fit the pipeline's tables of a simulated dataset, as the workflow would (pairing rule: defaults)."""
    return fit_analysis(simulated.changes, simulated.comparisons, settings, analysis="recovery")


def scale_recovery(idata: az.InferenceData, truth: pd.DataFrame, level: float = LEVEL) -> pd.DataFrame:
    """Per marker: true and posterior (median, central interval) σ and τ."""
    rows = []
    markers = truth.drop_duplicates("marker").set_index("marker")
    for name in ("sigma", "tau"):
        draws = az.extract(idata, var_names=name)
        for marker in draws["marker"].to_numpy():
            values = draws.sel(marker=marker).to_numpy()
            lo, median, hi = np.quantile(values, [(1 - level) / 2, 0.5, (1 + level) / 2])
            true = float(markers.loc[marker, name])
            rows.append({"parameter": name, "marker": marker, "true": true, "median": median,
                         "lo": lo, "hi": hi, "covered": bool(lo <= true <= hi)})
    return pd.DataFrame(rows)


def cell_routes(fit: FitResult) -> pd.DataFrame:
    """Per (intervention, marker) cell: the kinds of data feeding it (``case`` and summary routes)."""
    cases = fit.data.cases.assign(route="case")[["intervention", "marker", "route"]]
    summaries = fit.data.observations.rename(columns={"method": "route"})[["intervention", "marker", "route"]]
    both = pd.concat([cases, summaries])
    return (both.groupby(["intervention", "marker"])["route"]
            .agg(lambda r: ";".join(sorted(set(r)))).rename("routes").reset_index())


def coverage_by_route(table: pd.DataFrame) -> pd.DataFrame:
    """Coverage among the cells each route feeds (a cell fed by several routes counts for each),
    and among the cells fed by that route alone."""
    with_data = table[table["has_data"]]
    rows = []
    for route in sorted({r for text in with_data["routes"] for r in text.split(";")}):
        fed = with_data[with_data["routes"].str.split(";").map(lambda r: route in r)]
        alone = fed[fed["routes"] == route]
        rows.append({"route": route, "cells": len(fed), "covered": int(fed["covered"].sum()),
                     "coverage": fed["covered"].mean(), "cells_only_this_route": len(alone),
                     "coverage_only_this_route": alone["covered"].mean() if len(alone) else np.nan})
    return pd.DataFrame(rows)


def demo_spec(config: Path = ROOT / "config" / "demo.yaml") -> SimulationSpec:
    """The spec config/demo.yaml's ``synthetic`` block describes."""
    return spec_from_config(load_yaml(config)["synthetic"])


def summary_text(table: pd.DataFrame) -> str:
    """Markdown table of coverage per simulation seed (and pooled when there are several)."""
    lines = ["| seed | cells | 90% coverage (all cells) | cells with data | coverage (cells with data) "
             "| divergences | max R-hat | fit (s) |", "|---|---|---|---|---|---|---|---|"]
    groups = list(table.groupby("seed", sort=False))
    if len(groups) > 1:
        groups.append(("pooled", table))
    for seed, rows in groups:
        counts = coverage_summary(rows)
        per_fit = rows.drop_duplicates("seed")
        lines.append(f"| {seed} | {counts['cells']} | {counts['coverage']:.3f} | {counts['cells_with_data']} | "
                     f"{counts['coverage_with_data']:.3f} | {int(per_fit['divergences'].sum())} | "
                     f"{per_fit['max_rhat'].max():.3f} | {per_fit['seconds'].sum():.0f} |")
    return "\n".join(lines)


def recover(spec: SimulationSpec, settings: ModelSettings) -> pd.DataFrame:
    """Simulate, fit and compare: one row per cell with its routes and the fit's diagnostics."""
    start = time.perf_counter()
    simulated = run_pipeline(spec)
    fit = fit_simulated(simulated, settings)
    table = truth_coverage(fit.idata, simulated.truth, fit.data.cells())
    table = table.merge(cell_routes(fit), on=["intervention", "marker"], how="left")
    table["routes"] = table["routes"].fillna("")
    scales = scale_recovery(fit.idata, simulated.truth)
    print(f"seed {spec.seed}: sigma and tau\n" + scales.to_string(index=False, float_format="%.3f"))
    return table.assign(
        seed=spec.seed, seconds=time.perf_counter() - start,
        divergences=int(np.asarray(fit.idata.sample_stats["diverging"]).sum()),
        max_rhat=float(fit.diagnostics["r_hat"].max()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="simulation seeds (default: config/demo.yaml's); several give pooled coverage")
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "demo.yaml",
                        help="a config whose `synthetic` block is the spec to simulate (default: the demo's)")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--backend", default="nutpie")
    parser.add_argument("--data", choices=sorted(DATA_FILTERS), default="all",
                        help="which rows enter the fit: all, cases only or summaries only (diagnostic: "
                             "do cells fed by one kind of data recover without the other?)")
    parser.add_argument("--set", dest="overrides", nargs="+", default=[], metavar="KEY=VALUE",
                        help="model settings to change (ModelSettings fields, YAML values), e.g. "
                             "row_variance_shape=10 tau_prior=halfnormal")
    parser.add_argument("--out", type=Path, default=RESULTS / "recovery.tsv")
    parser.add_argument("--report", type=Path, nargs="+", default=None, metavar="TSV",
                        help="fit nothing: print the summaries of earlier runs' tables (several are "
                             "concatenated, e.g. seeds run in batches) and write them to --out")
    args = parser.parse_args()
    if args.report:
        table = pd.concat([pd.read_csv(path, sep="\t") for path in args.report], ignore_index=True)
        write_tsv(table, args.out)
        print_report(table)
        return
    base = demo_spec(args.config)
    tables = []
    for seed in args.seeds or [base.seed]:
        spec = replace(base, seed=seed)
        settings = ModelSettings(chains=args.chains, draws=args.draws, tune=args.tune, cores=args.chains,
                                 backend=args.backend, seed=seed, prior_draws=50,
                                 **DATA_FILTERS[args.data]).replace(**parse_overrides(args.overrides))
        tables.append(recover(spec, settings))
    table = pd.concat(tables, ignore_index=True)
    write_tsv(table, args.out)
    print(f"{args.chains} chains x {args.draws} draws (tune {args.tune}), backend {args.backend}\n")
    print_report(table)


def parse_overrides(pairs: list[str]) -> dict:
    """``key=value`` pairs (values parsed as YAML) into ModelSettings changes."""
    changes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set {pair!r}: expected KEY=VALUE")
        changes[key] = yaml.safe_load(value)
    return changes


def print_report(table: pd.DataFrame) -> None:
    """Coverage per seed, the spread of per-dataset coverage, coverage per route, missed cells."""
    print(summary_text(table))
    print()
    print(seed_spread_text(table))
    print()
    print(coverage_by_route(table).to_markdown(index=False, floatfmt=".3f"))
    missed = table[table["has_data"] & ~table["covered"]]
    print("\nmissed cells:\n" + missed[["seed", "intervention", "marker", "theta", "lo", "hi", "routes"]]
          .to_string(index=False, float_format="%.3f"))


def seed_spread_text(table: pd.DataFrame, target: float = 0.85) -> str:
    """How per-dataset coverage (cells with data) varies over seeds, and how many reach ``target``.

    The cells of one dataset share intervention, marker and τ parameters and the same realised
    study effects, so one dataset's coverage varies far more than a binomial count would.
    """
    per_seed = table[table["has_data"]].groupby("seed", sort=False)["covered"].mean()
    return (f"per-dataset coverage (cells with data) over {len(per_seed)} seeds: min {per_seed.min():.3f}, "
            f"quartiles {per_seed.quantile(0.25):.3f} / {per_seed.median():.3f} / {per_seed.quantile(0.75):.3f}, "
            f"max {per_seed.max():.3f}; {int((per_seed >= target).sum())} of {len(per_seed)} reach {target:.2f}")


if __name__ == "__main__":
    main()
