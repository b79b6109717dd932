"""SYNTHETIC simulation-based calibration (Talts et al. 2018) of the crsmeta model, one replicate at a time.

A replicate draws θ, τ and σ from the model's prior (``pm.draw`` on the model built for the
simulated design), simulates a SYNTHETIC dataset with that truth (crsmeta.simulate), runs its
study files through extract → harmonise → changes (crsmeta.simulate.pipeline), fits it
with the package's sampler, and records for every θ, τ and σ the rank of the true value among
thinned posterior draws and whether the central 50/80/90/95% intervals cover it. If the model and
its sampler are right, ranks are uniform and each interval covers the truth at its level.

Each replicate's seeds come from the master seed and its index alone (a ``SeedSequence`` spawn
key), so a replicate gives the same table whichever job, process or node runs it, and the
replicates can run in any order (the workflow's rule ``sbc_replicate`` runs one per job).
:func:`pool` and :func:`summarise` then test uniformity per parameter with a chi-square test on
10 rank bins and the ECDF of the ranks against its simultaneous 95% band (Säilynoja, Bürkner &
Vehtari 2022, the band ArviZ computes), and each coverage against its binomial Monte Carlo band.

The design uses the parts of the simulator whose generating process is exactly the model's
likelihood: case-level changes (with values below the LOD, i.e. censoring) and cohorts reporting
a mean log ratio with its SE. Summary rows that enter through approximations (means without SDs,
medians, P values) are checked by validation/recovery.py instead.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm

from crsmeta import tables
from crsmeta.errors import InputError
from crsmeta.model.build import build_model
from crsmeta.model.data import ModelData
from crsmeta.model.sample import sample_model
from crsmeta.model.settings import ModelSettings
from crsmeta.simulate import SimulationSpec
from crsmeta.simulate.pipeline import run_pipeline

LEVELS = (0.50, 0.80, 0.90, 0.95)
"""Central credible intervals whose coverage is recorded (columns ``covered50`` … ``covered95``)."""
BAND = 0.95
"""Probability of the ECDF band and of each coverage's binomial band under calibration."""
N_BINS = 10
THIN_TO = 99
"""Posterior draws the rank is taken among (fewer when the fit has fewer)."""
KINDS = ("theta", "tau", "sigma")

SBC_SPEC = SimulationSpec(
    interventions=("tocilizumab", "plasma_exchange", "emapalumab"),
    markers=("IL-6", "IFN-gamma", "ferritin", "temperature"),
    populations=("car_t_crs",),
    n_case_reports=3, n_case_series=6, n_cohorts_mean_sd=0, n_cohorts_mean_p=0,
    n_cohorts_median_iqr=0, n_cohorts_pct_change=0, n_cohorts_effect_se=3, n_trials=0,
    markers_per_study=(2, 4), case_series_size=(3, 8), cohort_size=(12, 30),
)
"""3 interventions × 4 markers, one population: 3 case reports, 6 case series, 3 cohorts with a
mean log ratio and its SE (docs/validation.md, section 1)."""


@dataclasses.dataclass(frozen=True)
class ReplicateSeeds:
    """The seeds of one replicate: the simulated design and data, the prior truth, the sampler."""

    simulation: int
    truth: int
    sampler: int


def replicate_seeds(master_seed: int, replicate: int) -> ReplicateSeeds:
    """Seeds of replicate ``replicate``: child ``replicate`` of ``SeedSequence(master_seed)``
    (what ``.spawn()`` gives it), whatever the number of replicates or the order they run in."""
    if replicate < 0:
        raise InputError(f"SBC replicate {replicate}", expected="a replicate index ≥ 0")
    child = np.random.SeedSequence(master_seed, spawn_key=(replicate,))
    return ReplicateSeeds(*(int(seed) for seed in child.generate_state(3)))


def _model_data(spec: SimulationSpec, settings: ModelSettings) -> ModelData:
    simulated = run_pipeline(spec)
    return ModelData.from_tables(simulated.changes, simulated.comparisons, settings)


def prior_truth(spec: SimulationSpec, settings: ModelSettings, seed: int) -> dict[str, dict]:
    """θ, τ and σ drawn from the model's prior; the design (``spec``'s seed) decides the coords."""
    data = _model_data(spec, settings)
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


