"""Old = new: the reparameterised model gives the posterior of the model it replaced.

The package's model (``crsmeta.model.build``: θ in sum-to-zero parts, study effects integrated
out where exact) and the parameterisation before issue 9 (``validation/legacy_build.py``) are
fitted to the same data with the same sampler and settings (diagnostics gate off), both through
the package's own sampling and with the package's likelihood (the old coordinates wrap it), so
they differ in coordinates only. For every
θ[intervention, marker] and τ[marker] the 2.5%, 50% and 97.5% quantiles of the two fits are
compared against their Monte Carlo error (ArviZ's ``mcse(method="quantile")``):
z = (old − new) / √(MCSE_old² + MCSE_new²). If both fits sample the same posterior, z is roughly
standard normal, so |z| stays mostly below 3; a systematic difference shows as |z| ≫ 3.

    python validation/reparameterisation.py [--datasets demo hackshaw bundled] [--chains 4 --draws 1000 --tune 1000]

Data sets:

- ``demo``: the SYNTHETIC demo (config/demo.yaml's ``synthetic`` block), its study files run
  through extract → harmonise → changes as the workflow does (``crsmeta.simulate.pipeline``);
- ``hackshaw``: 37 published studies of lung cancer in never-smoking women whose husbands smoked
  (Hackshaw, Law & Wald 1997, BMJ 315:980, doi:10.1136/bmj.315.7114.980; as curated in metafor's
  metadat package, ``dat.hackshaw1998``, file data-raw/dat.hackshaw1998.txt), each a log odds
  ratio with the SE of its 95% CI, entered as summary rows with ``effect_type: log_ratio`` and
  ``se``: a textbook random-effects meta-analysis, not CRS data (intervention and marker are
  labelled as what they are). The REML estimate (PyMARE, through ``crsmeta.model.frequentist``)
  is printed beside the pooled θ;
- ``bundled``: the workflow's own tables of the bundled studies (results/model/changes.tsv,
  results/harmonised/summaries.tsv; ``snakemake --cores 1 results/model/changes.tsv
  results/harmonised/summaries.tsv`` makes them).

Model settings are config/config.yaml's; the sampler settings are the options below. Writes
validation/results/reparameterisation.tsv (one row per parameter element and quantile) and
validation/results/reparameterisation_fits.tsv (one row per fit), and prints markdown tables.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import yaml

from crsmeta import tables, vocabulary
from crsmeta.io import load_yaml, write_tsv
from crsmeta.model import ModelData, ModelSettings, build_model
from crsmeta.comparisons import se_from_ci, summary_comparisons
from crsmeta.model.frequentist import random_effects
from crsmeta.model.sample import sample_model
from crsmeta.simulate.pipeline import run_pipeline
from crsmeta.study_estimates import per_study_estimates

import legacy_build
from recovery import demo_spec

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "validation" / "results"
CONFIG = ROOT / "config" / "config.yaml"
BUNDLED_CHANGES = ROOT / "results" / "model" / "changes.tsv"
BUNDLED_SUMMARIES = ROOT / "results" / "harmonised" / "summaries.tsv"

PARAMETERISATIONS: dict[str, Callable[[ModelData, ModelSettings], pm.Model]] = {
    "old": legacy_build.build_model, "new": build_model,
}
COMPARED = ("theta", "tau")
ESS_PARAMETERS = ("theta", "tau", "sigma")
QUANTILES = (0.025, 0.5, 0.975)
Z_LIMIT = 3.0

# Hackshaw et al. 1997, Table 1 as curated in metadat (data-raw/dat.hackshaw1998.txt): first author,
# year, lung cancer cases, odds ratio and its 95% CI. The SE of the log OR is the CI's width on the
# log scale / (2 · 1.96) (aggregate.se_from_ci), as metadat computes vi.
HACKSHAW_1997 = (
    ("Garfinkel", 1981, 153, 1.18, 0.90, 1.54), ("Hirayama", 1984, 200, 1.45, 1.02, 2.08),
    ("Butler", 1988, 8, 2.02, 0.48, 8.56), ("Cardenas", 1997, 150, 1.20, 0.80, 1.60),
    ("Chan", 1982, 84, 0.75, 0.43, 1.30), ("Correa", 1983, 22, 2.07, 0.81, 5.25),
    ("Trichopolous", 1983, 62, 2.13, 1.19, 3.83), ("Buffler", 1984, 41, 0.80, 0.34, 1.90),
    ("Kabat", 1984, 24, 0.79, 0.25, 2.45), ("Lam", 1985, 60, 2.01, 1.09, 3.72),
    ("Garfinkel", 1985, 134, 1.23, 0.81, 1.87), ("Wu", 1985, 29, 1.20, 0.50, 3.30),
    ("Akiba", 1986, 94, 1.52, 0.87, 2.63), ("Lee", 1986, 32, 1.03, 0.41, 2.55),
    ("Koo", 1987, 86, 1.55, 0.90, 2.67), ("Pershagen", 1987, 70, 1.03, 0.61, 1.74),
    ("Humble", 1987, 20, 2.34, 0.81, 6.75), ("Lam", 1987, 199, 1.65, 1.16, 2.35),
    ("Gao", 1987, 246, 1.19, 0.82, 1.73), ("Brownson", 1987, 19, 1.52, 0.39, 5.96),
    ("Geng", 1988, 54, 2.16, 1.08, 4.29), ("Shimizu", 1988, 90, 1.08, 0.64, 1.82),
    ("Inoue", 1988, 22, 2.55, 0.74, 8.78), ("Kalandidi", 1990, 90, 1.62, 0.90, 2.91),
    ("Sobue", 1990, 144, 1.06, 0.74, 1.52), ("Wu-Williams", 1990, 417, 0.79, 0.62, 1.02),
    ("Liu", 1991, 54, 0.74, 0.32, 1.69), ("Jockel", 1991, 23, 2.27, 0.75, 6.82),
    ("Brownson", 1992, 431, 0.97, 0.78, 1.21), ("Stockwell", 1992, 210, 1.60, 0.80, 3.00),
    ("Du", 1993, 75, 1.19, 0.66, 2.13), ("Liu", 1993, 38, 1.66, 0.73, 3.78),
    ("Fontham", 1994, 651, 1.26, 1.04, 1.54), ("Kabat", 1995, 67, 1.10, 0.62, 1.96),
    ("Zaridze", 1995, 162, 1.66, 1.12, 2.45), ("Sun", 1996, 230, 1.16, 0.80, 1.69),
    ("Wang", 1996, 135, 1.11, 0.67, 1.84),
)
HACKSHAW_INTERVENTION = "spouse_smokes"
HACKSHAW_MARKER = "lung_cancer_log_odds_ratio"


@dataclasses.dataclass
class TimedFit:
    """A posterior with how long compiling and sampling (tuning included) took."""

    idata: az.InferenceData
    compile_s: float
    sample_s: float


def demo_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """SYNTHETIC demo: (changes, harmonised summaries) as the workflow makes them of the simulated studies."""
    simulated = run_pipeline(demo_spec())
    return simulated.changes, simulated.summaries


def hackshaw_summaries() -> pd.DataFrame:
    """Hackshaw et al. 1997's 37 log odds ratios as harmonised summary rows with an SE."""
    rows = []
    for index, (author, year, cases, odds_ratio, low, high) in enumerate(HACKSHAW_1997, start=1):
        row = dict.fromkeys(tables.HARMONISED_SUMMARIES.columns, "")
        row.update(
            study_id=f"hackshaw1997_{index:02d}_{author}{year}", population="nonsmoking_women",
            design="cohort", intervention=HACKSHAW_INTERVENTION, marker=HACKSHAW_MARKER,
            timepoint="change", n=str(cases), effect_type="log_ratio", source_effect_type="log_ratio",
            estimate=repr(math.log(odds_ratio)),
            se=repr(se_from_ci(math.log(low), math.log(high))),
            digitised="False", synthetic="False", source_file="dat.hackshaw1998.txt",
            source_row=str(index + 1),
            quote=f"OR {odds_ratio} (95% CI {low} to {high}), {cases} cases")
        rows.append(row)
    return tables.parse(tables.HARMONISED_SUMMARIES, pd.DataFrame(rows, columns=tables.HARMONISED_SUMMARIES.columns))


