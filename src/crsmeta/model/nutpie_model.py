"""A nutpie model whose compiled code comes from the disk cache on every fit after the first.

``nutpie.compile_pymc_model`` wraps PyTensor's numba function for the log density in a numba
``cfunc`` that captures the model's data by address, so numba cannot cache it: every fit
re-linked and re-optimised the whole log density, 30-65 s on the bundled model even with a warm
cache. Here the same PyTensor functions (same graph rewrites, same numba code) are called from
Python through nutpie's ``from_pyfunc`` instead. Their numba code is cached by PyTensor under a
key of the graph, and a thin wrapper compiled with ``nogil=True`` (cached under the same key) lets
the chains' threads evaluate gradients in parallel. A warm compile is then the graph rewrites
alone. docs/benchmarks.md has the measurements.

This leans on private helpers of nutpie 0.16 (``_make_functions``, ``_prepare_dims_and_coords``,
``_wrap_with_lock``)
and PyTensor's numba cache registry; tests/test_nutpie_model.py pins their behaviour.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pymc as pm
from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords, _wrap_with_lock
from nutpie.compiled_pyfunc import PyFuncModel, from_pyfunc
from pymc.initial_point import make_initial_point_fn
from pytensor.compile.function.types import Function
from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

import crsmeta.model.numba_erfcx  # noqa: F401  (a cacheable erfcx for censored rows)


def compile_nutpie_model(model: pm.Model) -> PyFuncModel:
    """The model's log density, gradient and trace expansion for ``nutpie.sample``.

    Initial points are PyMC's support points with the same jitter as ``pm.sample``'s nutpie route.
    """
    initial_point = make_initial_point_fn(
        model=model, jitter_rvs=set(model.free_RVs), return_transformed=True
    )
    n_dim, _, logp_function, expand_function, initial_point_fn, shape_info = _make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=False,
        pymc_initial_point_fn=_wrap_with_lock(initial_point),  # chains ask in parallel
    )
    names, _, shapes = shape_info
    logp, logp_shared = _released_gil(logp_function, "logp"), _shared_names(logp_function)
    expand, expand_shared = _released_gil(expand_function, "expand"), _shared_names(expand_function)
    shared_data = {
        variable.name: np.asarray(variable.get_value())
        for function in (logp_function, expand_function) for variable in function.get_shared()
    }

    def make_logp_fn() -> Callable:
        def logp_and_gradient(x: np.ndarray, **shared: np.ndarray) -> tuple[float, np.ndarray]:
            value, gradient = logp(x, *[shared[name] for name in logp_shared])
            return float(value), gradient

        return logp_and_gradient

    def make_expand_fn(seed1: int, seed2: int, chain: int) -> Callable:
        def expand_draw(x: np.ndarray, **shared: np.ndarray) -> dict[str, np.ndarray]:
            values = expand(x, *[shared[name] for name in expand_shared])
            return {name: np.asarray(value, dtype="float64").reshape(shape)
                    for name, value, shape in zip(names, values, shapes, strict=True)}

        return expand_draw

    dims, coords = _prepare_dims_and_coords(model, shape_info)
    return from_pyfunc(
        ndim=n_dim, make_logp_fn=make_logp_fn, make_expand_fn=make_expand_fn,
        make_initial_point_fn=initial_point_fn, expanded_dtypes=[np.dtype("float64")] * len(names),
        expanded_shapes=shapes, expanded_names=names, shared_data=shared_data, dims=dims, coords=coords,
    )


def _released_gil(function: Function, name: str) -> Callable:
    """PyTensor's numba function behind ``function``, called through a wrapper that releases the
    GIL. When PyTensor cached the function under a key of its graph, the wrapper is cached under
    the same key; a graph with an op numba cannot cache is compiled in every process."""
    import numba

    jitted = function.vm.jit_fn
    graph_key = CACHED_SRC_FUNCTIONS.get(jitted.py_func)
    wrapper = compile_numba_function_src(
        f"def {name}_nogil(*args):\n    return jitted(*args)\n",
        f"{name}_nogil",
        global_env={"__name__": __name__, "jitted": jitted},
        cache_key=None if graph_key is None else f"{graph_key}_nogil",
    )
    return numba.njit(wrapper, cache=graph_key is not None, nogil=True, fastmath=False)


def _shared_names(function: Function) -> list[str]:
    return [variable.name for variable in function.get_shared()]
