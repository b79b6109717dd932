"""log ∫_{x0}^∞ N(y; mu, b/x + V) Gamma(x; shape, 1) dx as one elementwise op with its gradient.

This integral is the likelihood of every summary row whose SE the model learns
(:class:`crsmeta.model.build._LearnedRows`): per row, and where τ is integrated out per row and
point of τ's grid. Written as PyTensor expressions, the trapezoid rule on the grid's points is a
rows × points array for each of a dozen elementwise steps, a logsumexp, and as many again in the
gradient, each a node of the compiled log density, whose gradient costs about as much per node
(docs/benchmarks.md). Here one loop per element runs over the grid once, with a streaming
logsumexp that accumulates the value and its five partial derivatives together (one exp per
point), in numba for the log density and in the same compiled loop over arrays when PyTensor
evaluates the graph with numpy (the per-study log-likelihood of every draw).

The op's outputs are the value and its partial derivatives in y, mu, V, b and x0; the gradient of
the value reads them, so the loop runs once per evaluation. The partials themselves have no
gradient (nothing here takes second derivatives).
"""

from __future__ import annotations

import hashlib
import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key
from pytensor.scalar.basic import ScalarOp, float64
from pytensor.tensor.elemwise import Elemwise

LOG_2PI = math.log(2.0 * math.pi)  # also the Gaussian rows' (crsmeta.model.build)
CACHE_VERSION = "crsmeta-integrated-normal-1"
N_PARTIALS = 5  # ∂/∂y, ∂/∂mu, ∂/∂V, ∂/∂b, ∂/∂x0


@numba.njit(cache=True, fastmath=False)
def _integrate(y: float, mu: float, added_variance: float, b: float, x0: float, shape: float,
               log_constant: float, grid: np.ndarray, exp_grid: np.ndarray):
    """The value and its five partial derivatives at one element (module docstring).

    The integrand in z = log(x − x0) is f(z) = log N(y; mu, v) + (shape − 1) log x − x + z with
    x = x0 + e^z and v = b/x + V; the value is log Σ_k e^{f(z_k)} + ``log_constant`` (the
    spacing's log and −log Γ(shape)), and each partial derivative the softmax-weighted mean of
    f's. The running maximum keeps every exponential ≤ 1.
    """
    residual = y - mu
    squared = residual * residual
    largest = -math.inf
    total = d_y = d_variance = d_b = d_x0 = 0.0
    for k in range(grid.size):
        x = x0 + exp_grid[k]
        log_x = grid[k] if x0 == 0.0 else math.log(x)
        inverse_x = 1.0 / x
        variance = b * inverse_x + added_variance
        inverse_variance = 1.0 / variance
        term = (-0.5 * (LOG_2PI + math.log(variance) + squared * inverse_variance)
                + (shape - 1.0) * log_x - x + grid[k])
        of_variance = -0.5 * inverse_variance * (1.0 - squared * inverse_variance)
        of_y = -residual * inverse_variance
        of_b = of_variance * inverse_x
        of_x0 = (shape - 1.0) * inverse_x - 1.0 - of_variance * b * inverse_x * inverse_x
        if term > largest:
            rescale = math.exp(largest - term)
            total = total * rescale + 1.0
            d_y = d_y * rescale + of_y
            d_variance = d_variance * rescale + of_variance
            d_b = d_b * rescale + of_b
            d_x0 = d_x0 * rescale + of_x0
            largest = term
        else:
            weight = math.exp(term - largest)
            total += weight
            d_y += weight * of_y
            d_variance += weight * of_variance
            d_b += weight * of_b
            d_x0 += weight * of_x0
    return (largest + math.log(total) + log_constant, d_y / total, -d_y / total, d_variance / total,
            d_b / total, d_x0 / total)


@numba.njit(cache=True, fastmath=False)
def _integrate_arrays(y, mu, added_variance, b, x0, shape, log_constant, grid, exp_grid):
    """:func:`_integrate` at every element of the (equal-shaped, flat) arrays."""
    outputs = np.empty((1 + N_PARTIALS, y.size))
    for i in range(y.size):
        values = _integrate(y[i], mu[i], added_variance[i], b[i], x0[i], shape, log_constant, grid, exp_grid)
        for j in range(1 + N_PARTIALS):
            outputs[j, i] = values[j]
    return outputs