def run_replicate(replicate: int, master_seed: int, settings: ModelSettings, *, thin_to: int = THIN_TO,
                  spec: SimulationSpec = SBC_SPEC) -> pd.DataFrame:
    """Ranks and interval coverage of every θ, τ and σ for one SYNTHETIC dataset (:data:`tables.SBC_RANKS`).

    ``settings`` gives the model and the sampler (chains, draws, tune, backend, cores); its seed
    is replaced by the replicate's own (:func:`replicate_seeds`).
    """
    seeds = replicate_seeds(master_seed, replicate)
    settings = settings.replace(seed=seeds.sampler)
    spec = dataclasses.replace(spec, seed=seeds.simulation)
    truth = prior_truth(spec, settings, seeds.truth)
    model = build_model(_model_data(spec.with_truth(truth["theta"], truth["tau"], truth["sigma"]), settings), settings)
    idata = sample_model(model, settings)
    divergences = int(idata.sample_stats["diverging"].sum())
    rows = []
    for kind, values in truth.items():
        draws = idata.posterior[kind].stack(sample=("chain", "draw"))
        for key, true_value in values.items():
            selector = dict(zip(("intervention", "marker"), key)) if kind == "theta" else {"marker": key}
            sample = draws.sel(selector).to_numpy()
            n_draws = min(thin_to, sample.size)
            thinned = sample[np.linspace(0, sample.size - 1, n_draws).astype(int)]
            covered = {}
            for level in LEVELS:
                lo, hi = np.quantile(sample, [(1 - level) / 2, (1 + level) / 2])
                covered[f"covered{round(100 * level)}"] = bool(lo <= true_value <= hi)
            rows.append({
                "replicate": replicate, "master_seed": master_seed,
                "parameter": f"{kind}[{','.join(key) if kind == 'theta' else key}]", "kind": kind,
                "truth": true_value, "rank": int((thinned < true_value).sum()), "n_draws": n_draws,
                **covered, "divergences": divergences, "synthetic": True,
            })
    return tables.frame(tables.SBC_RANKS, rows)


