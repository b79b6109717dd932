"""The truth (θ, τ, σ per intervention and marker) and the patients of each study arm drawn from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

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
    """Patients of one arm; ``study_shift`` is the study's effect u[s, m] in units of tau[m]."""
    cell = truth[(truth["intervention"] == intervention) & (truth["marker"] == marker)].iloc[0]
    change = rng.normal(cell["theta"] + study_shift * cell["tau"], cell["sigma"], size=n)
    centre, spread = spec.baseline[marker]
    if is_difference(marker):
        pre = rng.normal(centre, spread, size=n)
        return Arm(intervention, marker, pre, pre + change)
    pre = np.exp(rng.normal(np.log(centre), spread, size=n))
    return Arm(intervention, marker, pre, pre * np.exp(change))
