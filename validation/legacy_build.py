"""The coordinates of the model before issue 9 (crsmeta 0.1.0, commit 8bb7e46) around the package's
likelihood, kept only so that validation/reparameterisation.py and benchmarks/run.py can compare
them with the package's model (docs/validation.md, section 5).

Before issue 9, θ = μ + α[i] + β[m] + σ_γ·Z[i, m], each part its own variable (only their sum is
identified), and every study effect was explicit and non-centred, u = τ·Z; both are kept here.
Everything else is the package's own (crsmeta.model.build): the priors of τ and σ, the covariates,
and every row's mean, variance and likelihood (a row's shift from its own CVs and that shift's
small-sample correction, a median's (2/π)·arcsin ρ, learned SEs, P-value bounds, censoring). The
two models then differ in their coordinates only and must give the same posterior; a likelihood
change in the package reaches both, which is what kept this comparison from going stale again.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from crsmeta.model import build
from crsmeta.model.data import ModelData
from crsmeta.model.settings import ModelSettings

# the package integrates τ (as well as u) out of these kinds of row; here their u is explicit
_TAU_INTEGRATED_KINDS = {"learned_alone": "learned", "gaussian_alone": "gaussian"}


def build_model(data: ModelData, settings: ModelSettings) -> pm.Model:
    """Effects θ[intervention, marker] in the old coordinates, an explicit non-centred study
    effect for every study and marker, and the package's likelihood of every row given them."""
    with pm.Model(coords=data.coords) as model:
        theta = _effects(data, settings)
        tau = build._tau(data, settings)
        distribution, parameters = build.sigma_prior(pm.Data("sigma_prior_mean", build.sigma_prior_mean(data, settings)))
        sigma = distribution("sigma", **parameters, dims="marker")
        layout = build._RowLayout.of(data, settings)
        rows = build._Rows(data, settings, layout, theta, sigma, build._covariates(data, settings))
        for integrated, explicit in _TAU_INTEGRATED_KINDS.items():
            rows.kind = np.where(rows.kind == integrated, explicit, rows.kind)
        group_marker = np.array([data.coords["marker"].index(label.split("|", 1)[1])
                                 for label in data.coords["study_marker"]])
        rows.needs_u = np.ones(len(group_marker), dtype=bool)
        u = build._explicit_study_effects(data, rows, tau, group_marker)
        terms = frozenset(rows.kind) | ({"learned_floor"} if layout.learned_floor else set())
        build._row_likelihoods(data, settings, rows, np.arange(len(rows.kind)), u, pt.zeros_like(rows.mean), terms)
    return model


def _effects(data: ModelData, settings: ModelSettings) -> pt.TensorVariable:
    """θ: additive intervention + marker effects with a pooled interaction; temperature apart."""
    n_int = len(data.coords["intervention"])
    blocks = []
    if data.lab_markers:
        mu = pm.Normal("mu", 0.0, settings.grand_mean_sd)
        alpha = pm.Normal("alpha", 0.0, settings.intervention_sd, dims="intervention")
        beta = pm.Normal("beta", 0.0, settings.marker_sd, dims="lab_marker")
        # boundary-avoiding Gamma(2, 2/mean) (Chung et al. 2013): with few cells a HalfNormal
        # puts mass at 0 where the non-centred interaction mixes slowly
        sigma_gamma = pm.Gamma("sigma_gamma", alpha=2.0, beta=2.0 / settings.interaction_sd)
        gamma_z = pm.Normal("gamma_z", 0.0, 1.0, dims=("intervention", "lab_marker"))
        gamma = pm.Deterministic("gamma", sigma_gamma * gamma_z, dims=("intervention", "lab_marker"))
        blocks.append(mu + alpha[:, None] + beta[None, :] + gamma)
    if data.has_temperature:
        mu_temp = pm.Normal("mu_temp", 0.0, settings.temp_mean_sd)
        alpha_temp = pm.Normal("alpha_temp", 0.0, settings.temp_intervention_sd, dims="intervention")
        blocks.append((mu_temp + alpha_temp).reshape((n_int, 1)))
    return pm.Deterministic("theta", pt.concatenate(blocks, axis=1), dims=("intervention", "marker"))