@contextlib.contextmanager
def hackshaw_vocabulary() -> Iterator[None]:
    """The package's marker vocabulary plus the Hackshaw marker (log odds ratios, a log-ratio
    scale), in use for the block: a project's own markers file, as `files_in_use` takes it."""
    markers = load_yaml(vocabulary.MARKERS_FILE)
    markers["families"]["odds_ratio"] = {
        "description": "an odds ratio between two groups (not a CRS marker: external validation data)",
        "accepted_units": ["dimensionless"], "change_scale": "log_ratio",
        "implausible_hints": {"below": "an odds ratio is positive", "above": "an odds ratio this large is implausible"}}
    markers["markers"][HACKSHAW_MARKER] = {
        "modelled": True, "family": "odds_ratio", "unit": "dimensionless", "plausible_range": [0.0, 1.0e+3]}
    with tempfile.TemporaryDirectory(prefix="crsmeta-hackshaw-") as directory:
        path = Path(directory) / "markers.yaml"
        path.write_text(yaml.safe_dump(markers, allow_unicode=True, sort_keys=False), encoding="utf-8")
        with vocabulary.files_in_use(markers=path):
            yield


def hackshaw_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """No case-level changes; the 37 summary rows."""
    return tables.frame(tables.CHANGES), hackshaw_summaries()


