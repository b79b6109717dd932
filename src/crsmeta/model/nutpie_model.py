"""A nutpie model whose compiled code comes from the disk cache on every fit after the first.

``nutpie.compile_pymc_model`` wraps PyTensor's numba function for the log density in a numba
``cfunc`` that captures the model's data by address, so numba cannot cache it: every fit
re-linked and re-optimised the whole log density, 30-65 s on the bundled model even with a warm
cache. Here the same PyTensor functions (same graph rewrites, same numba code, cached by PyTensor
under a key of the graph) are called through C callbacks that find the data through nutpie's user
data pointer (crsmeta.model.nutpie_callbacks), cached under the same key, so nutpie's threads
evaluate gradients in parallel without the GIL. The rewritten functions themselves are kept
on disk too (crsmeta.model.function_cache). docs/benchmarks.md has the measurements.

The functions are built as nutpie's ``_make_functions`` builds them, with one change: nutpie cuts
the flat parameter vector at constant offsets into constant shapes, so a model with one parameter
more or less (a study left out, a study added) compiled to new code. Here the offsets and shapes
are data (``_free_layout``), and with the model's data also data (crsmeta.model.build), the
compiled code depends on the model's structure alone.

This leans on nutpie 0.16's ``CompiledPyMCModel`` (its fields and how it hands the callbacks to
the sampler) and private helpers (``_rv_dict_to_flat_array_wrapper``,
``_prepare_dims_and_coords``, ``_wrap_with_lock``); tests/test_nutpie_model.py pins their behaviour.

The compiled log density carries none of PyTensor's runtime shape checks (:data:`COMPILE_MODE`):
with the data's lengths data too, they were a third of its nodes, 18% of every gradient and 8%
of a cold compile (docs/benchmarks.md). Each fit checks its data once instead, by evaluating the
log density with numpy before sampling (:func:`check_data_fit`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from math import prod

import arviz as az
import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import xarray as xr
from nutpie.compile_pymc import (
    CompiledPyMCModel, _prepare_dims_and_coords, _rv_dict_to_flat_array_wrapper, _wrap_with_lock,
)
from pymc.backends.arviz import coords_and_dims_for_inferencedata
from pymc.initial_point import make_initial_point_fn
from pymc.pytensorf import compile as compile_pymc
from pytensor.compile.function.types import Function
from pytensor.compile.mode import Mode, get_mode

import crsmeta.model.numba_special  # noqa: F401  (cacheable erfcx, psi and betainc)
from crsmeta.model.function_cache import cached_function, shared_values
from crsmeta.model.nutpie_callbacks import copy_point_callback, data_table, logp_callback
from crsmeta.model.over_draws import evaluate_over_posterior


# PyTensor's own rewrite for its runtime shape checks (``Assert``); PyMC's parameter checks are
# another op (``CheckParameterValue``) and stay
COMPILE_MODE = get_mode("NUMBA").including("local_remove_all_assert")
DATA_CHECK_MODE = Mode(linker="py", optimizer=None)  # numpy, strict on broadcasts and indices


def compile_nutpie_model(model: pm.Model) -> CompiledPyMCModel:
    """The model's log density, gradient and trace expansion for ``nutpie.sample``, as C callbacks
    (crsmeta.model.nutpie_callbacks) that nutpie's threads call without the GIL.

    Initial points are PyMC's support points with the same jitter as ``pm.sample``'s nutpie route.
    """
    initial_point = make_initial_point_fn(
        model=model, jitter_rvs=set(model.free_RVs), return_transformed=True
    )
    functions = numba_functions(model, initial_point)
    names, _, shapes = functions.shape_info
    initial_point_fn = _rv_dict_to_flat_array_wrapper(
        _wrap_with_lock(initial_point),  # chains ask in parallel
        names=names, shapes=shapes,
    )
    shared_data = {name: np.array(value, order="C") for name, value in functions.shared_data.items()}
    logp_inputs = _inputs_of(functions.logp, shared_data)
    dims, coords = _prepare_dims_and_coords(model, functions.shape_info)
    # the model keeps shared_data and the table (its user data) alive while nutpie samples
    return CompiledPyMCModel(
        dims=dims, _coords=coords, _n_dim=functions.n_free,
        _shapes={name: tuple(shape) for name, shape in zip(names, shapes, strict=True)},
        compiled_logp_func=logp_callback(functions.logp, logp_inputs),
        compiled_expand_func=copy_point_callback(),
        initial_point_func=initial_point_fn, shared_data=shared_data, user_data=data_table(logp_inputs),
        n_expanded=functions.n_free, shape_info=functions.shape_info,
        logp_func=functions.logp, expand_func=None,
    )


@dataclasses.dataclass(frozen=True)
class NumbaFunctions:
    """The log density with its gradient of the flat parameter vector; the number of parameters;
    each traced variable's name, slice and shape (nutpie's: the free parameters in the sampler's
    coordinates, the point itself; :func:`add_derived_draws` adds the rest); and this model's
    values of the shared variables the function takes, by name."""

    n_free: int
    logp: Function
    shape_info: tuple[list[str], list[slice], list[tuple]]
    shared_data: dict[str, np.ndarray]


def numba_functions(model: pm.Model, initial_point: Callable[[int], dict[str, np.ndarray]]) -> NumbaFunctions:
    """The model's log density and gradient, rewritten and compiled once per graph
    (crsmeta.model.function_cache); the free parameters' shapes are those of a point from
    ``initial_point`` (PyMC's, in the sampler's coordinates)."""
    start = initial_point(0)
    shapes = {name: np.shape(value) for name, value in start.items()}
    free_names = [model.rvs_to_values[var].name for var in model.free_RVs]
    layout, free_slices, offset = [], [], 0
    for name in free_names:
        size = prod(shapes[name])
        layout += [offset, offset + size, *shapes[name]]
        free_slices.append(slice(offset, offset + size))
        offset += size
    n_free = offset
    free_layout = pytensor.shared(np.array(layout, dtype="int64"), name="_free_layout")
    point = pt.dvector("_unconstrained_point")
    replacements, position = {}, 0
    for var, name in zip(model.free_RVs, free_names, strict=True):
        ndim = len(shapes[name])
        part = point[free_layout[position]:free_layout[position + 1]]
        dims = [free_layout[position + 2 + k] for k in range(ndim)]
        position += 2 + ndim
        value = pt.reshape(part, dims, ndim=ndim) if ndim else part[0]
        replacements[model.rvs_to_values[var]] = value.astype(var.dtype)
    model_logp = model.logp()
    check_data_fit(model, model_logp, start)
    logp_graph = pytensor.clone_replace([model_logp], replacements)  # decides the log density and its gradient

    def logp_and_gradient() -> list:
        rewrites = ["canonicalize", "stabilize"] + ([] if model.check_bounds else ["local_remove_check_parameter"])
        logp = pytensor.graph.rewrite_graph(model_logp, include=rewrites)
        gradient = pt.concatenate([pt.as_tensor(g).ravel() for g in pytensor.grad(logp, list(replacements))])
        return pytensor.clone_replace([logp, gradient], replacements)

    def compile_now() -> Function:
        with model:  # compile_pymc reads check_bounds from the model
            return compile_pymc([point], logp_and_gradient(), mode=COMPILE_MODE)

    logp_function = cached_function(
        [point], logp_graph, compile_now,
        ["log density (canonicalize, stabilize) and gradient", f"check_bounds {model.check_bounds}",
         "without shape checks"])
    return NumbaFunctions(
        n_free=n_free, logp=logp_function,
        shape_info=(free_names, free_slices, [shapes[name] for name in free_names]),
        shared_data=shared_values(logp_function, logp_graph),
    )


def check_data_fit(model: pm.Model, model_logp: pt.TensorVariable, point: dict[str, np.ndarray]) -> None:
    """Stop, before anything is compiled or sampled, where the model's data do not fit its graph
    (lengths that do not broadcast, an index out of range): the compiled log density no longer
    checks them (:data:`COMPILE_MODE`), and would read past an array. ``model_logp`` is evaluated
    by numpy, unrewritten, at ``point`` (in the sampler's coordinates): about 0.1 s."""
    log_density = pytensor.function(model.value_vars, model_logp, mode=DATA_CHECK_MODE, on_unused_input="ignore")
    try:
        log_density(**{value.name: point[value.name] for value in model.value_vars})
    except (ValueError, IndexError) as error:
        raise RuntimeError(f"the model's data do not fit its graph (a crsmeta bug, not the input's): {error}") from error


def _inputs_of(function: Function, shared_data: dict[str, np.ndarray]) -> list[np.ndarray]:
    """``function``'s shared inputs' values, in the order it takes them."""
    return [shared_data[variable.name] for variable in function.get_shared()]


def add_derived_draws(posterior: xr.Dataset, model: pm.Model) -> xr.Dataset:
    """``posterior`` (the free parameters' draws in the sampler's coordinates, as nutpie traces
    them here) with the rest of what PyMC's trace holds: each transformed parameter on its own
    scale and every deterministic, evaluated by numpy over all draws at once
    (crsmeta.model.over_draws). nutpie computed them at every draw through a compiled trace
    expansion instead: 19 s of the numba compile of each model structure (docs/benchmarks.md)."""
    values = [model.rvs_to_values[var] for var in model.free_RVs]
    value_names = {value.name for value in values}
    derived = [var for var in model.unobserved_value_vars if var.name not in value_names]
    results = evaluate_over_posterior(derived, values, posterior)
    coords, dims = coords_and_dims_for_inferencedata(model)
    dataset = az.dict_to_dataset(
        {var.name: result for var, result in zip(derived, results, strict=True)},
        library=None, coords={**coords, "chain": posterior["chain"].values, "draw": posterior["draw"].values},
        dims=dims, attrs=posterior.attrs,
    )
    return xr.merge([posterior, dataset], combine_attrs="override")
