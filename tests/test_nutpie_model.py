"""crsmeta.model.nutpie_model: the log density nutpie samples is the model's, draws are named and
shaped as the model's variables, and a fit with the same seed gives the same draws."""

from __future__ import annotations

import ctypes

import numpy as np
import nutpie
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import xarray as xr
from pymc.distributions.dist_math import check_parameters
from pymc.initial_point import make_initial_point_fn
from pymc.logprob.utils import ParameterValueError
from pymc.pytensorf import compile as compile_pymc
from pytensor.graph.traversal import graph_inputs
from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS
from pytensor.raise_op import Assert

from conftest import change_row, model_data

from crsmeta.model.build import build_model
from crsmeta.model.nutpie_model import COMPILE_MODE, add_derived_draws, compile_nutpie_model, numba_functions
from crsmeta.model.sample import DETERMINISTIC_COMPILATION
from crsmeta.model.settings import ModelSettings
from typed_tables import change_frame, typed_changes, typed_summaries


@pytest.fixture
def tiny_changes(tiny_changes: pd.DataFrame) -> pd.DataFrame:
    """conftest's changes typed by their contract, as the model reads them."""
    return typed_changes(tiny_changes)


@pytest.fixture
def tiny_summaries(tiny_summaries: pd.DataFrame) -> pd.DataFrame:
    """conftest's summaries typed by their contract, as the changes stage reads them."""
    return typed_summaries(tiny_summaries)


SETTINGS = ModelSettings(chains=2, draws=50, tune=50, cores=1, seed=3)
# PyMC's own functions to compare with, in PyTensor's Python mode: no C compile of the reference
# (minutes with an empty compile cache), and an implementation independent of the numba code
REFERENCE_MODE = "FAST_COMPILE"


def tiny_model(tiny_changes, tiny_summaries) -> pm.Model:
    return build_model(model_data(tiny_changes, tiny_summaries, SETTINGS), SETTINGS)


def call_logp(compiled, x: np.ndarray) -> tuple[int, float, np.ndarray]:
    """What nutpie's chains do: call the C callback with the point and the model's user data."""
    gradient, logp = np.zeros_like(x), np.zeros(())
    pointer = ctypes.POINTER(ctypes.c_double)
    code = compiled.compiled_logp_func.ctypes(
        x.size, x.ctypes.data_as(pointer), gradient.ctypes.data_as(pointer), logp.ctypes.data_as(pointer),
        compiled.user_data.ctypes.data)
    return code, float(logp), gradient


def call_expand(compiled, x: np.ndarray) -> tuple[int, np.ndarray]:
    values = np.zeros(compiled.n_expanded)
    pointer = ctypes.POINTER(ctypes.c_double)
    code = compiled.compiled_expand_func.ctypes(
        x.size, values.size, x.ctypes.data_as(pointer), values.ctypes.data_as(pointer), compiled.user_data.ctypes.data)
    return code, values


def flat_point(model: pm.Model, point: dict) -> np.ndarray:
    return np.concatenate([np.ravel(point[variable.name]) for variable in model.value_vars])


def test_log_density_gradient_and_expansion_are_the_models(tiny_changes, tiny_summaries) -> None:
    model = tiny_model(tiny_changes, tiny_summaries)
    with pytensor.config.change_flags(**DETERMINISTIC_COMPILATION):
        compiled = compile_nutpie_model(model)
    point = model.initial_point()
    x = flat_point(model, point)
    code, logp, gradient = call_logp(compiled, x)
    assert code == 0
    np.testing.assert_allclose(logp, model.compile_logp(mode=REFERENCE_MODE)(point), rtol=1e-10)
    np.testing.assert_allclose(gradient, model.compile_dlogp(mode=REFERENCE_MODE)(point), rtol=1e-8, atol=1e-10)
    code, values = call_expand(compiled, x)
    assert code == 0
    np.testing.assert_array_equal(values, x)  # the trace holds the free parameters; add_derived_draws the rest


