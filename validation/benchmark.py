"""Speed and memory of one fit at 300 and 3,000 SYNTHETIC cases, nutpie vs PyMC NUTS.

    python validation/benchmark.py --sizes 300 3000 --backends nutpie pymc --draws 500

Each (size, backend) runs in a fresh process so that peak RSS (resource.getrusage) is its own.
Columns: cases (exact + censored changes), wall (s), compile (s: model build and sampler setup,
timed as a 1-draw run), min bulk ESS over theta, tau, sigma, ESS/s, peak RSS (MB).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import arviz as az
import pymc as pm

from crsmeta.changes import derive_changes
from crsmeta.model import ModelData, ModelSettings, build_model
from crsmeta.simulate import SimulationSpec, simulate_dataset


def spec_for(n_cases: int) -> SimulationSpec:
    """Case series of ~6 patients x ~5 markers until about n_cases changes: 30 cases per series."""
    return SimulationSpec(n_case_reports=0, n_case_series=max(1, n_cases // 30), n_cohorts_mean_sd=0,
                          n_cohorts_mean_p=0, n_cohorts_median_iqr=0, n_cohorts_pct_change=0,
                          n_trials=0, populations=("car_t_crs",), case_series_size=(4, 8), seed=42)


def run_one(n_cases: int, backend: str, draws: int, chains: int) -> dict:
    settings = ModelSettings(backend=backend, draws=draws, tune=draws, chains=chains, cores=chains, seed=1)
    dataset = simulate_dataset(spec_for(n_cases))
    changes, _ = derive_changes(dataset.cases)
    data = ModelData.from_tables(changes, dataset.summaries, settings)
    kwargs = dict(chains=chains, target_accept=settings.target_accept, random_seed=1,
                  progressbar=False, nuts_sampler=backend)
    kwargs |= {"nuts_sampler_kwargs": {"cores": chains}} if backend == "nutpie" else {"cores": chains}
    start = time.perf_counter()
    with build_model(data, settings):
        pm.sample(draws=1, tune=1, **kwargs)
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    with build_model(data, settings):
        idata = pm.sample(draws=draws, tune=draws, **kwargs)
    wall = time.perf_counter() - start
    ess = az.ess(idata, var_names=["theta", "tau", "sigma"])
    min_ess = float(min(ess[name].min() for name in ess.data_vars))
    return {"cases": len(data.cases), "backend": backend, "wall_s": round(wall, 1),
            "compile_s": round(compile_s, 1), "min_ess_bulk": round(min_ess),
            "ess_per_s": round(min_ess / wall, 1),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 3000])
    parser.add_argument("--backends", nargs="+", default=["nutpie", "pymc"])
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(int(args.one[0]), args.one[1], args.draws, args.chains)))
        return
    print("| cases | backend | wall (s) | compile (s) | min bulk ESS | ESS/s | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        for backend in args.backends:
            command = [sys.executable, __file__, "--one", str(size), backend,
                       "--draws", str(args.draws), "--chains", str(args.chains)]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            row = json.loads(output.strip().splitlines()[-1])
            print(f"| {row['cases']} | {row['backend']} | {row['wall_s']} | {row['compile_s']} | "
                  f"{row['min_ess_bulk']} | {row['ess_per_s']} | {row['peak_rss_mb']} |", flush=True)


if __name__ == "__main__":
    main()