def pool(replicates: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """The replicates' tables (:data:`tables.SBC_RANKS`) stacked and checked: from one master seed,
    ranks among as many draws, each replicate once."""
    parts = list(replicates)
    if not parts:
        raise InputError("no SBC replicate tables to pool", expected="at least one replicate")
    ranks = pd.concat(parts, ignore_index=True)
    for column in ("master_seed", "n_draws"):
        if ranks[column].nunique() > 1:
            raise InputError(f"SBC replicates differ in {column}: {sorted(ranks[column].unique())}",
                             expected=f"replicates of one run (one {column})")
    twice = ranks.loc[ranks.duplicated(["replicate", "parameter"]), "replicate"]
    if not twice.empty:
        raise InputError(f"SBC replicate {int(twice.iloc[0])} appears twice", expected="each replicate once")
    return tables.frame(tables.SBC_RANKS, ranks.sort_values("replicate", kind="stable").reset_index(drop=True))


def uniform_ecdf(ranks: np.ndarray, n_draws: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ECDF of ranks in 0..``n_draws`` at evaluation points, the uniform CDF there, and the
    simultaneous :data:`BAND` band of the ECDF under uniformity (Säilynoja et al. 2022, ArviZ's
    ``optimized`` method; exact for discrete ranks evaluated at rank thresholds)."""
    cdf, lower, upper = _band(len(ranks), n_draws)
    thresholds = np.rint(cdf * (n_draws + 1)).astype(int) - 1
    ecdf = (np.asarray(ranks)[None, :] <= thresholds[:, None]).mean(axis=1)
    return ecdf, cdf, lower, upper


@functools.lru_cache(maxsize=None)
def _band(n_ranks: int, n_draws: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform CDF at K - 1 rank thresholds, K = min(n_draws + 1, n_ranks) (at least 2), and the band."""
    from arviz.stats.ecdf_utils import ecdf_confidence_band

    points = max(2, min(n_draws + 1, n_ranks))
    thresholds = np.unique(np.ceil(np.arange(1, points) * (n_draws + 1) / points).astype(int) - 1)
    cdf = (thresholds + 1) / (n_draws + 1)
    lower, upper = ecdf_confidence_band(n_ranks, cdf, cdf, prob=BAND, method="optimized")
    return cdf, lower, upper


def coverage_band(n: int, level: float) -> tuple[float, float]:
    """The central :data:`BAND` binomial interval of the coverage of ``n`` calibrated intervals."""
    from scipy import stats

    lo, hi = stats.binom.interval(BAND, n, level)
    return float(lo / n), float(hi / n)


def summarise(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per parameter (:data:`tables.SBC_SUMMARY`): chi-square p of rank uniformity, the ECDF's
    largest departure from uniform and whether it stays in its band, coverage per level and
    whether every level's coverage stays in its binomial band."""
    from scipy import stats

    rows = []
    for parameter, group in ranks.groupby("parameter", sort=False):
        n_draws, n = int(group["n_draws"].iloc[0]), len(group)
        counts = np.histogram(group["rank"], bins=N_BINS, range=(0, n_draws + 1))[0]
        ecdf, cdf, lower, upper = uniform_ecdf(group["rank"].to_numpy(), n_draws)
        coverage = {f"coverage{round(100 * level)}": float(group[f"covered{round(100 * level)}"].mean())
                    for level in LEVELS}
        in_band = all(lo <= coverage[f"coverage{round(100 * level)}"] <= hi
                      for level in LEVELS for lo, hi in [coverage_band(n, level)])
        rows.append({
            "parameter": parameter, "kind": group["kind"].iloc[0], "n_datasets": n, "n_draws": n_draws,
            "chi2_p": float(stats.chisquare(counts).pvalue),
            "ecdf_max_diff": float(np.abs(ecdf - cdf).max()),
            "ecdf_in_band": bool(((ecdf >= lower) & (ecdf <= upper)).all()),
            **coverage, "coverage_in_band": in_band,
            "divergent_datasets": int((group["divergences"] > 0).sum()), "synthetic": True,
        })
    return tables.frame(tables.SBC_SUMMARY, rows)


def plot_ranks(ranks: pd.DataFrame, path: str | Path) -> None:
    """Per kind of parameter: the histogram of the ranks with the uniform expectation, and each
    parameter's ECDF minus the uniform CDF inside the simultaneous 95% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [kind for kind in KINDS if kind in set(ranks["kind"])]
    fig, axes = plt.subplots(2, len(kinds), figsize=(4 * len(kinds), 6), squeeze=False)
    for column, kind in enumerate(kinds):
        group = ranks[ranks["kind"] == kind]
        n_draws = int(group["n_draws"].iloc[0])
        top, bottom = axes[0][column], axes[1][column]
        top.hist(group["rank"], bins=N_BINS, range=(0, n_draws + 1), color="0.6", edgecolor="k")
        top.axhline(len(group) / N_BINS, color="C3", linestyle="--", label="uniform")
        top.set(title=f"{kind} (all cells)", xlabel="rank of the true value", ylabel="count")
        top.legend()
        for _, one in group.groupby("parameter", sort=False):
            ecdf, cdf, lower, upper = uniform_ecdf(one["rank"].to_numpy(), n_draws)
            bottom.step(cdf, ecdf - cdf, where="post", color="0.3", alpha=0.6, linewidth=0.8)
        bottom.fill_between(cdf, lower - cdf, upper - cdf, step="post", color="C0", alpha=0.2,
                            label=f"{BAND:.0%} simultaneous band")
        bottom.axhline(0, color="k", linewidth=0.5)
        bottom.set(title=f"{kind}: ECDF − uniform, per parameter", xlabel="fractional rank",
                   ylabel="ECDF difference")
        bottom.legend(fontsize="small")
    fig.suptitle(f"SYNTHETIC: simulation-based calibration ranks ({ranks['replicate'].nunique()} datasets)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(summary: pd.DataFrame, ranks: pd.DataFrame, header: str) -> str:
    """A markdown table per kind of parameter (for the log, the CLI and docs/validation.md)."""
    from scipy import stats

    coverage_columns = [f"coverage{round(100 * level)}" for level in LEVELS]
    lines = [
        f"SYNTHETIC SBC: {header}; ranks among {int(ranks['n_draws'].iloc[0])} thinned posterior draws", "",
        "| kind | parameters | " + " | ".join(f"{round(100 * level)}% coverage" for level in LEVELS)
        + " | min chi2 p | chi2 p < 0.05 | outside ECDF band | coverage outside band |",
        "|---|---|" + "---|" * (len(LEVELS) + 4),
    ]
    for kind, group in summary.groupby("kind", sort=False):
        covered = ranks.loc[ranks["kind"] == kind, [c.replace("coverage", "covered") for c in coverage_columns]].mean()
        lines.append(f"| {kind} | {len(group)} | " + " | ".join(f"{value:.3f}" for value in covered)
                     + f" | {group['chi2_p'].min():.3f} | {int((group['chi2_p'] < 0.05).sum())} | "
                     f"{int((~group['ecdf_in_band']).sum())} | {int((~group['coverage_in_band']).sum())} |")
    fractions = ranks["rank"] / (ranks["n_draws"] + 1)
    pooled = stats.chisquare(np.histogram(fractions, bins=N_BINS, range=(0, 1))[0])
    divergent = int((ranks.groupby("replicate")["divergences"].first() > 0).sum())
    lines += ["", f"all ranks pooled: chi2 p = {pooled.pvalue:.3f}; overall 90% coverage "
              f"{ranks['covered90'].mean():.3f}; datasets with divergences: {divergent} of "
              f"{ranks['replicate'].nunique()}"]
    return "\n".join(lines)
