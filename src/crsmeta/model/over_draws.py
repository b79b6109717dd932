"""Graphs of the model's parameters evaluated at every posterior draw at once, by numpy.

What a fit computes from its draws afterwards (each study's log-likelihood, the deterministics
nutpie's trace leaves out, the posterior predictive draws) is a PyTensor graph of the
parameters. Compiled (C or numba) and called draw by draw, such a graph cost a compile per model
structure: 21 s for the per-study log-likelihood of the bundled main model into an empty cache,
19 s for its deterministics, 4 s in C for its posterior predictive draws
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
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable
from pytensor.graph.replace import vectorize_graph
from pytensor.graph.rewriting.db import RewriteDatabaseQuery
from pytensor.graph.traversal import ancestors
from pytensor.tensor.random.op import RandomVariable
from pytensor.tensor.random.type import RandomGeneratorType
from pytensor.tensor.random.utils import compute_batch_shape
from pytensor.tensor.type_other import NoneTypeT

NUMPY_MODE = Mode(linker="py", optimizer=RewriteDatabaseQuery(include=["stabilize"]))
DRAWS_PER_BLOCK = 200  # bounds the memory of a block's intermediate arrays (draws × rows)


def evaluate_over_posterior(outputs: Sequence[Variable], inputs: Sequence[Variable],
                            posterior: xr.Dataset, seed: int | None = None) -> list[np.ndarray]:
    """Each of ``outputs`` (graphs of ``inputs``, whose draws ``posterior`` holds under their
    names) at every draw, as an array (chain, draw, …) (an output that depends on no input is
    repeated at every draw). A random output (the posterior predictive) is drawn anew at every
    draw, each block of draws from its own generators, seeded by ``seed`` and the block's and
    generator's positions."""
    n_chains, n_draws = posterior.sizes["chain"], posterior.sizes["draw"]
    draws = [_draws_along_one_axis(posterior[variable.name]) for variable in inputs]
    return [values.reshape(n_chains, n_draws, *values.shape[1:])
            for values in _evaluate_over_draws(outputs, inputs, draws, seed=seed)]


def _evaluate_over_draws(outputs: Sequence[Variable], inputs: Sequence[Variable],
                         draws: Sequence[np.ndarray], seed: int | None = None) -> list[np.ndarray]:
    """Each of ``outputs`` at every draw: ``draws[i]`` holds input i's values along its first
    axis, and so does each result. Random outputs draw with generators seeded from ``seed`` for
    each block of draws."""
    batched = {variable: pt.tensor(name=variable.name, dtype=variable.dtype, shape=(None, *variable.type.shape))
               for variable in inputs}
    n_batch = next(iter(batched.values())).shape[0]
    vectorised = [_random_over_draws(output, batched, n_batch) if _is_random(output)
                  else vectorize_graph(output, replace=batched) for output in outputs]
    generators = [variable for variable in ancestors(vectorised)
                  if isinstance(variable, SharedVariable) and isinstance(variable.type, RandomGeneratorType)]
    if generators and seed is None:
        raise ValueError("random outputs need a seed")
    function = pytensor.function(list(batched.values()), vectorised, mode=NUMPY_MODE, on_unused_input="ignore")
    n_draws = len(draws[0])
    blocks = []
    for block, start in enumerate(range(0, n_draws, DRAWS_PER_BLOCK)):
        for position, generator in enumerate(generators):  # the draws read the generators without advancing them
            generator.set_value(np.random.default_rng([seed, block, position]))
        values = function(*[draw[start:start + DRAWS_PER_BLOCK] for draw in draws])
        size = min(DRAWS_PER_BLOCK, n_draws - start)
        blocks.append([value if new.ndim > old.ndim else np.broadcast_to(value, (size, *np.shape(value)))
                       for value, new, old in zip(values, vectorised, outputs, strict=True)])
    return [np.concatenate(parts) for parts in zip(*blocks, strict=True)]


def _is_random(variable: Variable) -> bool:
    return variable.owner is not None and isinstance(variable.owner.op, RandomVariable)


def _random_over_draws(variable: Variable, batched: dict, n_batch: Variable) -> Variable:
    """The random ``variable`` drawn once for each of ``n_batch`` draws of its parameters' inputs
    (``batched``): its parameters vectorised, its size (or its parameters' batch shape) led by
    ``n_batch``, so that a parameter without a batch dimension is still drawn anew at every draw.
    (PyTensor's own vectorisation extends a given size only by the first parameter's new
    dimensions, and fails where only a later parameter has them.)"""
    op, node = variable.owner.op, variable.owner
    parameters = op.dist_params(node)
    size = op.size_param(node)
    batch_shape = compute_batch_shape(parameters, ndims_params=op.ndims_params) if isinstance(size.type, NoneTypeT) else size
    new_size = pt.concatenate([pt.atleast_1d(n_batch), pt.as_tensor(batch_shape, dtype="int64")])
    new_parameters = vectorize_graph(parameters, replace=batched)
    return op.make_node(op.rng_param(node), new_size, *new_parameters).outputs[1]


def _draws_along_one_axis(variable: xr.DataArray) -> np.ndarray:
    """A posterior variable's values with chain and draw flattened into the first axis (chain by
    chain), also where it has no elements (xarray cannot stack those)."""
    values = variable.transpose("chain", "draw", ...).to_numpy()
    return values.reshape(values.shape[0] * values.shape[1], *values.shape[2:])