def test_derived_draws_are_the_models_parameters_and_deterministics(tiny_changes, tiny_summaries) -> None:
    """add_derived_draws computes, from the free parameters' draws in the sampler's coordinates,
    every transformed parameter on its own scale and every deterministic, as PyMC's functions do
    at each draw, with PyMC's names and dimensions."""
    model = tiny_model(tiny_changes, tiny_summaries)
    rng = np.random.default_rng(8)
    points = [{name: value + 0.3 * rng.standard_normal(np.shape(value)) for name, value in model.initial_point().items()}
              for _ in range(6)]
    free = xr.Dataset({value.name: (("chain", "draw", *[f"{value.name}_dim_{k}" for k in range(value.ndim)]),
                                    np.reshape([point[value.name] for point in points], (2, 3, *np.shape(points[0][value.name]))))
                       for value in model.value_vars})
    posterior = add_derived_draws(free.assign_coords(chain=[0, 1], draw=[0, 1, 2]), model)
    derived = [variable for variable in model.unobserved_value_vars if variable.name not in free]
    reference = model.compile_fn(derived, inputs=model.value_vars, on_unused_input="ignore", mode=REFERENCE_MODE)
    for index, point in enumerate(points):
        for variable, expected in zip(derived, reference(point), strict=True):
            drawn = posterior[variable.name].isel(chain=index // 3, draw=index % 3).to_numpy()
            np.testing.assert_allclose(drawn, expected, rtol=1e-12, atol=1e-14, err_msg=variable.name)
    for variable in model.free_RVs + model.deterministics:
        assert posterior[variable.name].dims == ("chain", "draw", *model.named_vars_to_dims.get(variable.name, ()))


def test_the_compiled_log_density_has_no_shape_checks_and_the_data_are_checked_first(tiny_changes, tiny_summaries):
    """The compiled code carries none of PyTensor's runtime shape checks (COMPILE_MODE); data
    whose lengths do not fit the graph (here the case rows' marker index one element short) are
    stopped before anything is compiled, not read past by the compiled code."""
    model = tiny_model(tiny_changes, tiny_summaries)
    with pytensor.config.change_flags(**DETERMINISTIC_COMPILATION):
        compiled = compile_nutpie_model(model)
    assert not any(isinstance(node.op, Assert) for node in compiled.logp_func.maker.fgraph.apply_nodes)
    index = next(variable for variable in graph_inputs([model.logp()]) if variable.name == "case_marker_idx")
    index.set_value(index.get_value()[:-1])
    with pytest.raises(RuntimeError, match="do not fit its graph"):
        compile_nutpie_model(model)


def test_parameter_checks_stay_in_the_compile_mode() -> None:
    """Only PyTensor's shape checks are removed: PyMC's parameter checks (another op) stay, both
    the kind PyMC turns into −inf and the kind that must raise."""
    scale = pytensor.shared(-1.0, name="scale")
    with pm.Model() as model:
        pm.Normal("x", 0.0, scale)
        log_density = compile_pymc(model.value_vars, model.logp(), mode=COMPILE_MODE)
    assert log_density(0.0) == -np.inf
    x = pt.dscalar("x")
    checked = check_parameters(x, scale > 0, msg="scale > 0", can_be_replaced_by_ninf=False)
    with pytest.raises(ParameterValueError, match="scale > 0"):
        compile_pymc([x], checked, mode=COMPILE_MODE)(1.0)


def test_draws_are_named_shaped_and_repeatable(tiny_changes, tiny_summaries) -> None:
    model = tiny_model(tiny_changes, tiny_summaries)
    with pytensor.config.change_flags(**DETERMINISTIC_COMPILATION):
        compiled = compile_nutpie_model(model)

    def draws(cores: int):
        return add_derived_draws(nutpie.sample(compiled, draws=SETTINGS.draws, tune=SETTINGS.tune, chains=2, cores=cores,
                                               seed=SETTINGS.seed, progress_bar=False).posterior, model)

    # the same draws on one thread: the workflow gives the main fit more threads than the others
    first, second = draws(2), draws(1)
    for variable in model.free_RVs + model.deterministics:
        assert first[variable.name].dims == ("chain", "draw", *model.named_vars_to_dims.get(variable.name, ()))
        assert first[variable.name].shape[:2] == (2, SETTINGS.draws)
    for name in first.data_vars:
        np.testing.assert_array_equal(first[name].to_numpy(), second[name].to_numpy(), err_msg=name)


def test_other_data_and_parameter_counts_compile_to_the_same_code(tiny_changes, tiny_summaries) -> None:
    """Leaving a study out or adding one changes the data and the number of parameters, not the
    compiled code, as long as the kinds of row stay (here a second explicit study effect and
    censored change): the log density's cache key stays, so the fit loads the code compiled
    before. The first row of a new kind (the first censored change) is new code (docs/model.md)."""

    def censored(study: str, intervention: str):
        return change_frame([change_row(study, 12, intervention, "IL-6", None, lower=-np.inf, upper=-2.0,
                                        censoring="left")])

    uncensored = tiny_changes[tiny_changes["censoring"] == "none"]
    one_explicit = pd.concat([tiny_changes, censored("s1", "tocilizumab")], ignore_index=True)
    two_explicit = pd.concat([one_explicit, censored("s2", "plasma_exchange")], ignore_index=True)
    sizes, keys = [], []
    for changes in (one_explicit, two_explicit, uncensored):
        model = build_model(model_data(changes, tiny_summaries, SETTINGS), SETTINGS)
        with pytensor.config.change_flags(**DETERMINISTIC_COMPILATION):
            functions = numba_functions(model, make_initial_point_fn(model=model, return_transformed=True))
        n_dim, logp_function = functions.n_free, functions.logp
        sizes.append((n_dim, len(changes)))
        keys.append(CACHED_SRC_FUNCTIONS.get(logp_function.vm.jit_fn.py_func))
    assert sizes[0][0] < sizes[1][0] and sizes[0][1] < sizes[1][1]
    assert keys[0] is not None and keys[0] == keys[1]
    assert keys[2] is not None and keys[2] != keys[0]


def _log_density_key(model: pm.Model, monkeypatch: pytest.MonkeyPatch) -> str:
    """The disk cache's key of ``model``'s log density and gradient (crsmeta.model.function_cache),
    without compiling: the first cached_function call is the log density's."""
    from crsmeta.model import function_cache, nutpie_model

    class KeyTaken(Exception):
        pass

    def take_key(inputs, graph, compile_function, context=()):
        raise KeyTaken(function_cache.graph_key(inputs, graph, context))

    monkeypatch.setattr(nutpie_model, "cached_function", take_key)
    with pytest.raises(KeyTaken) as taken, pytensor.config.change_flags(**DETERMINISTIC_COMPILATION):
        numba_functions(model, make_initial_point_fn(model=model, return_transformed=True))
    return str(taken.value)


def test_analyses_that_leave_rows_out_compile_to_the_main_models_code(tiny_changes, tiny_summaries, monkeypatch):
    """Leaving out t1, the only study of two interventions and a population, keeps the main
    model's levels and terms (crsmeta.model.data.ModelData.before_filters): one compiled log
    density serves both. Leaving out c1 leaves the temperature rows of one study alone in their
    marker, whose τ is then integrated out: a term of its own, new code."""
    def key(settings: ModelSettings) -> str:
        return _log_density_key(build_model(model_data(tiny_changes, tiny_summaries, settings), settings), monkeypatch)

    main = key(SETTINGS)
    assert key(SETTINGS.replace(exclude_studies=("t1",))) == main
    assert key(SETTINGS.replace(exclude_studies=("c1",))) != main


def test_a_study_of_a_new_intervention_compiles_to_the_same_code(tiny_changes, tiny_summaries, monkeypatch):
    """A living review's next study often brings an intervention the model has not seen. Its level
    is data (θ's parts have its dimension as a shared length), so with rows of kinds the model
    already has (here a case series of two IL-6 changes, as s1 and s2 are) the fit loads the code
    compiled before; a new marker is new code (its τ, σ and the rows' terms are laid out by marker)."""
    def model(changes: pd.DataFrame) -> pm.Model:
        return build_model(model_data(changes, tiny_summaries, SETTINGS), SETTINGS)

    def with_series(marker: str) -> pd.DataFrame:
        series = change_frame([change_row("s3", patient, "anakinra", marker, change) for patient, change in ((1, -0.9), (2, -1.4))])
        return pd.concat([tiny_changes, series], ignore_index=True)

    main = _log_density_key(model(tiny_changes), monkeypatch)
    new_intervention = model(with_series("IL-6"))
    assert "anakinra" in new_intervention.coords["intervention"]
    assert _log_density_key(new_intervention, monkeypatch) == main
    assert _log_density_key(model(with_series("CRP")), monkeypatch) != main
