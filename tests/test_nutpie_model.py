"""crsmeta.model.nutpie_model: the log density nutpie samples is the model's, draws are named and
shaped as the model's variables, and a fit with the same seed gives the same draws."""

from __future__ import annotations

import numpy as np
import nutpie
import pymc as pm
import pytensor

from crsmeta.model.build import build_model
from crsmeta.model.data import ModelData
from crsmeta.model.nutpie_model import compile_nutpie_model
from crsmeta.model.sample import DETERMINISTIC_COMPILATION
from crsmeta.model.settings import ModelSettings

SETTINGS = ModelSettings(chains=2, draws=50, tune=50, cores=1, seed=3)


def tiny_model(tiny_changes, tiny_summaries) -> pm.Model:
    return build_model(ModelData.from_tables(tiny_changes, tiny_summaries, SETTINGS), SETTINGS)


def test_log_density_and_gradient_are_the_models(tiny_changes, tiny_summaries) -> None:
    model = tiny_model(tiny_changes, tiny_summaries)
    with pytensor.config.change_flags(**DETERMINISTIC_COMPILATION):
        compiled = compile_nutpie_model(model)
    logp_and_gradient = compiled._make_logp_func()  # what nutpie's chains call, with its data
    point = model.initial_point()
    expected_logp = model.compile_logp()(point)
    gradient_function = model.compile_dlogp()
    x = np.concatenate([np.ravel(point[variable.name]) for variable in model.value_vars])
    logp, gradient = logp_and_gradient(x, **compiled._shared_data)
    np.testing.assert_allclose(logp, expected_logp, rtol=1e-10)
    np.testing.assert_allclose(gradient, gradient_function(point), rtol=1e-8, atol=1e-10)


def test_draws_are_named_shaped_and_repeatable(tiny_changes, tiny_summaries) -> None:
    model = tiny_model(tiny_changes, tiny_summaries)
    with pytensor.config.change_flags(**DETERMINISTIC_COMPILATION):
        compiled = compile_nutpie_model(model)

    def draws():
        return nutpie.sample(compiled, draws=SETTINGS.draws, tune=SETTINGS.tune, chains=2, cores=2,
                             seed=SETTINGS.seed, progress_bar=False).posterior

    first, second = draws(), draws()
    for variable in model.free_RVs + model.deterministics:
        assert first[variable.name].dims == ("chain", "draw", *model.named_vars_to_dims.get(variable.name, ()))
        assert first[variable.name].shape[:2] == (2, SETTINGS.draws)
    for name in first.data_vars:
        np.testing.assert_array_equal(first[name].to_numpy(), second[name].to_numpy(), err_msg=name)
