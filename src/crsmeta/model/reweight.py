"""Sensitivity analyses from the main fit's draws, by Pareto-smoothed importance sampling.

Leaving one study out, or rescaling the prior of τ, σ (with s) or ρ, changes the posterior by a
factor known for every draw: exp(−log-likelihood of the study's rows), or the ratio of the two
priors. The main fit's draws, weighted by it (PSIS, as the loo and priorsense tools do), are then
draws of the analysis' posterior, as long as the weights are well behaved: Pareto k̂ ≤ 0.7 and
enough effective draws left. Where they are not, or where leaving the study out would change the
model itself (a covariate switched on or off, or another grade centring: :func:`model_change`), the
analysis is refitted. An analysis that only filters rows (no digitised values) is the main posterior itself
where the filter drops no row of the model, and is refitted where it does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from crsmeta import tables
from crsmeta.model.analyses import PARETO_K_MAX, Reweighting
from crsmeta.model.build import (
    BASELINE_MARKER, baseline_sd_prior_mean, correlation_prior, sigma_prior, sigma_prior_mean, study_log_likelihood,
    tau_prior, tau_prior_scale,
)
from crsmeta.model.data import ModelData
from crsmeta.model.diagnostics import FAILED
from crsmeta.model.effects import stacked_draws
from crsmeta.model.over_draws import NUMPY_MODE, evaluate_over_posterior
from crsmeta.model.settings import ModelSettings

SAMPLED, REWEIGHTED = "sampled", "reweighted"
STUDY_LOG_LIKELIHOOD = "study"  # variable of the log_likelihood group, one value per study and draw


@dataclasses.dataclass(frozen=True)
class MainFit:
    """The main analysis as reweighting starts from it: its draws (with each study's
    log-likelihood), model data, settings and diagnostics table (with its gate verdict)."""

    idata: az.InferenceData
    data: ModelData
    settings: ModelSettings
    diagnostics: pd.DataFrame


@dataclasses.dataclass(frozen=True)
class ReweightedFit:
    """An analysis computed from the main draws: resampled draws, k̂, effective draws, and why
    it must be refitted instead ('' when the weights can be used)."""

    idata: az.InferenceData | None
    pareto_k: float
    effective_draws: float
    refit_reason: str


def read_main_fit(posterior: str | Path, diagnostics: str | Path, changes: pd.DataFrame,
                  comparisons: pd.DataFrame, settings: ModelSettings) -> MainFit:
    """The main fit as the workflow wrote it (results/model/main/posterior.nc, diagnostics.tsv):
    of its draws, the groups reweighting reads (the posterior and each study's log-likelihood), not
    the predictive draws the report reads (a fifth of the time to read them all)."""
    return MainFit(idata=_read_groups(posterior, ("posterior", "log_likelihood")),
                   data=ModelData.from_tables(changes, comparisons, settings),
                   settings=settings, diagnostics=tables.read(tables.DIAGNOSTICS, diagnostics))


def _read_groups(path: str | Path, groups: tuple[str, ...]) -> az.InferenceData:
    """The ``groups`` of an inference data netCDF file that it holds."""
    with xr.open_datatree(path) as tree:
        present = [group for group in groups if group in tree.children]
        return az.InferenceData(**{group: tree[group].to_dataset().load() for group in present})


def reweight_main(main: MainFit, data: ModelData, settings: ModelSettings,
                  reweighting: Reweighting) -> ReweightedFit:
    """The analysis of ``data`` under ``settings`` from the main draws, or why it cannot be."""
    reason = _main_unusable(main)
    if not reason and reweighting.left_out is not None:
        reason = model_change(main.data, data, reweighting.left_out)
    if not reason and reweighting.row_filters:
        reason = rows_dropped(main.data, data, reweighting)
    if reason:
        return ReweightedFit(idata=None, pareto_k=float("nan"), effective_draws=float("nan"), refit_reason=reason)
    log_weight = log_weights(main.idata, main.data, main.settings, settings, reweighting)
    parameters = main.diagnostics[main.diagnostics["kind"] == "parameter"]
    lowest_ess = float(parameters["ess_bulk"].min())
    reweighted = reweight(main.idata, log_weight, settings, lowest_ess)
    if (reweighted.idata is not None and "corr_prior" in reweighting.prior_fields
            and not main.data.correlation_rows().size):
        _rho_from_new_prior(reweighted.idata, settings)
    return reweighted


def _main_unusable(main: MainFit) -> str:
    """Why the main draws cannot stand for another analysis: a fit that failed a check of the gate
    (also with the gate switched off: its failures are listed) or draws without the
    per-study log-likelihood."""
    fit_row = main.diagnostics[main.diagnostics["kind"] == "fit"]
    failures = fit_row["gate_failures"].iloc[0] if not fit_row.empty else ""
    if fit_row.empty or fit_row["gate"].iloc[0] == FAILED or not (pd.isna(failures) or failures == ""):
        return "the main fit did not pass the diagnostics gate"
    if "log_likelihood" not in main.idata.groups():
        return "the main fit has no per-study log-likelihood"
    return ""


def add_study_log_likelihood(idata: az.InferenceData, model: pm.Model) -> az.InferenceData:
    """``idata`` with a ``log_likelihood`` group: each study's log-likelihood at every draw
    (evaluated by numpy over all draws at once: crsmeta.model.over_draws)."""
    expression, studies = study_log_likelihood(model)
    [per_study] = evaluate_over_posterior([expression], model.free_RVs, idata.posterior)
    idata.add_groups(log_likelihood=az.dict_to_dataset(
        {STUDY_LOG_LIKELIHOOD: per_study}, library=pm,
        coords={"chain": idata.posterior["chain"].values, "draw": idata.posterior["draw"].values, "study_id": studies},
        dims={STUDY_LOG_LIKELIHOOD: ["study_id"]},
    ))
    return idata


def model_change(main_data: ModelData, data: ModelData, left_out: str) -> str:
    """How leaving ``left_out``'s rows out changes the model beyond their likelihood terms ('' when
    it does not): a covariate switched on or off, or baseline grades centred on another mean. (The
    levels stay the main model's: crsmeta.model.data.ModelData.)"""
    for flag, dim in (("use_population", "population"), ("use_co_interventions", "co_intervention")):
        if getattr(main_data, flag) != getattr(data, flag):
            return f"{dim.replace('_', '-')} covariate switched {'on' if getattr(data, flag) else 'off'}"
    if main_data.use_grade != data.use_grade:
        return "baseline-grade covariate switched " + ("on" if data.use_grade else "off")
    kept = (main_data.cases["study_id"] != left_out).to_numpy()
    if data.use_grade and not np.array_equal(main_data.centred_grade()[kept], data.centred_grade()):
        return "baseline grades centred on another mean"
    return ""


def rows_dropped(main_data: ModelData, data: ModelData, reweighting: Reweighting) -> str:
    """Why the row filters of ``reweighting`` need a refit: the rows they drop ('' when they drop
    none, e.g. no digitised value reaches the model: the main draws are then the analysis' own).
    Filters only ever drop rows, so equal counts are equal rows. The main fit keeps its
    log-likelihood per study, not per row, so dropped rows cannot be weighted away."""
    dropped = _row_count(main_data, besides=reweighting.left_out) - _row_count(data)
    return f"{', '.join(reweighting.row_filters)} drops {dropped} of the main model's rows" if dropped else ""


def _row_count(data: ModelData, besides: str | None = None) -> int:
    """The model's case and summary rows, those of study ``besides`` not counted."""
    return sum(int((frame["study_id"] != besides).sum()) for frame in (data.cases, data.observations))


def log_weights(main: az.InferenceData, main_data: ModelData, main_settings: ModelSettings,
                settings: ModelSettings, reweighting: Reweighting) -> np.ndarray:
    """log p_analysis(draw | data) − log p_main(draw | data) + const, per (chain, draw)."""
    posterior = main.posterior
    shape = (posterior.sizes["chain"], posterior.sizes["draw"])
    weights = np.zeros(shape)
    if reweighting.left_out is not None:
        likelihood = main.log_likelihood[STUDY_LOG_LIKELIHOOD]
        if reweighting.left_out in likelihood.coords["study_id"].values:
            weights -= likelihood.sel(study_id=reweighting.left_out).to_numpy()
    changed = set(reweighting.prior_fields)
    if {"tau_sd", "temp_tau_sd"} & changed:
        weights += _log_prior_ratio(posterior["tau"], lambda s: tau_prior(s, tau_prior_scale(main_data, s)),
                                    settings, main_settings)
    if {"sigma_sd", "temp_sigma_sd"} & changed:
        weights += _log_prior_ratio(posterior["sigma"], lambda s: sigma_prior(sigma_prior_mean(main_data, s)),
                                    settings, main_settings)
    if {"baseline_sd", "temp_baseline_sd"} & changed and "baseline_sd" in posterior:  # only markers with rows that read s
        markers = posterior["baseline_sd"].coords[BASELINE_MARKER].to_numpy()
        weights += _log_prior_ratio(posterior["baseline_sd"], lambda s: sigma_prior(baseline_sd_prior_mean(markers, s)),
                                    settings, main_settings)
    if "corr_prior" in changed and main_data.correlation_rows().size:
        weights += _log_prior_ratio(posterior["rho"], lambda s: correlation_prior(s.corr_prior),
                                    settings, main_settings)
    return weights


def _log_prior_ratio(draws, prior_of, settings: ModelSettings, main_settings: ModelSettings) -> np.ndarray:
    """log p_analysis(draws) − log p_main(draws) of one parameter's prior, summed over its
    elements, per (chain, draw); ``prior_of(settings)`` gives the prior's family and parameters."""
    values = draws.to_numpy()
    ratio = _prior_log_density(*prior_of(settings), values) - _prior_log_density(*prior_of(main_settings), values)
    return ratio.reshape(*values.shape[:2], -1).sum(-1)


def _rho_from_new_prior(idata: az.InferenceData, settings: ModelSettings) -> None:
    """ρ drawn afresh from ``settings``' prior, where no row informs it: ρ is then independent of
    every other parameter a posteriori, so this is exact, and the draws of everything else (and
    the weights, constant in ρ) stay the main fit's."""
    rng = np.random.default_rng(settings.seed)
    distribution, parameters = correlation_prior(settings.corr_prior)
    rho = pm.draw(distribution.dist(**parameters, size=idata.posterior["rho"].shape), random_seed=rng)
    idata.posterior["rho"].values = rho
    if "rho_logodds__" in idata.posterior:  # the sampler's copy in its own coordinates
        idata.posterior["rho_logodds__"].values = np.log(rho) - np.log1p(-rho)


def reweight(main: az.InferenceData, log_weight: np.ndarray, settings: ModelSettings,
             main_ess: float) -> ReweightedFit:
    """PSIS-smoothed weights, k̂, and the main draws resampled by them (one chain, same count).

    The effective draws are the main fit's lowest bulk ESS times the share the weights keep
    (Kish's n_eff / n), so the gate's ``ess_min`` applies to reweighted analyses as to sampled ones.
    """
    n_draws = log_weight.size
    flat = log_weight.reshape(-1)
    if np.ptp(flat) == 0:  # the analysis' posterior is the main one
        smoothed, pareto_k = np.full(n_draws, -np.log(n_draws)), float("-inf")
    else:
        smoothed, pareto_k = az.psislw(flat, reff=_relative_efficiency(log_weight))
        pareto_k = float(pareto_k)
    weights = np.exp(smoothed - smoothed.max())
    weights /= weights.sum()
    effective = main_ess / (n_draws * float(np.sum(weights**2)))
    reason = ""
    if pareto_k > pareto_k_threshold(n_draws):
        reason = f"Pareto k {pareto_k:.2f} > {pareto_k_threshold(n_draws):.2f}"
    elif effective < settings.ess_min:
        reason = f"{effective:.0f} effective draws left after weighting (< {settings.ess_min:g})"
    resampled = None if reason else _resampled(main, weights, settings.seed)  # a refit needs no draws
    return ReweightedFit(idata=resampled, pareto_k=pareto_k, effective_draws=effective, refit_reason=reason)


def pareto_k_threshold(n_draws: int) -> float:
    """The largest k̂ whose weighted estimates are trusted with ``n_draws`` draws: min(1 − 1/log10 S,
    0.7) (Vehtari et al. 2024, section 3); 0.7 from about 2,200 draws on."""
    return min(1.0 - 1.0 / np.log10(n_draws), PARETO_K_MAX)


def _prior_log_density(distribution: type[pm.Distribution], parameters: dict, values: np.ndarray) -> np.ndarray:
    """The model's own prior (crsmeta.model.build) at ``values``, elementwise (numpy evaluates it:
    nothing to compile)."""
    return pm.logp(distribution.dist(**parameters), values).eval(mode=NUMPY_MODE)


def _relative_efficiency(log_weight: np.ndarray) -> float:
    """r_eff for PSIS as the loo package computes it: ESS / n of exp(−log ratio) (for a left-out
    study its likelihood, bounded where the ratios are heavy-tailed), over the chains."""
    inverse_ratios = np.exp(-(log_weight - log_weight.min()))
    return min(1.0, float(az.ess(inverse_ratios, method="mean")) / log_weight.size)


def _resampled(main: az.InferenceData, weights: np.ndarray, seed: int) -> az.InferenceData:
    """Systematic resampling of the posterior draws by ``weights``: one chain of as many draws."""
    n_draws = weights.size
    positions = (np.random.default_rng(seed).random() + np.arange(n_draws)) / n_draws
    chosen = np.minimum(np.searchsorted(np.cumsum(weights), positions), n_draws - 1)
    stacked = stacked_draws(main.posterior)
    drawn = stacked.isel(sample=chosen).drop_vars(["sample", "chain", "draw"])
    posterior = drawn.rename({"sample": "draw"}).assign_coords(draw=np.arange(n_draws)).expand_dims(chain=[0])
    posterior = posterior.transpose("chain", "draw", ...)
    posterior.attrs = dict(main.posterior.attrs)
    return az.InferenceData(posterior=posterior)

