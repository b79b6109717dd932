"""crsmeta.model.numba_erfcx: SciPy's values, and a censored model whose compiled code can be cached."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
from scipy import special

from crsmeta.model.numba_erfcx import erfcx  # importing it registers the op


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
