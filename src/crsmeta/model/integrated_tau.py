"""Draws of τ[marker] where the model's log density integrates τ out.

A marker whose only row is a summary row with a learned SE, or whose rows are all one study's
exact case changes, has its τ integrated out of that row or of those rows' mean
(:func:`crsmeta.model.build._tau_integrated_rows`,
:func:`crsmeta.model.build._tau_integrated_case_rows`): the sampler then sees τ[marker] under its
prior alone. Its posterior draws are replaced here, after sampling, by one draw each from τ's
conditional posterior given that draw's other parameters, p(τ | θ, σ, y) ∝ p(τ) L(θ, σ, τ), on the
grid the integral used. The result is a draw of the joint posterior, which is what effects,
reweighting and calibration read.
"""

from __future__ import annotations

import dataclasses

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt

from crsmeta.model.build import INTEGRATED_TAU_DRAW_PREFIXES, IntegratedTau, integrated_tau

# Its own stream of the fit's seed: the draws do not depend on how NUTS used the seed.
_RNG_STREAM = 7_171
# Where τ is drawn: the integral's range at a fifth of its spacing (the draws are made once per
# draw, not per gradient, so they can afford it; at the integral's own spacing, 0.5, the drawn τ
# were off by a Kolmogorov–Smirnov distance of 0.026 on the test's 4000 draws).
DRAW_LOG_GRID_STEP = 0.1
# The grid weights are tens of millions of terms (draws × rows × τ grid × se² grid): numba
# compiles them into the compile cache and, unlike PyTensor's C backend, is there without a C
# compiler (without one, PyTensor's fused Python loops took minutes over a few hundred draws).
_GRID_MODE = "NUMBA"
# Draws per evaluation of the grid weights (draws × rows × τ grid × se² grid values at once).
_DRAWS_PER_BLOCK = 250


def draw_integrated_tau(idata: az.InferenceData, model: pm.Model, seed: int) -> az.InferenceData:
    """``idata`` with τ's draws replaced, for each marker whose τ the model integrates out, by
    draws from its conditional posterior (nothing changes when there is none), and without the
    deterministics that carried what those draws need."""
    posterior = idata.posterior
    values = posterior["tau"].values.copy()
    # one stream per kind of row, numbered by kind: a kind's draws do not depend on the other's rows
    for integrated in integrated_tau(model):
        if integrated.markers.size == 0:  # a kind of row the model has, but not this analysis
            continue
        stream = INTEGRATED_TAU_DRAW_PREFIXES.index(integrated.prefix)
        log_weights, log_grid = _log_weights(integrated, posterior)
        tau = conditional_draws(log_weights, log_grid, np.random.default_rng([seed, _RNG_STREAM, stream]))
        values[..., integrated.markers] = tau.reshape(*values.shape[:2], -1)
    posterior["tau"].values = values
    if "tau_log__" in posterior:  # the sampler's copy in its own coordinates
        posterior["tau_log__"].values = np.log(values)
    drop_draw_values(posterior, model)
    return idata


def drop_draw_values(group, model: pm.Model) -> None:
    """Delete from ``group`` (the posterior) the deterministics that carry what τ's draws read:
    nothing else reads them (the prior draws leave them out)."""
    for name in draw_value_names(model):
        del group[name]


def draw_value_names(model: pm.Model) -> set[str]:
    """The names of the deterministics that carry what τ's draws read (IntegratedTau.draw_values)."""
    return {name for integrated in integrated_tau(model) for name in integrated.draw_values()}


def _log_weights(integrated: IntegratedTau, posterior) -> tuple[np.ndarray, np.ndarray]:
    """The grid's log weights at every draw (draws × rows × grid), and log τ at the grid points,
    from the rows' values recorded with the draws, evaluated for blocks of draws at once."""
    n_draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    recorded = {name.removeprefix(integrated.prefix): posterior[name].values.reshape(n_draws, -1)
                for name in integrated.draw_values()}
    # y and the prior scale are data, the same in every draw: taken from the first
    y, scale = recorded.pop("y")[0], recorded.pop("scale")[0][:, None]
    inputs = {field: pt.matrix(field) for field in recorded}  # the rows' DRAW_FIELDS
    batched = dataclasses.replace(integrated.rows, y=pt.as_tensor(y), **inputs)
    log_grid = integrated.log_grid(DRAW_LOG_GRID_STEP)
    weights = dataclasses.replace(integrated, rows=batched, scale=pt.as_tensor(scale)).log_weight(log_grid)
    function = pytensor.function(list(inputs.values()), weights, mode=_GRID_MODE)
    blocks = [function(*(values[start:start + _DRAWS_PER_BLOCK] for values in recorded.values()))
              for start in range(0, n_draws, _DRAWS_PER_BLOCK)]
    return np.concatenate(blocks), np.log(scale) + log_grid


def conditional_draws(log_weights: np.ndarray, log_grid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One τ per (draw, row) from the density whose values at the points ``log_grid`` (rows,
    grid) of log τ are ∝ exp(``log_weights``) (…, rows, grid), linear in log τ between points:
    the density the trapezoid rule integrates. A cell by its area, then within it by inverting
    the linear density's CDF."""
    weights = np.exp(log_weights - log_weights.max(axis=-1, keepdims=True))
    left, right = weights[..., :-1], weights[..., 1:]
    cumulative = np.cumsum(left + right, axis=-1)
    uniform = rng.random(cumulative.shape[:-1])[..., None] * cumulative[..., -1:]
    cell = np.minimum((cumulative < uniform).sum(axis=-1, keepdims=True), cumulative.shape[-1] - 1)
    a, b = (np.take_along_axis(side, cell, axis=-1)[..., 0] for side in (left, right))
    u = rng.random(a.shape)
    # F(t) = (a·t + (b − a)·t²/2)/((a + b)/2) = u on t in [0, 1], in the form stable at b = a
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(a + b > 0, u * (a + b) / (a + np.sqrt(a**2 + (b - a) * u * (a + b))), u)
    start = np.take_along_axis(np.broadcast_to(log_grid, log_weights.shape), cell, axis=-1)[..., 0]
    return np.exp(start + fraction * (log_grid[..., 1] - log_grid[..., 0]))
