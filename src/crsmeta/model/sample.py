"""Sampling: NUTS (nutpie or PyMC), and the prior and posterior predictive draws added to its result."""

from __future__ import annotations

import time
import weakref

import arviz as az
import pymc as pm
import pytensor
from arviz.data.base import make_attrs
from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_constants, find_observations
from pymc.util import _get_seeds_per_chain

from crsmeta.model.integrated_tau import draw_integrated_tau, draw_value_names
from crsmeta.model.over_draws import NUMPY_MODE, evaluate_over_posterior
from crsmeta.model.settings import ModelSettings

# PyTensor's numba backend (nutpie's) compiles with LLVM fast-math flags by default: they let
# LLVM reassociate, fuse into FMAs and approximate, so the rounding depends on how the code was
# optimised, and numba optimises an op compiled in this process differently from the same op
# loaded from its on-disk cache. A fit compiled into an empty cache then differed in the last bits
# of its gradients, and so in its draws, from the same fit with a warm cache. Without fast-math
# every compile path computes the same IEEE results (the cache keys include the flag).
DETERMINISTIC_COMPILATION = {"numba__fastmath": False}

# One compiled nutpie model per PyMC model, so a fit that extends its draws does not compile again.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def sample_model(model: pm.Model, settings: ModelSettings) -> az.InferenceData:
    """Posterior (τ drawn afresh where the model integrates it out), sample stats, observed and
    constant data.

    The same seed, settings and data give the same draws (each step gets its own seed derived
    from ``settings.seed``), whether the model was compiled now or loaded from the compile cache.
    """
    with model, pytensor.config.change_flags(**DETERMINISTIC_COMPILATION):
        return draw_integrated_tau(sample_posterior(model, settings), model, settings.seed)


def add_predictive(idata: az.InferenceData, model: pm.Model, settings: ModelSettings) -> az.InferenceData:
    """``idata`` with the prior, prior predictive and posterior predictive groups (seeded from
    ``settings.seed``): what the report's prior-posterior and predictive checks read.

    Both are drawn by numpy, not by compiled code: compiling the model's forward graphs in C took
    ~50 s into an empty compile cache (most of what a fresh clone's main fit spent beyond the
    sampler's own compile), and numpy draws them in ~2 s, about what loading the compiled code
    took. The prior draws (500, one at a time, with :data:`NUMPY_MODE` also for the graphs inside
    PyMC's symbolic random variables, e.g. ZeroSumNormal) leave out the deterministics that only
    carry what τ's draws read (:func:`crsmeta.model.integrated_tau.draw_value_names`); the
    posterior predictive draws all posterior draws at once (crsmeta.model.over_draws)."""
    with model, pytensor.config.change_flags(mode=NUMPY_MODE):
        prior = pm.sample_prior_predictive(draws=settings.prior_draws, random_seed=settings.seed,
                                           var_names=_prior_variables(model))
    idata.extend(prior)
    idata.add_groups(posterior_predictive=_posterior_predictive(idata.posterior, model, settings.seed + 1))
    return idata


def _posterior_predictive(posterior, model: pm.Model, seed: int):
    """One replicate of every observed variable at each posterior draw, as a dataset with the
    model's dims (what ``pm.sample_posterior_predictive`` returns)."""
    observed = model.observed_RVs
    values = evaluate_over_posterior(observed, model.free_RVs, posterior, seed=seed)
    coords, dims = coords_and_dims_for_inferencedata(model)
    coords |= {"chain": posterior["chain"].values, "draw": posterior["draw"].values}
    return az.dict_to_dataset({variable.name: value for variable, value in zip(observed, values, strict=True)},
                              library=pm, coords=coords, dims=dims)


def _prior_variables(model: pm.Model) -> list[str]:
    """The variables of the prior groups: every random variable and deterministic but those that
    carry what τ's draws read."""
    carried = draw_value_names(model)
    variables = model.free_RVs + model.observed_RVs + model.deterministics
    return [variable.name for variable in variables if variable.name not in carried]


def sample_posterior(model: pm.Model, settings: ModelSettings) -> az.InferenceData:
    """NUTS draws with ``observed_data`` and ``constant_data``: the one place the package samples
    (the mocked-sampler tier of the tests replaces it)."""
    if settings.backend == "nutpie":
        return _sample_nutpie(model, settings)
    return pm.sample(
        draws=settings.draws, tune=settings.tune, chains=settings.chains, cores=settings.cores,
        target_accept=settings.target_accept, random_seed=settings.seed, progressbar=False,
        compute_convergence_checks=False, model=model,
    )


def _sample_nutpie(model: pm.Model, settings: ModelSettings) -> az.InferenceData:
    """What ``pm.sample(nuts_sampler="nutpie")`` returns (same seed derivation, same groups), with
    the model compiled by :func:`crsmeta.model.nutpie_model.compile_nutpie_model` and kept for reuse."""
    import nutpie

    from crsmeta.model.nutpie_model import add_derived_draws, compile_nutpie_model

    if model not in _COMPILED:
        _COMPILED[model] = compile_nutpie_model(model)
    started = time.time()
    idata = nutpie.sample(
        _COMPILED[model], draws=settings.draws, tune=settings.tune, chains=settings.chains,
        target_accept=settings.target_accept, seed=_get_seeds_per_chain(settings.seed, 1)[0],
        cores=settings.cores, progress_bar=False, save_warmup=False,  # nothing reads the tuning draws
    )
    sampling_time = time.time() - started
    idata.posterior = add_derived_draws(idata.posterior, model)
    idata.posterior.attrs.update(make_attrs(
        {"sampling_time": sampling_time, "tuning_steps": settings.tune}, library=nutpie
    ))
    coords, dims = coords_and_dims_for_inferencedata(model)
    data_groups = {
        "constant_data": az.dict_to_dataset(find_constants(model), library=pm, coords=coords, dims=dims, default_dims=[]),
        "observed_data": az.dict_to_dataset(find_observations(model), library=pm, coords=coords, dims=dims, default_dims=[]),
    }
    idata.add_groups(data_groups, coords=coords, dims=dims)
    return idata
