"""Parameter recovery: do the 90% intervals of theta cover the simulator's true values?

One SYNTHETIC dataset is simulated from a spec (by default the demo spec of config/demo.yaml),
run through ``derive_changes`` and ``fit_analysis`` exactly as the workflow would, and each
(intervention, marker) cell's central 90% interval is compared with the true theta.

    python validation/recovery.py --seed 20261121 --chains 2 --draws 500 --tune 500

writes validation/results/recovery.tsv and prints a markdown summary.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

from crsmeta.changes import derive_changes
from crsmeta.io import load_yaml, write_tsv
from crsmeta.model import FitResult, ModelSettings, fit_analysis
from crsmeta.simulate import SimulatedDataset, SimulationSpec, simulate_dataset, spec_from_config

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "validation" / "results"
LEVEL = 0.90


def fit_simulated(dataset: SimulatedDataset, settings: ModelSettings) -> FitResult:
    """Fit a simulated dataset through the same steps as the workflow (pairing rule: defaults)."""
    changes, _ = derive_changes(dataset.cases)
    return fit_analysis(changes, dataset.summaries, settings, analysis="recovery")


def interval_coverage(idata: az.InferenceData, truth: pd.DataFrame, data_cells: pd.DataFrame,
                      level: float = LEVEL) -> pd.DataFrame:
    """Per (intervention, marker) cell of the fit: truth, central interval, covered, has data."""
    theta = az.extract(idata, var_names="theta")
    tail = (1 - level) / 2
    lo = theta.quantile(tail, dim="sample").to_series().rename("lo")
    hi = theta.quantile(1 - tail, dim="sample").to_series().rename("hi")
    median = theta.median(dim="sample").to_series().rename("median")
    table = pd.concat([median, lo, hi], axis=1).reset_index()
    table = table.merge(truth, on=["intervention", "marker"], how="left")
    table["covered"] = (table["lo"] <= table["theta"]) & (table["theta"] <= table["hi"])
    observed = set(zip(data_cells["intervention"], data_cells["marker"]))
    table["has_data"] = [(i, m) in observed for i, m in zip(table["intervention"], table["marker"])]
    return table.drop(columns="quantile", errors="ignore")


def demo_spec(config: Path = ROOT / "config" / "demo.yaml") -> SimulationSpec:
    """The spec config/demo.yaml's ``synthetic`` block describes."""
    return spec_from_config(load_yaml(config)["synthetic"])


def summary_text(table: pd.DataFrame, seconds: float, settings: ModelSettings, seed: int) -> str:
    with_data = table[table["has_data"]]
    return "\n".join([
        f"| cells | 90% coverage (all cells) | cells with data | coverage (cells with data) |",
        "|---|---|---|---|",
        f"| {len(table)} | {table['covered'].mean():.3f} | {len(with_data)} | "
        f"{with_data['covered'].mean():.3f} |",
        "",
        f"seed {seed}; {settings.chains} chains x {settings.draws} draws (tune {settings.tune}), "
        f"backend {settings.backend}; fit {seconds:.0f} s",
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="simulation seed (default: config/demo.yaml's)")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--tune", type=int, default=500)
    parser.add_argument("--backend", default="nutpie")
    parser.add_argument("--out", type=Path, default=RESULTS / "recovery.tsv")
    args = parser.parse_args()
    spec = demo_spec()
    if args.seed is not None:
        spec = SimulationSpec(**{**spec.__dict__, "seed": args.seed})
    settings = ModelSettings(chains=args.chains, draws=args.draws, tune=args.tune, cores=args.chains,
                             backend=args.backend, seed=spec.seed, prior_draws=50)
    start = time.perf_counter()
    dataset = simulate_dataset(spec)
    fit = fit_simulated(dataset, settings)
    table = interval_coverage(fit.idata, dataset.truth, fit.data.cells())
    seconds = time.perf_counter() - start
    table["synthetic"] = True
    write_tsv(table, args.out)
    print(summary_text(table, seconds, settings, spec.seed))
    divergences = int(np.asarray(fit.idata.sample_stats["diverging"]).sum())
    print(f"divergences {divergences}; max R-hat {fit.diagnostics['r_hat'].max():.3f}"
          if "r_hat" in fit.diagnostics else f"divergences {divergences}")


if __name__ == "__main__":
    main()