class LogIntegratedNormal(ScalarOp):
    """The value and partial derivatives of the integral (module docstring) at one element, on
    the evenly spaced grid of ``count`` points from ``first`` by ``step`` in z = log(x − x0)."""

    nin = 5
    nout = 1 + N_PARTIALS

    def __init__(self, shape: float, first: float, step: float, count: int):
        super().__init__()
        self.shape, self.first, self.step, self.count = float(shape), float(first), float(step), int(count)

    def _key(self) -> tuple:
        return (self.shape, self.first, self.step, self.count)

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def output_types(self, types):
        return [float64] * self.nout

    @property
    def grid(self) -> np.ndarray:
        return self.first + self.step * np.arange(self.count)

    @property
    def exp_grid(self) -> np.ndarray:
        return np.exp(self.grid)

    @property
    def log_constant(self) -> float:
        return math.log(self.step) - math.lgamma(self.shape)

    def impl(self, y, mu, added_variance, b, x0):
        return _integrate(float(y), float(mu), float(added_variance), float(b), float(x0), self.shape,
                          self.log_constant, self.grid, self.exp_grid)

    def L_op(self, inputs, outputs, output_gradients):
        if any(not isinstance(gradient.type, DisconnectedType) for gradient in output_gradients[1:]):
            raise NotImplementedError("the integral's partial derivatives have no gradient of their own")
        return [output_gradients[0] * partial for partial in outputs[1:]]

    def cache_key(self) -> str:
        return hashlib.sha256(f"{CACHE_VERSION} {self._key()!r}".encode()).hexdigest()


class _LogIntegratedNormalArrays:
    """What PyTensor's Python linker calls for the elementwise op (in place of a NumPy ufunc):
    the compiled loop over whole arrays, not a Python call per element."""

    nout = 1 + N_PARTIALS

    def __init__(self, op: LogIntegratedNormal):
        self.op = op

    def __call__(self, *inputs):
        arrays = np.broadcast_arrays(*(np.asarray(value, dtype=float) for value in inputs))
        flat = [np.ascontiguousarray(array).ravel() for array in arrays]
        outputs = _integrate_arrays(*flat, self.op.shape, self.op.log_constant, self.op.grid, self.op.exp_grid)
        return tuple(output.reshape(arrays[0].shape) for output in outputs)


class _LogIntegratedNormalElemwise(Elemwise):
    """The elementwise op, evaluated by the compiled loop when PyTensor runs it without numba."""

    def prepare_node(self, node, storage_map, compute_map, impl):
        if self.ufunc is None:
            self.ufunc = _LogIntegratedNormalArrays(self.scalar_op)
        super().prepare_node(node, storage_map, compute_map, impl)


@register_funcify_and_cache_key(LogIntegratedNormal)
def _funcify_log_integrated_normal(op, node=None, **kwargs):
    shape, log_constant, grid, exp_grid = op.shape, op.log_constant, op.grid, op.exp_grid

    @numba_njit
    def log_integrated_normal(y, mu, added_variance, b, x0):
        return _integrate(y, mu, added_variance, b, x0, shape, log_constant, grid, exp_grid)

    return log_integrated_normal, op.cache_key()


def log_integrated_normal(y, mu, added_variance, b, x0, shape: float, grid: np.ndarray) -> pt.TensorVariable:
    """log ∫_{x0}^∞ N(y; mu, b/x + V) Gamma(x; shape, 1) dx per element (the arguments broadcast),
    by the trapezoid rule on z = log(x − x0) at the evenly spaced points ``grid``."""
    step = float(grid[1] - grid[0])
    if not np.allclose(np.diff(grid), step, rtol=0.0, atol=1e-12):
        raise ValueError("the grid's points must be evenly spaced")
    op = _LogIntegratedNormalElemwise(LogIntegratedNormal(shape, grid[0], step, grid.size))
    return op(y, mu, added_variance, b, x0)[0]
