"""Simulation-based calibration (Talts et al. 2018) of the crsmeta model.

For each of ``--n-datasets`` replications: draw theta, tau and sigma from the prior of the
model's default settings (``pm.draw`` on the model built for the simulated design), simulate a
SYNTHETIC dataset with that truth (crsmeta.simulate), fit it with few draws, and record the rank
of the true value among thinned posterior draws and whether the central 90% interval covers it.
If the model and its sampler are right, ranks are uniform and coverage is 90%.

The SBC design uses the parts of the simulator whose generating process is exactly the model's
likelihood: case-level changes (with values below the LOD, i.e. censoring) and cohorts reporting
a mean log ratio with its SE. Mean/median summaries without SDs enter the model through
approximations (delta method, Wan et al. quantiles, P-value bounds) and are checked by
validation/recovery.py instead.

    python validation/sbc.py --n-datasets 40 --draws 200 --seed 1

writes validation/results/sbc_ranks.tsv, sbc_summary.tsv and sbc_ranks.png, and prints a
markdown summary.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pymc as pm  # noqa: E402
from scipy import stats  # noqa: E402

from crsmeta.changes import derive_changes  # noqa: E402
from crsmeta.io import write_tsv  # noqa: E402
from crsmeta.model import ModelData, ModelSettings, build_model  # noqa: E402
from crsmeta.simulate import SimulationSpec, simulate_dataset  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "validation" / "results"
LEVEL = 0.90
N_BINS = 10

SBC_SPEC = SimulationSpec(
    interventions=("tocilizumab", "plasma_exchange", "emapalumab"),
    markers=("IL-6", "IFN-gamma", "ferritin", "temperature"),
    populations=("car_t_crs",),
    n_case_reports=3, n_case_series=6, n_cohorts_mean_sd=0, n_cohorts_mean_p=0,
    n_cohorts_median_iqr=0, n_cohorts_pct_change=0, n_cohorts_effect_se=3, n_trials=0,
    markers_per_study=(2, 4), case_series_size=(3, 8), cohort_size=(12, 30),
)


def model_data(spec: SimulationSpec, settings: ModelSettings) -> tuple[ModelData, object]:
    dataset = simulate_dataset(spec)
    changes, _ = derive_changes(dataset.cases)
    return ModelData.from_tables(changes, dataset.summaries, settings), dataset


def prior_truth(spec: SimulationSpec, settings: ModelSettings, seed: int) -> dict[str, dict]:
    """theta, tau and sigma drawn from the model's prior (the design decides the coords)."""
    data, _ = model_data(spec, settings)
    model = build_model(data, settings)
    theta, tau, sigma = pm.draw([model["theta"], model["tau"], model["sigma"]], random_seed=seed)
    interventions, markers = data.coords["intervention"], data.coords["marker"]
    missing = set(spec.interventions) - set(interventions) | set(spec.markers) - set(markers)
    if missing:
        raise ValueError(f"the SBC design has no data for {sorted(missing)}; add studies")
    return {
        "theta": {(i, m): float(theta[a, b]) for a, i in enumerate(interventions) for b, m in enumerate(markers)},
        "tau": {m: float(tau[b]) for b, m in enumerate(markers)},
        "sigma": {m: float(sigma[b]) for b, m in enumerate(markers)},
    }


