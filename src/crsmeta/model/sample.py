"""Sampling: prior predictive, NUTS (nutpie or PyMC) and posterior predictive in one object."""

from __future__ import annotations

import arviz as az
import pymc as pm
import pytensor

from crsmeta.model.settings import ModelSettings

# PyTensor's numba backend (nutpie's) compiles with LLVM fast-math flags by default: they let
# LLVM reassociate, fuse into FMAs and approximate, so the rounding depends on how the code was
# optimised, and numba optimises an op compiled in this process differently from the same op
# loaded from its on-disk cache. A fit compiled into an empty cache then differed in the last bits
# of its gradients, and so in its draws, from the same fit with a warm cache. Without fast-math
# every compile path computes the same IEEE results (the cache keys include the flag).
DETERMINISTIC_COMPILATION = {"numba__fastmath": False}


def sample_model(model: pm.Model, settings: ModelSettings) -> az.InferenceData:
    """Posterior, sample stats, observed and constant data, prior and both predictives.

    The same seed, settings and data give the same draws (each step gets its own seed derived
    from ``settings.seed``), whether the model was compiled now or loaded from the compile cache.
    """
    with model, pytensor.config.change_flags(**DETERMINISTIC_COMPILATION):
        prior = pm.sample_prior_predictive(draws=settings.prior_draws, random_seed=settings.seed)
        idata = pm.sample(**_sampler_kwargs(settings))
        idata.extend(prior)
        pm.sample_posterior_predictive(
            idata, extend_inferencedata=True, random_seed=settings.seed + 1, progressbar=False
        )
    return idata


def _sampler_kwargs(settings: ModelSettings) -> dict:
    common = dict(
        draws=settings.draws, tune=settings.tune, chains=settings.chains,
        target_accept=settings.target_accept, random_seed=settings.seed, progressbar=False,
    )
    if settings.backend == "nutpie":
        # nutpie ignores pm.sample(cores=...): its thread count goes through nuts_sampler_kwargs
        return common | {"nuts_sampler": "nutpie", "nuts_sampler_kwargs": {"cores": settings.cores}}
    return common | {"nuts_sampler": "pymc", "cores": settings.cores, "compute_convergence_checks": False}