def bundled_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The workflow's harmonised tables of the bundled studies."""
    missing = [str(p.relative_to(ROOT)) for p in (BUNDLED_CHANGES, BUNDLED_SUMMARIES) if not p.exists()]
    if missing:
        raise SystemExit(f"{', '.join(missing)} missing: run `snakemake --cores 1 results/model/changes.tsv "
                         "results/harmonised/summaries.tsv` first")
    return tables.read(tables.CHANGES, BUNDLED_CHANGES), tables.read(tables.HARMONISED_SUMMARIES, BUNDLED_SUMMARIES)


DATASETS: dict[str, Callable[[], tuple[pd.DataFrame, pd.DataFrame]]] = {
    "demo": demo_tables, "hackshaw": hackshaw_tables, "bundled": bundled_tables,
}


def sampler_settings(chains: int, draws: int, tune: int, target_accept: float, seed: int) -> ModelSettings:
    """config/config.yaml's model settings with these sampler settings and the gate off."""
    return ModelSettings.from_config(load_yaml(CONFIG)).replace(
        chains=chains, cores=min(chains, os.cpu_count() or 1), draws=draws, tune=tune, target_accept=target_accept,
        seed=seed, gate=False)


def sample_timed(model: pm.Model, settings: ModelSettings, backend: str) -> TimedFit:
    """Sample as every fit of the package does (:func:`crsmeta.model.sample.sample_model`: τ drawn
    from its conditional posterior where the log density integrates it out), with nutpie or
    PyMC's NUTS. Sampling time (tuning included) is what the sampler records; compile time is
    the rest of the call."""
    start = time.perf_counter()
    idata = sample_model(model, settings.replace(backend=backend))
    total = time.perf_counter() - start
    sample_s = float(idata.posterior.attrs["sampling_time"])
    return TimedFit(idata, total - sample_s, sample_s)


def fit_summary(fit: TimedFit) -> dict[str, float]:
    """Divergences, min bulk and tail ESS and max R-hat over θ, τ, σ, and ESS per second of sampling."""
    names = [name for name in ESS_PARAMETERS if name in fit.idata.posterior]
    bulk = az.ess(fit.idata, var_names=names, method="bulk")
    tail = az.ess(fit.idata, var_names=names, method="tail")
    rhat = az.rhat(fit.idata, var_names=names)
    min_bulk = min(float(bulk[name].min()) for name in names)
    return {
        "divergences": int(np.asarray(fit.idata.sample_stats["diverging"]).sum()),
        "min_ess_bulk": min_bulk,
        "min_ess_tail": min(float(tail[name].min()) for name in names),
        "max_rhat": max(float(rhat[name].max()) for name in names),
        "compile_s": fit.compile_s, "sample_s": fit.sample_s, "ess_per_s": min_bulk / fit.sample_s,
    }


def dataset_context(name: str) -> contextlib.AbstractContextManager:
    """What loading and fitting data set ``name`` needs around it (Hackshaw's vocabulary)."""
    return hackshaw_vocabulary() if name == "hackshaw" else contextlib.nullcontext()


def quantile_table(idata: az.InferenceData) -> pd.DataFrame:
    """One row per element of θ and τ and quantile: the quantile and its MCSE."""
    frames = []
    for name in COMPARED:
        draws = idata.posterior[name]
        element_dims = [dim for dim in draws.dims if dim not in ("chain", "draw")]
        for prob in QUANTILES:
            value = draws.quantile(prob, dim=("chain", "draw")).drop_vars("quantile")
            mcse = az.mcse(idata, var_names=[name], method="quantile", prob=prob)[name]
            frame = xr_to_frame(value, mcse, element_dims)
            frames.append(frame.assign(parameter=name, quantile=prob))
    return pd.concat(frames, ignore_index=True)


def xr_to_frame(value, mcse, dims: list[str]) -> pd.DataFrame:
    """Quantile and MCSE DataArrays (same dims) as rows labelled ``element`` (coords joined by ×)."""
    frame = pd.DataFrame({"value": value.to_series(), "mcse": mcse.to_series()}).reset_index()
    frame["element"] = frame[dims].astype(str).agg(" × ".join, axis=1)
    return frame[["element", "value", "mcse"]]


