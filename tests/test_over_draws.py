"""Graphs evaluated, and random variables drawn, at every posterior draw at once by numpy
(crsmeta.model.over_draws): what a fit computes from its draws without compiling anything."""

from __future__ import annotations

import arviz as az
import numpy as np
import pymc as pm

from crsmeta.model.over_draws import DRAWS_PER_BLOCK, evaluate_over_posterior

N_ROWS = 40
N_DRAWS = DRAWS_PER_BLOCK + 7  # a second, shorter block


def _model_and_posterior() -> tuple[pm.Model, az.InferenceData]:
    """SYNTHETIC: y[i] ~ Normal(μ, σ) observed, and posterior draws of μ and σ (made up)."""
    rng = np.random.default_rng(0)
    with pm.Model() as model:
        mu = pm.Normal("mu")
        sigma = pm.HalfNormal("sigma")
        pm.Normal("y", mu, sigma, observed=rng.normal(size=N_ROWS))
    posterior = az.from_dict(posterior={"mu": rng.normal(size=(2, N_DRAWS)),
                                        "sigma": rng.uniform(0.5, 2.0, size=(2, N_DRAWS))})
    return model, posterior


def test_the_posterior_predictive_draws_once_per_posterior_draw_from_its_own_parameters():
    model, idata = _model_and_posterior()
    [y] = evaluate_over_posterior(model.observed_RVs, model.free_RVs, idata.posterior, seed=3)
    assert y.shape == (2, N_DRAWS, N_ROWS)
    standardised = (y - idata.posterior["mu"].to_numpy()[..., None]) / idata.posterior["sigma"].to_numpy()[..., None]
    assert abs(standardised.mean()) < 0.02 and abs(standardised.std() - 1.0) < 0.02


def test_the_posterior_predictive_is_seeded_and_no_block_of_draws_repeats_another():
    model, idata = _model_and_posterior()
    [first] = evaluate_over_posterior(model.observed_RVs, model.free_RVs, idata.posterior, seed=3)
    [again] = evaluate_over_posterior(model.observed_RVs, model.free_RVs, idata.posterior, seed=3)
    [other] = evaluate_over_posterior(model.observed_RVs, model.free_RVs, idata.posterior, seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    noise = (first - idata.posterior["mu"].to_numpy()[..., None]) / idata.posterior["sigma"].to_numpy()[..., None]
    flat = noise.reshape(-1, N_ROWS)  # chain by chain: block 0 starts at draw 0, block 1 at DRAWS_PER_BLOCK
    assert not np.allclose(flat[0], flat[DRAWS_PER_BLOCK])


def test_a_replicate_is_drawn_anew_at_every_draw_whichever_of_its_parameters_the_draws_move():
    """With a size of its own, y ~ Normal(0, σ) has only its second parameter batched (PyTensor's
    vectorisation then fails), and w ~ Normal(0, 1) none: each is still one draw per posterior draw."""
    rng = np.random.default_rng(1)
    with pm.Model() as model:
        sigma = pm.HalfNormal("sigma")
        pm.Normal("y", 0.0, sigma, observed=rng.normal(size=N_ROWS), shape=N_ROWS)
        pm.Normal("w", 0.0, 1.0, observed=rng.normal(size=N_ROWS))
    sigma_draws = rng.uniform(0.5, 2.0, size=(1, N_DRAWS))
    posterior = az.from_dict(posterior={"sigma": sigma_draws}).posterior
    y, w = evaluate_over_posterior(model.observed_RVs, model.free_RVs, posterior, seed=5)
    assert y.shape == w.shape == (1, N_DRAWS, N_ROWS)
    assert abs((y / sigma_draws[..., None]).std() - 1.0) < 0.02
    assert abs(w.std() - 1.0) < 0.02 and not np.allclose(w[0, 0], w[0, 1])
