"""Fits on tiny SYNTHETIC data: smoke (mocked sampler), censoring and missing-SD bias (real chains), the gate."""

import arviz as az
import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from conftest import CHANGE_COLUMNS, SUMMARY_COLUMNS, change_row, model_data, summary_row
from crsmeta import cv_shift, tables
from crsmeta.comparisons import summary_comparisons
from crsmeta.io import write_netcdf
from crsmeta.model import GateVerdict, ModelSettings, fit_analysis, judge, stamp
from crsmeta.model.effects import COLUMNS as EFFECT_COLUMNS
from typed_tables import change_frame, summary_frame, typed_changes, typed_summaries


@pytest.fixture
def tiny_changes(tiny_changes: pd.DataFrame) -> pd.DataFrame:
    """conftest's changes typed by their contract, as the model reads them."""
    return typed_changes(tiny_changes)


@pytest.fixture
def tiny_summaries(tiny_summaries: pd.DataFrame) -> pd.DataFrame:
    """conftest's summaries typed by their contract, as the changes stage reads them."""
    return typed_summaries(tiny_summaries)


FAST = ModelSettings(chains=2, draws=100, tune=100, cores=2, prior_draws=50, gate=False)
NO_SUMMARIES = tables.frame(tables.HARMONISED_SUMMARIES)


def test_smoke_fit_writes_every_group_and_table(mock_sampling, tiny_changes, tiny_summaries, tmp_path):
    """Mocked sampler (prior draws): the fit's groups, tables, stamp and netCDF, not its numbers."""
    result = fit_analysis(tiny_changes, summary_comparisons(tiny_summaries)[0], FAST)
    idata = result.idata
    for group in ("posterior", "sample_stats", "observed_data", "prior", "prior_predictive",
                  "posterior_predictive"):
        assert group in idata.groups()
    assert idata.posterior.sizes["chain"] == FAST.chains and idata.posterior.sizes["draw"] == FAST.draws
    assert list(result.effects.columns) == EFFECT_COLUMNS + ["synthetic", "gate", "route", "pareto_k"]
    assert len(result.effects) == len(result.data.counts())
    assert {"parameter", "chain", "fit"} == set(result.diagnostics["kind"])
    for contract, table in ((tables.EFFECTS, result.effects), (tables.DIAGNOSTICS, result.diagnostics),
                            (tables.OBSERVATIONS, result.data.observations), (tables.MODEL_AUDIT, result.data.audit)):
        assert_round_trips(contract, table, tmp_path)
    stamp(idata, config_hash="c0ffee", data_hash="beef", seed=FAST.seed, analysis="main")
    assert idata.posterior.attrs["synthetic"] == "SYNTHETIC"
    assert idata.posterior.attrs["version_pymc"]
    write_netcdf(idata, tmp_path / "posterior.nc")
    written = az.from_netcdf(tmp_path / "posterior.nc")
    assert set(written.groups()) == set(idata.groups())
    assert written.posterior.attrs["config_hash"] == "c0ffee"


def assert_round_trips(contract: tables.Table, table: pd.DataFrame, tmp_path) -> None:
    """The table is written through its contract, read back strictly, and rewritten byte for byte."""
    path, again = tmp_path / "table.tsv", tmp_path / "again.tsv"
    tables.write(contract, table, path)
    tables.write(contract, tables.read(contract, path), again)
    assert again.read_bytes() == path.read_bytes(), contract.name


def test_a_sensitivity_fit_draws_no_predictive_groups(mock_sampling, tiny_changes, tiny_summaries):
    """The report reads the main fit's prior and predictive draws only; a sensitivity fit's job
    does not spend its seconds on them."""
    result = fit_analysis(tiny_changes, summary_comparisons(tiny_summaries)[0], FAST.replace(tau_sd=1.0), analysis="tau_prior_double")
    assert "posterior" in result.idata.groups()
    assert not {"prior", "prior_predictive", "posterior_predictive"} & set(result.idata.groups())


@pytest.mark.slow
def test_censored_likelihood_is_unbiased_where_substitution_is_not():
    """SYNTHETIC lognormal marker with a detection limit: 40% of post values fall below it."""
    rng = np.random.default_rng(7)
    true_theta, n = -1.0, 120
    pre = rng.normal(6.0, 0.5, n)
    post = pre + rng.normal(true_theta, 0.6, n)
    lod = np.quantile(post, 0.4)
    rows, substituted = [], []
    for i, (a, b) in enumerate(zip(pre, post)):
        if b < lod:  # post <LOD: the change is at most log(LOD) - log(pre)
            rows.append(change_row("sim", i, "tocilizumab", "IL-6", None, lower=-np.inf, upper=lod - a,
                                   censoring="left"))
            substituted.append(lod - np.log(2) - a)  # the common LOD/2 plug
        else:
            rows.append(change_row("sim", i, "tocilizumab", "IL-6", b - a))
            substituted.append(b - a)
    changes = change_frame(rows, columns=CHANGE_COLUMNS)
    result = fit_analysis(changes, summary_comparisons(NO_SUMMARIES)[0], FAST.replace(draws=300, tune=300))
    estimate = result.effects.loc[0, "theta_median"]
    naive = float(np.mean(substituted))
    assert abs(estimate - true_theta) < 0.15
    assert abs(naive - true_theta) > 2 * abs(estimate - true_theta)