def compare(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Old and new quantiles side by side with z = difference / combined MCSE."""
    keys = ["parameter", "element", "quantile"]
    both = old.merge(new, on=keys, suffixes=("_old", "_new"), validate="one_to_one")
    both["z"] = (both["value_old"] - both["value_new"]) / np.hypot(both["mcse_old"], both["mcse_new"])
    return both


def validate_dataset(name: str, settings: ModelSettings, backend: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit both parameterisations to one data set: the quantile comparison and one row per fit."""
    with dataset_context(name):
        changes, summaries = DATASETS[name]()
        data = ModelData.from_tables(changes, summary_comparisons(summaries)[0], settings)
        quantiles, fits = {}, []
        for label, builder in PARAMETERISATIONS.items():
            fit = sample_timed(builder(data, settings), settings, backend)
            quantiles[label] = quantile_table(fit.idata)
            fits.append({"dataset": name, "parameterisation": label, **fit_summary(fit)})
            print(f"{name} / {label}: {fits[-1]}", flush=True)
        comparison = compare(quantiles["old"], quantiles["new"]).assign(dataset=name)
        if name == "hackshaw":
            print(reml_text(summaries, comparison))
    return comparison, pd.DataFrame(fits)


def reml_text(summaries: pd.DataFrame, comparison: pd.DataFrame) -> str:
    """REML (PyMARE) beside the Bayesian pooled θ of the Hackshaw data (medians, 95% intervals)."""
    aggregate, _ = summary_comparisons(summaries)
    reml = random_effects(per_study_estimates(tables.frame(tables.CHANGES), aggregate)).iloc[0]
    theta = comparison[comparison["parameter"] == "theta"].set_index("quantile")
    lines = [f"hackshaw: REML {reml['reml_estimate']:.4f} [{reml['reml_lo95']:.4f}, {reml['reml_hi95']:.4f}], "
             f"tau^2 {reml['reml_tau2']:.4f} (tau {math.sqrt(reml['reml_tau2']):.4f})"]
    for label in ("old", "new"):
        q = theta[f"value_{label}"]
        lines.append(f"hackshaw: Bayesian theta ({label}) {q[0.5]:.4f} [{q[0.025]:.4f}, {q[0.975]:.4f}]")
    return "\n".join(lines)


def worst_rows(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per data set and parameter: how many quantiles exceed |z| = 3 and the element with the largest |z|."""
    rows = []
    for (dataset, parameter), group in comparison.groupby(["dataset", "parameter"], sort=False):
        worst = group.loc[group["z"].abs().idxmax()]
        element = group[group["element"] == worst["element"]].set_index("quantile")
        rows.append({
            "data set": dataset, "parameter": parameter, "quantiles compared": len(group),
            "|z| > 3": int((group["z"].abs() > Z_LIMIT).sum()), "max |z|": abs(worst["z"]),
            "at": worst["element"],
            "old (2.5/50/97.5%)": "/".join(f"{element.loc[q, 'value_old']:.3f}" for q in QUANTILES),
            "new (2.5/50/97.5%)": "/".join(f"{element.loc[q, 'value_new']:.3f}" for q in QUANTILES),
        })
    return pd.DataFrame(rows)


def fits_text(fits: pd.DataFrame) -> str:
    """Markdown table of the fits: divergences, ESS, R-hat, timings and ESS/s."""
    table = fits.rename(columns={
        "dataset": "data set", "parameterisation": "model", "min_ess_bulk": "min bulk ESS",
        "min_ess_tail": "min tail ESS", "max_rhat": "max R-hat", "compile_s": "compile (s)",
        "sample_s": "sampling (s)", "ess_per_s": "bulk ESS/s"})
    return table.to_markdown(index=False, floatfmt=".3g")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--tune", type=int, default=1000)
    parser.add_argument("--target-accept", type=float, default=0.9)
    parser.add_argument("--backend", choices=("nutpie", "pymc"), default="nutpie")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "reparameterisation.tsv")
    args = parser.parse_args()
    settings = sampler_settings(args.chains, args.draws, args.tune, args.target_accept, args.seed)
    comparisons, fits = zip(*(validate_dataset(name, settings, args.backend) for name in args.datasets))
    comparison, fit_table = pd.concat(comparisons, ignore_index=True), pd.concat(fits, ignore_index=True)
    write_tsv(comparison, args.out)
    write_tsv(fit_table, args.out.with_name(args.out.stem + "_fits.tsv"))
    print(f"\n{args.chains} chains x {args.draws} draws after {args.tune} tuning steps, target_accept "
          f"{args.target_accept}, {args.backend}, seed {args.seed}\n")
    print(worst_rows(comparison).to_markdown(index=False, floatfmt=".2f"))
    print()
    print(fits_text(fit_table))


if __name__ == "__main__":
    main()
