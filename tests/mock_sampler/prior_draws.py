"""TEST ONLY: a stand-in for the package's NUTS call (``crsmeta.model.sample.sample_posterior``) that returns the model's prior draws shaped like a
posterior (the mocked-sampler tier; the idea of ``pymc.testing.mock_sample``, as CausalPy's test
suite uses it).

The draws are NOT a posterior. They serve tests of everything downstream of sampling (effects and
diagnostics tables, stamping, netCDF, report, workflow glue); a test about an estimate, a
convergence figure or the sampler's reproducibility samples real chains. Every such fit says so in
its posterior's ``sampler`` attribute.
"""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pymc as pm
import xarray as xr

MOCK_LABEL = "TEST MOCK: prior draws standing in for a posterior (tests/mock_sampler)"


def prior_draws_as_posterior(draws: int = 1000, *, chains: int = 4, random_seed=None, model=None,
                             idata_kwargs: dict | None = None, **ignored) -> az.InferenceData:
    """What :func:`pymc.sample` returns, from prior draws.

    ``posterior``: ``chains × draws`` independent prior draws of every free variable and
    deterministic; the model's ``observed_data`` and ``constant_data``; ``sample_stats`` with no
    divergences and made-up energies (so divergence counts and E-BFMI can be computed). Seeded by
    ``random_seed``; tuning and sampler options (``tune``, ``target_accept``, ``nuts_sampler``, …)
    are ignored. The log-likelihood is added when ``idata_kwargs`` asks for it.
    """
    model = pm.modelcontext(model)
    names = [variable.name for variable in model.free_RVs + model.deterministics]
    with warnings.catch_warnings():  # prior draws ignore the model's Potentials (censored terms): fine here
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        sampled = pm.sample_prior_predictive(draws=chains * draws, model=model, var_names=names,
                                             random_seed=random_seed)
    prior = sampled.prior
    posterior = xr.Dataset(
        {name: (("chain", "draw", *values.dims[2:]), values.to_numpy().reshape(chains, draws, *values.shape[2:]))
         for name, values in prior.data_vars.items()},
        coords={"chain": np.arange(chains), "draw": np.arange(draws),
                **{dim: prior.coords[dim].to_numpy() for dim in prior.dims if dim not in ("chain", "draw")}},
        attrs={"sampler": MOCK_LABEL},
    )
    shape = (chains, draws)
    sample_stats = xr.Dataset(
        {"diverging": (("chain", "draw"), np.zeros(shape, dtype=bool)),
         "energy": (("chain", "draw"), np.random.default_rng(random_seed).standard_normal(shape))},
        coords={"chain": posterior["chain"], "draw": posterior["draw"]},
        attrs={"sampler": MOCK_LABEL},
    )
    groups = {"posterior": posterior, "sample_stats": sample_stats}
    groups |= {group: sampled[group] for group in ("observed_data", "constant_data") if group in sampled.groups()}
    idata = az.InferenceData(**groups)
    if (idata_kwargs or {}).get("log_likelihood"):
        pm.compute_log_likelihood(idata, model=model, progressbar=False)
    return idata


def prior_draws_for_settings(model, settings) -> az.InferenceData:
    """:func:`prior_draws_as_posterior` called as ``crsmeta.model.sample.sample_posterior`` is."""
    return prior_draws_as_posterior(settings.draws, chains=settings.chains, random_seed=settings.seed, model=model)
