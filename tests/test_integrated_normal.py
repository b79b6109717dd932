"""The fused op of the learned-SE integral equals the PyTensor expression it replaced, value and
gradient, in every backend the workflow evaluates it with (numba for sampling, the Python linker
for the per-draw log-likelihoods, PyTensor's C backend where a test compiles with it)."""

import functools
import pickle

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from scipy.special import gammaln

from crsmeta.model.build import LOG_GRID, TAU_PATH_LOG_GRID
from crsmeta.model.function_cache import graph_key
from crsmeta.model.integrated_normal import LOG_2PI, log_integrated_normal

SHAPE = 3.0
NAMES = ("y", "mu", "added_variance", "b", "x0")
GRIDS = {"se2 grid": LOG_GRID, "tau path grid": TAU_PATH_LOG_GRID}


def expression(y, mu, added_variance, b, x0, shape, grid):
    """The integral as PyTensor expressions, as crsmeta.model.build wrote it before the op."""
    x = x0[..., None] + np.exp(grid)
    variance = b[..., None] / x + added_variance[..., None]
    log_normal = -0.5 * (LOG_2PI + pt.log(variance) + (y - mu)[..., None] ** 2 / variance)
    log_gamma = (shape - 1.0) * pt.log(x) - x - float(gammaln(shape))
    return pt.logsumexp(log_normal + log_gamma + grid, axis=-1) + np.log(grid[1] - grid[0])


def _points(n: int = 9) -> dict[str, np.ndarray]:
    """Rows as the model has them: residuals small and far out, bounded (x0 > 0) and not."""
    rng = np.random.default_rng(3)
    return {"y": np.r_[rng.normal(size=n - 2), 40.0, -0.001], "mu": rng.normal(scale=0.2, size=n),
            "added_variance": np.r_[rng.gamma(1.0, 0.3, size=n - 1), 0.0], "b": rng.gamma(2.0, 0.5, size=n),
            "x0": np.where(np.arange(n) % 2 == 0, 0.0, rng.gamma(2.0, 1.0, size=n))}


@functools.cache
def _expected(grid_name: str) -> list[np.ndarray]:
    """The replaced expressions' value and gradient at :func:`_points`, compiled once per grid."""
    return _value_and_gradient(expression, GRIDS[grid_name], "NUMBA", _points())  # NUMBA: its stabilised logsumexp


def _value_and_gradient(function, grid, mode, points):
    inputs = [pt.dvector(name) for name in NAMES]
    value = function(*inputs, SHAPE, grid)
    compiled = pytensor.function(inputs, [value, *pt.grad(value.sum(), inputs)], mode=mode)
    return compiled(*points.values())


@pytest.mark.parametrize("grid_name", GRIDS)
@pytest.mark.parametrize("mode", ["NUMBA", "FAST_COMPILE", "FAST_RUN"])
def test_the_op_is_the_expression_it_replaced_in_value_and_gradient(grid_name, mode):
    fused = _value_and_gradient(log_integrated_normal, GRIDS[grid_name], mode, _points())
    for name, got, want in zip(("value", *NAMES), fused, _expected(grid_name)):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)


def test_the_op_broadcasts_and_sums_its_gradient_over_the_broadcast_axes():
    """The τ path: each row at every point of τ's grid (rows × points), the rows' values shared."""
    rng = np.random.default_rng(5)
    y, mu, b = (pt.dvector(name) for name in ("y", "mu", "b"))
    tau2 = pt.dmatrix("tau2")
    args = (y[:, None], mu[:, None], tau2, b[:, None], pt.zeros_like(b)[:, None])
    values = {"fused": log_integrated_normal(*args, SHAPE, TAU_PATH_LOG_GRID),
              "expression": expression(*args, SHAPE, TAU_PATH_LOG_GRID)}
    data = rng.normal(size=4), rng.normal(size=4), rng.gamma(2.0, 1.0, size=4), rng.gamma(1.0, 1.0, size=(4, 6))
    results = {}
    for name, value in values.items():
        function = pytensor.function([y, mu, b, tau2], [value, *pt.grad(value.sum(), [y, mu, b, tau2])], mode="NUMBA")
        results[name] = function(*data)
    for got, want in zip(results["fused"], results["expression"]):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_the_partial_derivatives_have_no_gradient_of_their_own():
    y = pt.dvector("y")
    value = log_integrated_normal(y, pt.zeros(2), pt.ones(2), pt.ones(2), pt.zeros(2), SHAPE, LOG_GRID)
    first = pt.grad(value.sum(), y)
    with pytest.raises(NotImplementedError, match="no gradient of their own"):
        pt.grad(first.sum(), y)


def test_an_unevenly_spaced_grid_is_refused():
    with pytest.raises(ValueError, match="evenly spaced"):
        log_integrated_normal(pt.zeros(1), pt.zeros(1), pt.ones(1), pt.ones(1), pt.zeros(1), SHAPE,
                              np.array([0.0, 1.0, 3.0]))


def test_the_op_pickles_and_keys_the_function_cache_by_its_grid_and_shape():
    """Compiled functions holding the op are pickled to disk under a key of their graph
    (crsmeta.model.function_cache): the key must tell two grids or shapes apart."""
    y = pt.dvector("y")

    def key(shape, grid):
        value = log_integrated_normal(y, pt.zeros(1), pt.ones(1), pt.ones(1), pt.zeros(1), shape, grid)
        return graph_key([y], [value])

    assert key(SHAPE, LOG_GRID) == key(SHAPE, LOG_GRID)
    assert len({key(SHAPE, LOG_GRID), key(SHAPE, TAU_PATH_LOG_GRID), key(SHAPE + 1.0, LOG_GRID)}) == 3
    value = log_integrated_normal(y, pt.zeros(1), pt.ones(1), pt.ones(1), pt.zeros(1), SHAPE, LOG_GRID)
    function = pytensor.function([y], value, mode="NUMBA")
    loaded = pickle.loads(pickle.dumps(function))
    np.testing.assert_array_equal(loaded(np.array([0.3])), function(np.array([0.3])))
