"""numba versions of the special functions the models use that PyTensor can cache, registered for
PyTensor's ops on import: ``erfcx``, ``psi`` (digamma) and the regularised incomplete beta.

PyTensor's numba backend evaluates these through SciPy's Cython function pointers, and a function
that calls a pointer cannot be cached: the whole log density that holds one loses its cache key
and is compiled again by every fit. ``erfcx`` is in every model with a censored row (PyMC's
stable Normal log-CDF); ``psi`` (the gradient of log Γ at a sampled ν) and ``betainc`` (the
Student-t CDF of censored rows) are in the Student-t sensitivity analysis, which was compiled
again in every run (35–60 s of its job). These implementations have no pointer, so the graphs
keep their keys; tests/test_numba_special.py compares each with SciPy over its range.
"""

from __future__ import annotations

import math

import numba
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_and_cache_key
from pytensor.link.numba.dispatch.scalar import scalar_op_cache_key
from pytensor.scalar.math import BetaInc, Erfcx, Psi

# below it, exp(x²)·erfc(x) loses at most x²·ε of relative accuracy (64ε); above it, the
# asymptotic series converges to machine precision within 20 terms
ASYMPTOTIC_FROM = 8.0
SQRT_PI = math.sqrt(math.pi)
CACHE_VERSION = "crsmeta-special-1"
# ψ by recurrence up to here, then its asymptotic series through x⁻¹⁴ (truncation < 1e-18 here)
PSI_ASYMPTOTIC_FROM = 10.0
# continued fraction of the incomplete beta (modified Lentz): tolerance and iteration cap
BETACF_EPSILON = 1e-16
BETACF_TINY = 1e-300
BETACF_MAX_ITERATIONS = 10_000


@numba.njit(cache=True, fastmath=False)
def _erfcx_positive(x: float) -> float:
    if x < ASYMPTOTIC_FROM:
        return math.exp(x * x) * math.erfc(x)
    # erfcx(x) ~ 1/(x√π) · Σ_k (−1)^k (2k−1)!! / (2x²)^k
    half_inverse_square = 0.5 / (x * x)
    term, total = 1.0, 1.0
    for k in range(1, 40):
        term *= -(2 * k - 1) * half_inverse_square
        total += term
        if abs(term) < 1e-17 * abs(total):
            break
    return total / (x * SQRT_PI)


@numba.njit(cache=True, fastmath=False)
def erfcx(x: float) -> float:
    """exp(x²)·erfc(x) for any float64 x (inf below about −26.6, as SciPy's)."""
    if math.isnan(x):
        return x
    if x >= 0.0:
        return _erfcx_positive(x)
    return 2.0 * math.exp(x * x) - _erfcx_positive(-x)


@numba.njit(cache=True, fastmath=False)
def psi(x: float) -> float:
    """The digamma function d/dx log Γ(x), as SciPy's ``psi`` (−inf at 0, NaN at the negative
    integers and at −inf)."""
    if math.isnan(x) or math.isinf(x):
        return x if x > 0 else math.nan
    if x == 0.0:
        return -math.inf
    if x < 0.0 and x == math.floor(x):
        return math.nan
    shift = 0.0
    if x < 0.0:  # reflection: ψ(x) = ψ(1 − x) − π / tan(πx)
        shift = -math.pi / math.tan(math.pi * (x - math.floor(x)))  # tan has period π
        x = 1.0 - x
    while x < PSI_ASYMPTOTIC_FROM:
        shift -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    # ψ(x) ~ log x − 1/(2x) − Σ B₂ₖ / (2k x²ᵏ)
    series = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f * (
        1.0 / 132 - f * (691.0 / 32760 - f * (1.0 / 12)))))))
    return shift + math.log(x) - 0.5 / x - series


@numba.njit(cache=True, fastmath=False)
def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b)·a·B(a, b)/(x^a (1−x)^b), by the modified Lentz method
    (Numerical Recipes, 3rd ed., §6.4); converges fast for x < (a + 1)/(a + b + 2)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    if abs(d) < BETACF_TINY:
        d = BETACF_TINY
    d = 1.0 / d
    h = d
    for m in range(1, BETACF_MAX_ITERATIONS + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = BETACF_TINY if abs(d) < BETACF_TINY else d
        c = 1.0 + aa / c
        c = BETACF_TINY if abs(c) < BETACF_TINY else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = BETACF_TINY if abs(d) < BETACF_TINY else d
        c = 1.0 + aa / c
        c = BETACF_TINY if abs(c) < BETACF_TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < BETACF_EPSILON:
            return h
    return h


@numba.njit(cache=True, fastmath=False)
def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), as SciPy's ``betainc``."""
    if math.isnan(a) or math.isnan(b) or math.isnan(x) or a < 0.0 or b < 0.0 or x < 0.0 or x > 1.0:
        return math.nan
    if x == 0.0:
        return 0.0
    if x == 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_continued_fraction(b, a, 1.0 - x) / b


@register_funcify_and_cache_key(Erfcx)
def _funcify_erfcx(op, node=None, **kwargs):
    @numba_njit
    def scalar_erfcx(x):
        return erfcx(x)

    return scalar_erfcx, f"{CACHE_VERSION}-{scalar_op_cache_key(op)}"


@register_funcify_and_cache_key(Psi)
def _funcify_psi(op, node=None, **kwargs):
    @numba_njit
    def scalar_psi(x):
        return psi(x)

    return scalar_psi, f"{CACHE_VERSION}-{scalar_op_cache_key(op)}"


@register_funcify_and_cache_key(BetaInc)
def _funcify_betainc(op, node=None, **kwargs):
    @numba_njit
    def scalar_betainc(a, b, x):
        return betainc(a, b, x)

    return scalar_betainc, f"{CACHE_VERSION}-{scalar_op_cache_key(op)}"