@pytest.mark.slow
def test_learned_dispersion_does_not_inflate_heterogeneity():
    """SYNTHETIC: 12 cohorts print means without SDs; a 40-patient series informs sigma.

    Plugging a small constant SE (a common shortcut) attributes the sampling noise to
    between-study heterogeneity; learning the SE from the data does not.
    """
    rng = np.random.default_rng(11)
    true_theta, true_tau, sigma, n = -0.8, 0.05, 0.8, 20
    changes = change_frame([change_row("series", i, "anakinra", "ferritin", true_theta + sigma * rng.standard_normal())
                            for i in range(40)], columns=CHANGE_COLUMNS)
    means = true_theta + true_tau * rng.standard_normal(12) + sigma / np.sqrt(n) * rng.standard_normal(12)
    summaries = summary_frame([summary_row(f"cohort{k}", "anakinra", "ferritin", "change", n=n,
                                          effect_type="log_ratio", estimate=y, source_row=k + 2)
                              for k, y in enumerate(means)], columns=SUMMARY_COLUMNS)
    # HalfNormal on tau so that only the dispersion handling, not a boundary-avoiding prior, is tested
    result = fit_analysis(changes, summary_comparisons(summaries)[0], FAST.replace(draws=300, tune=300, tau_prior="halfnormal"))
    tau_learned = result.effects.loc[0, "tau_median"]
    tau_plugged = np.sqrt(combine_effects(means, np.full(12, 0.05**2), method_re="dl").tau2)
    assert abs(result.effects.loc[0, "theta_median"] - true_theta) < 0.2
    assert tau_plugged > 0.15
    assert tau_learned < tau_plugged / 2, (tau_learned, tau_plugged)


def test_gate_names_the_failing_parameters_and_what_to_change():
    diagnostics = tables.frame(tables.SAMPLER_DIAGNOSTICS, pd.DataFrame({
        "analysis": "main", "kind": ["parameter", "parameter", "chain", "chain"],
        "parameter": ["theta[a, IL-6]", "tau[IL-6]", "sampler", "sampler"], "chain": [pd.NA, pd.NA, 0, 1],
        "r_hat": [1.05, 1.0, np.nan, np.nan], "ess_bulk": [900, 120, np.nan, np.nan],
        "ess_tail": [900, 800, np.nan, np.nan], "divergences": [pd.NA, pd.NA, 0, 3], "bfmi": [np.nan, np.nan, 0.9, 0.8],
    }))
    verdict = judge(diagnostics, ModelSettings(), draws=1000)
    message = verdict.message("main")
    assert verdict.status == "failed"
    assert "theta[a, IL-6] (1.05)" in message and "tau[IL-6] (120)" in message
    assert "3 divergent transitions" in message and "tighter priors" in message and "gate: false" in message
    assert judge(diagnostics, ModelSettings(gate=False), draws=1000).status == "off"
    healthy = tables.frame(tables.SAMPLER_DIAGNOSTICS, diagnostics.assign(
        r_hat=[1.0, 1.0, np.nan, np.nan], ess_bulk=[900.0, 900.0, np.nan, np.nan], divergences=[pd.NA, pd.NA, 0, 0]))
    assert judge(healthy, ModelSettings(), draws=1000) == GateVerdict("passed", 1000)


def test_a_log_ratio_of_arithmetic_means_is_centred_on_theta_plus_the_shift_of_its_own_cvs():
    """Structure only (no sampling): at θ = 0, σ = 0.6, ρ = 0.5, τ = 0.3 the mean-based row's
    log-likelihood, its study effect integrated out, is Normal(y | shift, √(SE² + τ²)), the shift
    (s_post² − s_pre²)/2 from the printed CVs (s² = log(1 + CV²)) plus its small-sample correction
    at σ (crsmeta.cv_shift), not σ²/2, and SE² the mean of the delta-method variance (ρ of the log
    levels converted to the levels' by the log-normal moments) and the shifted ratio's variance
    simulated at σ."""
    from scipy import stats

    from crsmeta.model.build import build_model

    summaries = summary_frame([
        summary_row("m", "tocilizumab", "CRP", "pre", value=100, spread_type="sd", spread=50, n=10),
        summary_row("m", "tocilizumab", "CRP", "post", value=40, spread_type="sd", spread=30, n=10),
    ], columns=SUMMARY_COLUMNS)
    data = model_data(tables.frame(tables.CHANGES), summaries, FAST)
    model = build_model(data, FAST)
    point = {name: np.zeros_like(value) for name, value in model.initial_point().items()}
    point["sigma_softplus_variance__"] = np.full_like(point["sigma_softplus_variance__"], np.log(np.expm1(0.6**2)))
    point["tau_log__"] = np.log(np.full_like(point["tau_log__"], 0.3))
    logp = model.compile_logp(vars=[model["y_marginal"]], jacobian=False, mode="FAST_COMPILE")(point)  # no C compile
    d_pre, d_post = 0.5, 0.75
    # ρ = 0.5 is the log levels' correlation: the delta-method variance subtracts the levels' own
    levels_covariance = np.expm1(0.5 * np.sqrt(np.log1p(d_pre**2) * np.log1p(d_post**2)))
    of_sds = (d_pre**2 + d_post**2 - 2 * levels_covariance) / 10
    correction, simulated = (np.interp(0.6, cv_shift.SIGMA_GRID, table) for table in cv_shift.cv_shift_tables(d_pre, 10))
    shift = (np.log1p(d_post**2) - np.log1p(d_pre**2)) / 2 + correction
    se2 = (of_sds + simulated) / 2
    assert logp == pytest.approx(stats.norm.logpdf(np.log(0.4), shift, np.sqrt(se2 + 0.3**2)))
