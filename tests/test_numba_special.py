"""crsmeta.model.numba_special: SciPy's values, and models whose compiled code can be cached."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from scipy import special

from crsmeta.model.numba_special import betainc, erfcx, psi  # importing it registers the ops


def test_erfcx_agrees_with_scipy_over_its_whole_range() -> None:
    x = np.concatenate([np.linspace(-26.0, 30.0, 20001), np.geomspace(7.9, 1e300, 2001), [0.0, 8.0]])
    ours = np.array([erfcx(value) for value in x])
    np.testing.assert_allclose(ours, special.erfcx(x), rtol=1e-13, atol=0.0)
    assert np.isinf(erfcx(-27.0)) and np.isnan(erfcx(np.nan))


def test_a_censored_normal_log_density_keeps_its_cache_key() -> None:
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    with pm.Model() as model:
        mu = pm.Normal("mu")
        pm.Potential("below_limit", pm.logcdf(pm.Normal.dist(mu, 1.0), np.array([-3.0, 0.5, 40.0])))
    outputs = [model.logp(), pt.grad(model.logp(), model.value_vars[0])]
    numba_function = pytensor.function(model.value_vars, outputs, mode="NUMBA")
    assert CACHED_SRC_FUNCTIONS.get(numba_function.vm.jit_fn.py_func) is not None
    c_function = pytensor.function(model.value_vars, outputs, mode="FAST_RUN")  # SciPy's erfcx
    for mu in (-2.0, 0.3, 5.0):
        np.testing.assert_allclose(numba_function(mu), c_function(mu), rtol=1e-12)


def test_psi_agrees_with_scipy_over_its_whole_range() -> None:
    x = np.concatenate([np.linspace(-20.3, 50.0, 20001), np.geomspace(1e-8, 1e300, 2001),
                        0.37 - np.geomspace(1e-8, 1e5, 500)])
    ours, expected = np.array([psi(value) for value in x]), special.psi(x)
    # relative to max(1, |ψ|): ψ has zeros, where a relative error means nothing
    np.testing.assert_array_less(np.abs(ours - expected) / np.maximum(np.abs(expected), 1.0), 1e-12)
    for pole in (0.0, -1.0, -7.0, -np.inf, np.nan):
        np.testing.assert_equal(psi(pole), special.psi(pole))


def test_betainc_agrees_with_scipy_and_gives_the_student_t_cdf() -> None:
    rng = np.random.default_rng(0)
    a, b = np.exp(rng.uniform(-3.0, 6.0, (2, 20000)))
    x = rng.uniform(0.0, 1.0, 20000)
    ours = np.array([betainc(*point) for point in zip(a, b, x)])
    np.testing.assert_allclose(ours, special.betainc(a, b, x), rtol=1e-11, atol=1e-13)
    nu, t = np.exp(rng.uniform(0.0, np.log(300.0), 5000)), rng.normal(0.0, 20.0, 5000)
    lower_tail = np.array([0.5 * betainc(n / 2, 0.5, n / (n + v * v)) for n, v in zip(nu, t)])
    np.testing.assert_allclose(np.where(t < 0, lower_tail, 1 - lower_tail), special.stdtr(nu, t), rtol=1e-11)
    assert betainc(2.0, 3.0, 0.0) == 0.0 and betainc(2.0, 3.0, 1.0) == 1.0 and np.isnan(betainc(2.0, 3.0, 1.5))


def test_a_censored_student_t_log_density_with_a_sampled_nu_keeps_its_cache_key() -> None:
    """The Student-t sensitivity analysis: betainc in its censored terms, ψ in the gradient by ν."""
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    with pm.Model() as model:
        mu = pm.Normal("mu")
        nu = 1.0 + pm.Gamma("nu_minus_one", 2.0, 0.1)
        pm.StudentT("change", nu=nu, mu=mu, sigma=1.0, observed=np.array([0.2, -1.0]))
        pm.Potential("below_limit", pm.logcdf(pm.StudentT.dist(nu=nu, mu=mu, sigma=1.0), np.array([-3.0, 0.5, 4.0])))
    outputs = [model.logp(), *pt.grad(model.logp(), model.value_vars)]
    numba_function = pytensor.function(model.value_vars, outputs, mode="NUMBA")
    assert CACHED_SRC_FUNCTIONS.get(numba_function.vm.jit_fn.py_func) is not None
    reference = pytensor.function(model.value_vars, outputs, mode="FAST_COMPILE")  # SciPy's functions
    for point in ((-2.0, 0.1), (0.3, 2.0), (5.0, -1.5)):
        for ours, expected in zip(numba_function(*point), reference(*point)):
            np.testing.assert_allclose(ours, expected, rtol=1e-9)
