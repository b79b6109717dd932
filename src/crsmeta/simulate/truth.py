"""The truth (θ, τ, σ per intervention and marker) and the patients of each study arm drawn from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from crsmeta import tables
from crsmeta.simulate.spec import SimulationSpec
from crsmeta.vocabulary import ChangeScale, change_scale

def is_difference(marker: str) -> bool:
    """Whether the marker's change is a difference (temperature: no true zero), not a log ratio."""
    return change_scale(marker) is ChangeScale.DIFFERENCE


def draw_truth(spec: SimulationSpec, rng: np.random.Generator) -> pd.DataFrame:
    """The (intervention, marker) truth table (:data:`crsmeta.tables.TRUTH`): given in the spec,
    or drawn from its hyperprior."""
    hp = spec.hyperprior
    n_i, n_m = len(spec.interventions), len(spec.markers)
    a = rng.normal(hp.marker_mean, hp.marker_sd, size=n_m)
    b = rng.normal(0.0, hp.intervention_sd, size=n_i)
    c = rng.normal(0.0, hp.cell_sd, size=(n_i, n_m))
    tau = np.abs(rng.normal(0.0, hp.tau_scale, size=n_m))
    sigma = hp.sigma_low + np.abs(rng.normal(0.0, hp.sigma_scale, size=n_m))
    scale = np.array([hp.temperature_scale if is_difference(m) else 1.0 for m in spec.markers])
    drawn_theta = (a[None, :] + b[:, None] + c) * scale[None, :]
    rows = []
    for i, intervention in enumerate(spec.interventions):
        for j, marker in enumerate(spec.markers):
            rows.append({
                "intervention": intervention,
                "marker": marker,
                "theta": _given(spec.theta, (intervention, marker), drawn_theta[i, j]),
                "tau": _given(spec.tau, marker, tau[j] * scale[j]),
                "sigma": _given(spec.sigma, marker, sigma[j] * scale[j]),
                "synthetic": True,
            })
    return tables.frame(tables.TRUTH, rows)


def _given(mapping: Mapping[Any, float] | None, key: Any, drawn: float) -> float:
    if mapping is None:
        return float(drawn)
    if key not in mapping:
        raise ValueError(f"the spec's truth has no value for {key!r}")
    return float(mapping[key])


@dataclass
class Arm:
    """The latent (exact) pre and post values of one study arm, in canonical units."""

    intervention: str
    marker: str
    pre: np.ndarray
    post: np.ndarray


def draw_arm(
    spec: SimulationSpec, truth: pd.DataFrame, rng: np.random.Generator,
    intervention: str, marker: str, n: int, study_shift: float,
) -> Arm:
    """Patients of one arm; ``study_shift`` is the study's effect u[s, m] in units of tau[m]. The
    spec's :class:`~crsmeta.simulate.spec.Misspecification` may make the changes heavy-tailed and
    the baseline levels skewed."""
    cell = truth[(truth["intervention"] == intervention) & (truth["marker"] == marker)].iloc[0]
    departures = spec.misspecification
    change = _changes(rng, cell["theta"] + study_shift * cell["tau"], cell["sigma"], n, departures.change_df)
    centre, spread = spec.baseline[marker]
    dependence = _baseline_dependence(spec.pre_post_correlation.get(marker), spread, cell["sigma"])
    if is_difference(marker):
        pre = _levels(rng, centre, spread, n, departures.level_skewness)
        return Arm(intervention, marker, pre, pre + change + dependence * (pre - centre))
    log_pre = _levels(rng, np.log(centre), spread, n, departures.level_skewness)
    pre = np.exp(log_pre)
    return Arm(intervention, marker, pre, pre * np.exp(change + dependence * (log_pre - np.log(centre))))


def _baseline_dependence(rho: float | None, spread: float, sigma: float) -> float:
    """β in a patient's change θ + u + β·(level − centre) + ε, ε ~ Normal(0, σ²), for which
    the pre and post levels (logs; °C) correlate by ``rho``: post − centre = (1 + β)·(pre − centre)
    + θ + u + ε correlates by (1 + β)s/√((1 + β)²s² + σ²), which is ρ at 1 + β = ρσ/(s√(1 − ρ²)).
    0 where ``rho`` is None (the model's patient-level assumption). The change's mean stays
    θ + u, so a median's or a mean log level's change is still θ + u; its SD is no longer σ."""
    if rho is None:
        return 0.0
    return rho * sigma / (spread * np.sqrt(1.0 - rho**2)) - 1.0


def _changes(rng: np.random.Generator, mean: float, sd: float, n: int, df: float | None) -> np.ndarray:
    """Normal(mean, sd) changes, or with ``df`` Student-t ones scaled to the same SD."""
    if df is None:
        return rng.normal(mean, sd, size=n)
    return mean + sd * np.sqrt((df - 2) / df) * _quantile_matched(rng.standard_normal(n), stats.t(df))


def _levels(rng: np.random.Generator, mean: float, sd: float, n: int, skewness: float) -> np.ndarray:
    """Normal(mean, sd) levels, or skew-normal ones of shape ``skewness`` with the same mean and SD."""
    if skewness == 0:
        return rng.normal(mean, sd, size=n)
    shape = stats.skewnorm(skewness)
    shape_mean, shape_variance = shape.stats(moments="mv")
    standardised = (_quantile_matched(rng.standard_normal(n), shape) - shape_mean) / np.sqrt(shape_variance)
    return mean + sd * standardised


def _quantile_matched(normal: np.ndarray, distribution: Any) -> np.ndarray:
    """Draws of ``distribution`` from standard normal draws, each at the normal's probability (the
    probability integral transform): as many random numbers as the normal model takes, so a
    misspecified dataset keeps the design of the normal one with the same seed, and its values
    are the normal one's, transformed. Each tail is read from its own side, for precision."""
    lower = normal <= 0
    matched = np.empty_like(normal)
    matched[lower] = distribution.ppf(stats.norm.cdf(normal[lower]))
    matched[~lower] = distribution.isf(stats.norm.sf(normal[~lower]))
    return matched
