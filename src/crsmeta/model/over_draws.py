"""Graphs of the model's parameters evaluated at every posterior draw at once, by numpy.

What a fit computes from its draws afterwards (each study's log-likelihood, the deterministics
nutpie's trace leaves out) is a PyTensor graph of the parameters. Compiled (C or numba) and
called draw by draw, such a graph cost a compile per model structure: 21 s for the per-study
log-likelihood of the bundled main model into an empty cache, 19 s for its deterministics
(docs/benchmarks.md). Vectorised over the draws instead, numpy runs each operation once per block
of draws, and nothing is compiled. Only PyTensor's stabilising rewrites run, for logs of small
numbers; its fusion of elementwise operations is left out, as numpy would run a fused loop one
element at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytensor
import pytensor.tensor as pt
import xarray as xr
from pytensor.compile.mode import Mode
from pytensor.graph.basic import Variable
from pytensor.graph.replace import vectorize_graph
from pytensor.graph.rewriting.db import RewriteDatabaseQuery

NUMPY_MODE = Mode(linker="py", optimizer=RewriteDatabaseQuery(include=["stabilize"]))
DRAWS_PER_BLOCK = 200  # bounds the memory of a block's intermediate arrays (draws × rows)


def evaluate_over_posterior(outputs: Sequence[Variable], inputs: Sequence[Variable],
                            posterior: xr.Dataset) -> list[np.ndarray]:
    """Each of ``outputs`` (graphs of ``inputs``, whose draws ``posterior`` holds under their
    names) at every draw, as an array (chain, draw, …) (an output that depends on no input is
    repeated at every draw)."""
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    draws = [_draws_along_one_axis(posterior[variable.name]) for variable in inputs]
    return [values.reshape(n_chains, n_draws, *values.shape[1:])
            for values in _evaluate_over_draws(outputs, inputs, draws)]


def _evaluate_over_draws(outputs: Sequence[Variable], inputs: Sequence[Variable],
                         draws: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Each of ``outputs`` at every draw: ``draws[i]`` holds input i's values along its first
    axis, and so does each result."""
    batched = {variable: pt.tensor(name=variable.name, dtype=variable.dtype, shape=(None, *variable.type.shape))
               for variable in inputs}
    vectorised = vectorize_graph(list(outputs), replace=batched)
    function = pytensor.function(list(batched.values()), vectorised, mode=NUMPY_MODE, on_unused_input="ignore")
    n_draws = len(draws[0])
    blocks = []
    for start in range(0, n_draws, DRAWS_PER_BLOCK):
        values = function(*[draw[start:start + DRAWS_PER_BLOCK] for draw in draws])
        size = min(DRAWS_PER_BLOCK, n_draws - start)
        blocks.append([value if new.ndim > old.ndim else np.broadcast_to(value, (size, *np.shape(value)))
                       for value, new, old in zip(values, vectorised, outputs, strict=True)])
    return [np.concatenate(parts) for parts in zip(*blocks, strict=True)]


def _draws_along_one_axis(variable: xr.DataArray) -> np.ndarray:
    """A posterior variable's values with chain and draw flattened into the first axis (chain by
    chain), also where it has no elements (xarray cannot stack those)."""
    values = variable.transpose("chain", "draw", ...).to_numpy()
    return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])
