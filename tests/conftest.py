"""Shared fixtures: tiny hand-made harmonised tables in the design.md column layout, and the
mocked-sampler tier (``mock_pymc_sample``) for tests that need only a posterior's shape."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

from crsmeta.harmonise import HARMONISED_SUMMARY_COLUMNS

CHANGE_COLUMNS = [
    "study_id", "patient_id", "population", "intervention", "co_interventions", "marker",
    "astct_grades", "pre_value", "post_value", "pre_censoring", "post_censoring", "hours", "change",
    "change_lower", "change_upper", "censoring", "digitised", "flags", "source_rows", "synthetic",
]
SUMMARY_COLUMNS = list(HARMONISED_SUMMARY_COLUMNS)


def change_row(study_id, patient_id, intervention, marker, change, *, population="car_t_crs",
               lower=None, upper=None, censoring="none", **extra) -> dict:
    """One changes.tsv row as strings; ``lower``/``upper`` only for censored changes."""
    row = dict.fromkeys(CHANGE_COLUMNS, "")
    row.update(study_id=study_id, patient_id=str(patient_id), population=population,
               intervention=intervention, marker=marker, censoring=censoring,
               change="" if change is None else repr(float(change)),
               change_lower="" if lower is None else repr(float(lower)),
               change_upper="" if upper is None else repr(float(upper)),
               digitised="False", synthetic="True", source_rows=f"{study_id}.csv:{patient_id}")
    row.update({key: str(value) for key, value in extra.items()})
    return row


def summary_row(study_id, intervention, marker, timepoint, *, n="20", value="", statistic="mean",
                population="car_t_crs", arm="", source_row="2", **extra) -> dict:
    """One harmonised summaries.tsv row as strings."""
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row.update(study_id=study_id, population=population, design="cohort", arm=arm,
               intervention=intervention, marker=marker, timepoint=timepoint, n=str(n),
               statistic=statistic, value=str(value), spread_type="none", digitised="False",
               synthetic="True", source_file=f"{study_id}.csv", source_row=str(source_row))
    row.update({key: str(value) for key, value in extra.items()})
    return row


@pytest.fixture
def tiny_changes() -> pd.DataFrame:
    """SYNTHETIC: two case series (tocilizumab, plasma exchange), one censored change each."""
    rng = np.random.default_rng(1)
    rows = []
    for study, intervention, effect in (("s1", "tocilizumab", -1.0), ("s2", "plasma_exchange", -0.7)):
        for patient in range(6):
            for marker, shift in (("IL-6", 0.0), ("ferritin", 0.5)):
                rows.append(change_row(study, patient, intervention, marker,
                                       effect + shift + 0.4 * rng.standard_normal()))
        rows.append(change_row(study, 9, intervention, "IL-6", None, lower=-np.inf, upper=-1.5,
                               censoring="left"))
    rows.append(change_row("s1", 10, "tocilizumab", "temperature", -1.2))
    rows.append(change_row("s1", 11, "tocilizumab", "temperature", -0.8))
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


@pytest.fixture
def tiny_summaries() -> pd.DataFrame:
    """SYNTHETIC: a cohort with means and P values, and a two-arm trial with medians and IQRs."""
    rows = [
        summary_row("c1", "emapalumab", "IL-6", "pre", value=200, p_value=0.018, p_relation="=", n=30),
        summary_row("c1", "emapalumab", "IL-6", "post", value=80, p_value=0.018, p_relation="=", n=30),
        summary_row("c1", "emapalumab", "temperature", "pre", value=39.6, p_value=0.001, p_relation="<", n=30),
        summary_row("c1", "emapalumab", "temperature", "post", value=38.4, p_value=0.001, p_relation="<", n=30),
        summary_row("t1", "hemoadsorption", "IL-6", "pre", value=2000, statistic="median", arm="device",
                    population="viral_cytokine_storm", spread_type="iqr", spread_low=900, spread_high=3600, n=12),
        summary_row("t1", "hemoadsorption", "IL-6", "post", value=500, statistic="median", arm="device",
                    population="viral_cytokine_storm", spread_type="iqr", spread_low=200, spread_high=1100, n=12),
        summary_row("t1", "standard_care", "IL-6", "pre", value=3000, statistic="median", arm="control",
                    population="viral_cytokine_storm", n=12),
        summary_row("t1", "standard_care", "IL-6", "post", value=1500, statistic="median", arm="control",
                    population="viral_cytokine_storm", n=12),
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# --------------------------------------------------------------------------- mocked-sampler tier
# As in CausalPy's test suite (pymc.testing.mock_sample): ``pm.sample`` returns the model's prior
# draws, shaped like a posterior, so that tests of everything downstream of sampling (effects and
# diagnostics tables, stamping, netCDF, report tables, glue) run in seconds. The draws are NOT a
# posterior: a test that checks an estimate, a convergence figure or reproducibility of the sampler
# samples real chains instead. crsmeta.model.sample calls ``pm.sample`` through the ``pymc`` module,
# so patching the module attribute reaches it.


def prior_draws_as_posterior(*, draws: int = 1000, chains: int = 4, random_seed=None, model=None,
                             idata_kwargs: dict | None = None, **ignored) -> az.InferenceData:
    """Stands in for :func:`pymc.sample`: ``chains × draws`` independent prior draws of every free
    variable and deterministic as ``posterior``, the model's ``observed_data`` and
    ``constant_data``, and a ``sample_stats`` group with no divergences and made-up energies
    (so that divergence counts and E-BFMI can be computed). Seeded by ``random_seed``; tuning and
    sampler options are ignored. The log-likelihood is added when ``idata_kwargs`` asks for it."""
    model = pm.modelcontext(model)
    names = [variable.name for variable in model.free_RVs + model.deterministics]
    with warnings.catch_warnings():  # the prior ignores the model's Potentials (censoring terms): fine here
        warnings.filterwarnings("ignore", "The effect of Potentials", UserWarning)
        prior = pm.sample_prior_predictive(draws=chains * draws, model=model, var_names=names,
                                           random_seed=random_seed)
    posterior = xr.Dataset(
        {name: (("chain", "draw", *values.dims[2:]), values.to_numpy().reshape(chains, draws, *values.shape[2:]))
         for name, values in prior.prior.data_vars.items()},
        coords={"chain": np.arange(chains), "draw": np.arange(draws),
                **{dim: prior.prior.coords[dim] for dim in prior.prior.dims if dim not in ("chain", "draw")}},
    )
    rng = np.random.default_rng(random_seed)
    shape = (chains, draws)
    sample_stats = xr.Dataset(
        {"diverging": (("chain", "draw"), np.zeros(shape, dtype=bool)),
         "energy": (("chain", "draw"), rng.standard_normal(shape)),
         "tree_depth": (("chain", "draw"), np.full(shape, 3)),
         "step_size": (("chain", "draw"), np.full(shape, 0.5))},
        coords={"chain": posterior["chain"], "draw": posterior["draw"]},
    )
    groups = {"posterior": posterior, "sample_stats": sample_stats}
    groups |= {group: prior[group] for group in ("observed_data", "constant_data") if group in prior.groups()}
    idata = az.InferenceData(**groups)
    if (idata_kwargs or {}).get("log_likelihood"):
        pm.compute_log_likelihood(idata, model=model, progressbar=False)
    return idata


@pytest.fixture
def mock_pymc_sample(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Mocked-sampler tier: ``pm.sample`` returns prior draws (see :func:`prior_draws_as_posterior`).

    Yields the keyword arguments of each call; the test fails if nothing called ``pm.sample``
    (i.e. the package stopped sampling through it and this mock no longer reaches it).
    """
    calls: list[dict] = []

    def fake_sample(draws: int = 1000, **kwargs) -> az.InferenceData:
        calls.append({"draws": draws, **kwargs})
        return prior_draws_as_posterior(draws=draws, **kwargs)

    monkeypatch.setattr(pm, "sample", fake_sample)
    yield calls
    assert calls, "mock_pymc_sample: pm.sample was never called; does crsmeta.model.sample still use it?"
