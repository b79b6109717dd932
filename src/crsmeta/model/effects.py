"""The effects table: one row per (intervention, marker) cell with data."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from crsmeta import tables
from crsmeta.model.data import ModelData, model_family
from crsmeta.model.settings import ModelSettings
from crsmeta.vocabulary import ChangeScale, change_scale, change_unit

STANDARD_CARE = "standard_care"
HALVING = float(np.log(0.5))  # p_reduction_50 for markers: P(pct < -50) = P(theta < log 0.5)
TEMPERATURE_DROP_DEGC = -1.0  # p_reduction_50 for temperature: P(theta < -1 degC)
PREDICTION_SEED = 20240917

DATA_DRIVEN, WEAKLY_INFORMED, PRIOR_DRIVEN = "data-driven", "weakly informed", "prior-driven"
DATA_DRIVEN_MAX_RATIO = 0.3
WEAKLY_INFORMED_MAX_RATIO = 0.7
"""How far the data narrowed a cell's prior: ``sd_ratio`` = posterior SD / prior SD of its θ.

Its square is, for a Gaussian prior and likelihood, the prior's share of the posterior's
precision (1 − the posterior contraction of Betancourt's and Schad et al.'s workflow). At most 0.3:
the prior carries under ~10% of it, and doubling the prior's SD would widen the interval by ~4%
(``data-driven``). Above 0.7: the prior carries about half of it or more, and doubling its SD
would widen the interval by a quarter or more (``prior-driven``). In between, ``weakly
informed``: the data inform the estimate, the prior still shapes it. docs/model.md (Outputs) gives
the bundled cells' ratios: a one-study cell is at least as uncertain as the between-study τ, so
it lands between the two.
"""

COLUMNS = tables.EFFECT_ESTIMATES.columns


def effects_table(idata: az.InferenceData, data: ModelData, settings: ModelSettings) -> pd.DataFrame:
    """Posterior summaries of each cell's change, its prediction interval and its contrast.

    θ is reported in the population(s) the cell's data come from: with the population
    covariate on, θ[i, m] (reference population) plus the population shift, averaged over the
    cell's populations weighted by their number of observations. Beside it, the prior and
    posterior SD of that quantity and the evidence label their ratio gives (:func:`evidence`).
    ``settings`` are those the model was built with (a reweighted analysis changes only τ's
    or ρ's prior, or the rows: θ's prior is the main fit's).
    """
    posterior = stacked_draws(idata.posterior)
    counts = data.counts().set_index(["intervention", "marker"])
    rng = np.random.default_rng(PREDICTION_SEED)
    rows = []
    for (intervention, marker), count in counts.iterrows():
        theta = _cell_draws(posterior, data, intervention, marker)
        tau = posterior["tau"].sel(marker=marker).to_numpy()
        predicted = theta + tau * rng.standard_normal(theta.shape)
        rows.append({"intervention": intervention, "marker": marker, **count.to_dict(),
                     **_summaries(theta, marker), **_prior_and_posterior(theta, data, settings, intervention, marker),
                     "tau_median": float(np.median(tau)),
                     "pred_lo95": _q(predicted, 0.025), "pred_hi95": _q(predicted, 0.975),
                     **_contrast(posterior, data, intervention, marker), **_baseline_slope(posterior, marker)})
    return tables.frame(tables.EFFECT_ESTIMATES, rows)


def stacked_draws(posterior: xr.Dataset) -> xr.Dataset:
    """The posterior's variables with chain and draw stacked into one ``sample`` dimension.

    A variable without elements (u when no study keeps an explicit effect: every model has every
    term, crsmeta.model.build) is left out: it has no draws, and xarray cannot stack it.
    """
    nonempty = [name for name, variable in posterior.data_vars.items() if variable.size]
    return posterior[nonempty].stack(sample=("chain", "draw"))


def _cell_draws(posterior: xr.Dataset, data: ModelData, intervention: str, marker: str) -> np.ndarray:
    theta = posterior["theta"].sel(intervention=intervention, marker=marker).to_numpy()
    if "population_effect" not in posterior:
        return theta
    family = model_family(marker)
    weights = _population_weights(data, intervention, marker)
    shift = sum(w * posterior["population_effect"].sel(population=p, family=family).to_numpy()
                for p, w in weights.items())
    return theta + shift


def cell_prior_sd(data: ModelData, settings: ModelSettings, intervention: str, marker: str) -> float:
    """The prior SD of what :func:`_cell_draws` reports: θ[i, m] (crsmeta.model.build.theta_prior_sd)
    plus, with the population covariate on, Σ_p w_p · shift[p, family], whose prior variance is
    covariate_sd² · Σ w_p² over the cell's populations other than the reference (its shift is 0;
    the shifts are independent of θ and of each other)."""
    from crsmeta.model.build import theta_prior_sd  # imports PyMC: the report reads this module's labels

    variance = theta_prior_sd(settings, change_scale(marker) is ChangeScale.DIFFERENCE) ** 2
    if data.use_population:
        weights = _population_weights(data, intervention, marker)
        shifted = weights[weights.index.isin(data.coords["population_shifted"])]
        variance += settings.covariate_sd**2 * float(np.sum(shifted.to_numpy() ** 2))
    return float(np.sqrt(variance))


def evidence(sd_ratio: float) -> str:
    """The evidence label of a posterior/prior SD ratio (thresholds: :data:`DATA_DRIVEN_MAX_RATIO`)."""
    if sd_ratio <= DATA_DRIVEN_MAX_RATIO:
        return DATA_DRIVEN
    if sd_ratio <= WEAKLY_INFORMED_MAX_RATIO:
        return WEAKLY_INFORMED
    return PRIOR_DRIVEN


def _prior_and_posterior(theta: np.ndarray, data: ModelData, settings: ModelSettings, intervention: str,
                         marker: str) -> dict:
    prior_sd = cell_prior_sd(data, settings, intervention, marker)
    posterior_sd = float(np.std(theta, ddof=1))
    ratio = posterior_sd / prior_sd
    return {"prior_sd": prior_sd, "posterior_sd": posterior_sd, "sd_ratio": ratio, "evidence": evidence(ratio)}


def _population_weights(data: ModelData, intervention: str, marker: str) -> pd.Series:
    rows = data.rows(["intervention", "marker", "population"])
    cell = rows[(rows["intervention"] == intervention) & (rows["marker"] == marker)]
    return cell["population"].value_counts(normalize=True)


def _summaries(theta: np.ndarray, marker: str) -> dict:
    difference = change_scale(marker) is ChangeScale.DIFFERENCE
    pct = theta if difference else 100 * np.expm1(theta)
    threshold = TEMPERATURE_DROP_DEGC if difference else HALVING
    return {
        "scale": change_unit(marker),
        "theta_median": _q(theta, 0.5), "theta_lo95": _q(theta, 0.025), "theta_hi95": _q(theta, 0.975),
        "pct_median": _q(pct, 0.5), "pct_lo95": _q(pct, 0.025), "pct_hi95": _q(pct, 0.975),
        "p_reduction": float(np.mean(theta < 0)), "p_reduction_50": float(np.mean(theta < threshold)),
        "reduction_50_threshold": "theta < -1 degC" if difference else "pct < -50",
    }


def _contrast(posterior: xr.Dataset, data: ModelData, intervention: str, marker: str) -> dict:
    """θ[i, m] − θ[standard_care, m] where both have data in a shared population.

    ``contrast_basis`` says what the difference rests on: ``within_study`` when at least one study
    holds both arms for this marker (e.g. a randomised trial), ``indirect`` when none does and the
    two changes come from different studies (a non-randomised comparison across studies).
    """
    empty = {"contrast_median": np.nan, "contrast_lo95": np.nan, "contrast_hi95": np.nan,
             "p_better_than_standard_care": np.nan, "contrast_basis": ""}
    if intervention == STANDARD_CARE:
        return empty | {"contrast_note": "this is the standard-care arm"}
    cells = data.cells()
    own = set(cells[(cells["intervention"] == intervention) & (cells["marker"] == marker)]["population"])
    care = set(cells[(cells["intervention"] == STANDARD_CARE) & (cells["marker"] == marker)]["population"])
    shared = own & care
    if not shared:
        note = ("no standard-care data for this marker" if not care else
                f"standard-care data for this marker only in {', '.join(sorted(care))}")
        return empty | {"contrast_note": note}
    theta = posterior["theta"].sel(marker=marker)
    difference = (theta.sel(intervention=intervention) - theta.sel(intervention=STANDARD_CARE)).to_numpy()
    both_arms = studies_with_both_arms(data, intervention, marker)
    where = f"in {', '.join(sorted(shared))}"
    if both_arms:
        basis, note = "within_study", f"against standard care {where}; both arms in {', '.join(both_arms)}"
    else:
        basis, note = "indirect", (f"indirect: no study holds both arms; standard care and {intervention} "
                                   f"come from different studies {where} (not randomised)")
    return {"contrast_median": _q(difference, 0.5), "contrast_lo95": _q(difference, 0.025),
            "contrast_hi95": _q(difference, 0.975),
            "p_better_than_standard_care": float(np.mean(difference < 0)),
            "contrast_basis": basis, "contrast_note": note}


def _baseline_slope(posterior: xr.Dataset, marker: str) -> dict:
    """The baseline-level coefficient of the cell's marker family (empty when it is off): how much
    of a change tracks the level it started from (regression to the mean, or a real dependence)."""
    if "baseline_effect" not in posterior:
        return {"baseline_slope_median": np.nan, "baseline_slope_lo95": np.nan, "baseline_slope_hi95": np.nan}
    slope = posterior["baseline_effect"].sel(family=model_family(marker)).to_numpy()
    return {"baseline_slope_median": _q(slope, 0.5), "baseline_slope_lo95": _q(slope, 0.025),
            "baseline_slope_hi95": _q(slope, 0.975)}


def studies_with_both_arms(data: ModelData, intervention: str, marker: str) -> list[str]:
    """Studies whose data on ``marker`` include both ``intervention`` and standard care."""
    rows = data.rows(["study_id", "intervention", "marker"])
    rows = rows[rows["marker"] == marker]
    arms = rows.groupby("study_id")["intervention"].agg(set)
    return sorted(study for study, given in arms.items() if {intervention, STANDARD_CARE} <= given)


def _q(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q))