def one_replication(k: int, seed: int, settings: ModelSettings, thin_to: int) -> pd.DataFrame:
    """Ranks and coverage of every theta, tau and sigma for one simulated dataset."""
    spec = SimulationSpec(**{**SBC_SPEC.__dict__, "seed": seed + k})
    truth = prior_truth(spec, settings, seed=seed + 100_000 + k)
    spec = spec.with_truth(truth["theta"], truth["tau"], truth["sigma"])
    data, _ = model_data(spec, settings)
    with build_model(data, settings):
        idata = pm.sample(draws=settings.draws, tune=settings.tune, chains=settings.chains,
                          target_accept=settings.target_accept, random_seed=seed + k,
                          progressbar=False, nuts_sampler=settings.backend,
                          **({"nuts_sampler_kwargs": {"cores": settings.cores}}
                             if settings.backend == "nutpie" else {"cores": settings.cores}))
    rows = []
    for name, values in truth.items():
        draws = idata.posterior[name].stack(sample=("chain", "draw"))
        for key, true_value in values.items():
            selector = dict(zip(("intervention", "marker"), key)) if name == "theta" else {"marker": key}
            sample = draws.sel(selector).to_numpy()
            thinned = sample[np.linspace(0, sample.size - 1, thin_to).astype(int)]
            lo, hi = np.quantile(sample, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
            rows.append({
                "replication": k, "parameter": f"{name}[{','.join(key) if name == 'theta' else key}]",
                "kind": name, "truth": true_value, "rank": int((thinned < true_value).sum()),
                "n_draws": thin_to, "covered": bool(lo <= true_value <= hi),
                "divergences": int(idata.sample_stats["diverging"].sum()),
            })
    return pd.DataFrame(rows)


def summarise(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per parameter: chi-square and KS p-values of rank uniformity, and 90% coverage."""
    rows = []
    for parameter, group in ranks.groupby("parameter", sort=False):
        n_draws = int(group["n_draws"].iloc[0])
        counts = np.histogram(group["rank"], bins=N_BINS, range=(0, n_draws + 1))[0]
        uniform = (group["rank"] + 0.5) / (n_draws + 1)
        rows.append({
            "parameter": parameter, "kind": group["kind"].iloc[0], "n_datasets": len(group),
            "chi2_p": float(stats.chisquare(counts).pvalue),
            "ks_p": float(stats.kstest(uniform, "uniform").pvalue),
            "coverage90": float(group["covered"].mean()),
        })
    return pd.DataFrame(rows)


def plot_ranks(ranks: pd.DataFrame, path: Path) -> None:
    """Histogram of the ranks of each kind of parameter, with the uniform expectation."""
    kinds = list(dict.fromkeys(ranks["kind"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 3), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        group = ranks[ranks["kind"] == kind]
        n_draws = int(group["n_draws"].iloc[0])
        ax.hist(group["rank"], bins=N_BINS, range=(0, n_draws + 1), color="0.6", edgecolor="k")
        ax.axhline(len(group) / N_BINS, color="C3", linestyle="--", label="uniform")
        ax.set(title=f"{kind} (all cells)", xlabel="rank of the true value", ylabel="count")
        ax.legend()
    fig.suptitle("SYNTHETIC: simulation-based calibration ranks")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(summary: pd.DataFrame, ranks: pd.DataFrame, args: argparse.Namespace, seconds: float) -> str:
    lines = [
        f"SBC: {args.n_datasets} SYNTHETIC datasets, seed {args.seed}, {args.chains} chains x "
        f"{args.draws} draws (tune {args.tune}), ranks among {args.thin_to} thinned draws, "
        f"backend {args.backend}, {seconds / 60:.1f} min",
        "",
        "| kind | parameters | 90% coverage | min chi2 p | parameters with chi2 p < 0.05 | min KS p |",
        "|---|---|---|---|---|---|",
    ]
    for kind, group in summary.groupby("kind", sort=False):
        covered = ranks.loc[ranks["kind"] == kind, "covered"].mean()
        lines.append(f"| {kind} | {len(group)} | {covered:.3f} | {group['chi2_p'].min():.3f} | "
                     f"{int((group['chi2_p'] < 0.05).sum())} | {group['ks_p'].min():.3f} |")
    pooled = stats.chisquare(np.histogram(ranks["rank"] / (ranks["n_draws"] + 1), bins=N_BINS, range=(0, 1))[0])
    lines += ["", f"all ranks pooled: chi2 p = {pooled.pvalue:.3f}; overall 90% coverage "
              f"{ranks['covered'].mean():.3f}; datasets with divergences: "
              f"{int((ranks.groupby('replication')['divergences'].first() > 0).sum())}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-datasets", type=int, default=40)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--thin-to", type=int, default=99, help="posterior draws the rank is taken among")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", default="nutpie")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    settings = ModelSettings(chains=args.chains, draws=args.draws, tune=args.tune, cores=args.chains,
                             backend=args.backend, seed=args.seed)
    start = time.perf_counter()
    ranks = pd.concat([one_replication(k, args.seed, settings, args.thin_to) for k in range(args.n_datasets)],
                      ignore_index=True)
    summary = summarise(ranks)
    write_tsv(ranks.assign(synthetic=True), args.out / "sbc_ranks.tsv")
    write_tsv(summary.assign(synthetic=True), args.out / "sbc_summary.tsv")
    plot_ranks(ranks, args.out / "sbc_ranks.png")
    print(markdown(summary, ranks, args, time.perf_counter() - start))


if __name__ == "__main__":
    main()
