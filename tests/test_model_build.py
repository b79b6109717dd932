"""The model's coordinates: integrated-out study effects and learned SEs are exact, θ's prior is
that of the additive form (no sampling: log densities at fixed points and prior draws)."""

import functools
import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import pytensor.tensor as pt
from pytensor.compile.mode import Mode
import pytest
from scipy import integrate, special, stats

from conftest import CHANGE_COLUMNS, SUMMARY_COLUMNS, change_row, model_data, summary_row
from crsmeta import cv_shift, median_spread, tables
from crsmeta.model import ModelSettings
from crsmeta.model.build import (INTEGRATED_TAU_DRAW_PREFIXES, _compound_symmetry_logp, _log_integrated_normal,
                                 build_model, integrated_tau, study_log_likelihood)
from typed_tables import change_frame, summary_frame, typed_changes


@pytest.fixture
def tiny_changes(tiny_changes: pd.DataFrame) -> pd.DataFrame:
    """conftest's changes typed by their contract, as the model reads them."""
    return typed_changes(tiny_changes)


SETTINGS = ModelSettings(chains=1, draws=10, tune=10, cores=1, prior_draws=10, gate=False)
LEGACY_BUILD = Path(__file__).parents[1] / "validation" / "legacy_build.py"


def test_integrating_study_effects_out_is_the_multivariate_normal_of_each_group():
    rng = np.random.default_rng(0)
    group = np.array([0, 0, 0, 2, 2, 3])
    y, mean = rng.normal(size=6), rng.normal(size=6)
    variance, tau2 = rng.uniform(0.2, 2.0, size=6), rng.uniform(0.1, 1.0, size=5)
    logp = _compound_symmetry_logp(*(pt.as_tensor(a) for a in (y, mean, variance, tau2, group))).eval()
    expected = sum(
        stats.multivariate_normal(mean[group == g], np.diag(variance[group == g]) + tau2[g]).logpdf(y[group == g])
        for g in np.unique(group))
    assert logp == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("residual_in_prior_sds", [0.01, 1.0, 10.0, 30.0])
def test_a_learned_se_integrated_out_is_the_student_t_and_its_bounded_and_widened_forms(residual_in_prior_sds):
    shape, b, bound, added = 3.0, 0.4, 0.1, 0.3
    y = residual_in_prior_sds * np.sqrt(b / shape)

    def integral(x0: float, v: float) -> float:
        return float(_log_integrated_normal(np.array([y]), pt.zeros(1), pt.as_tensor([v]), pt.as_tensor([b]),
                                            pt.as_tensor([x0]), shape).eval()[0])

    student_t = stats.t(2 * shape, 0.0, np.sqrt(b / shape)).logpdf(y)
    assert integral(0.0, 0.0) == pytest.approx(student_t, abs=1e-8)
    bounded = student_t + np.log(special.gammaincc(shape + 0.5, (b + y**2 / 2) / bound))
    assert integral(b / bound, 0.0) == pytest.approx(bounded, abs=1e-6)

    def density(se2: float) -> float:
        return stats.norm(0.0, np.sqrt(se2 + added)).pdf(y) * stats.invgamma(shape, scale=b).pdf(se2)

    widened = np.log(integrate.quad(density, 0.0, bound, limit=200, epsabs=0)[0])
    assert integral(b / bound, added) == pytest.approx(widened, abs=1e-6)


def test_one_censored_row_beside_exact_rows_integrates_its_study_effect_out_exactly():
    """A case series: two exact changes and one <LOD change share u ~ N(0, τ²)."""
    changes = change_frame([
        change_row("s", 0, "tocilizumab", "IL-6", -1.0),
        change_row("s", 1, "tocilizumab", "IL-6", -0.4),
        change_row("s", 2, "tocilizumab", "IL-6", None, lower=-np.inf, upper=-1.5, censoring="left"),
    ], columns=CHANGE_COLUMNS)
    data = model_data(changes, tables.frame(tables.HARMONISED_SUMMARIES), SETTINGS)
    model = build_model(data, SETTINGS)
    assert "u" not in model.named_vars and "study_marker_explicit" not in model.coords  # no explicit study effect
    theta, sigma, tau = -0.7, 0.6, 0.4
    point = _point(model, sigma=sigma, tau=tau)
    point["theta_grand_mean"] = np.array(theta)
    logp = model.compile_logp(vars=[model["y_marginal"], model["censored_changes"]], jacobian=False,
                              mode="FAST_COMPILE")(point)  # Python mode: no C compile

    def joint(u: float) -> float:
        exact = stats.norm(theta + u, sigma).pdf([-1.0, -0.4]).prod()
        return exact * stats.norm(theta + u, sigma).cdf(-1.5) * stats.norm(0, tau).pdf(u)

    assert logp == pytest.approx(np.log(integrate.quad(joint, -6, 6, epsabs=0)[0]), abs=1e-6)


def test_two_censored_rows_of_one_study_keep_an_explicit_study_effect():
    changes = change_frame([
        change_row("s", i, "tocilizumab", "IL-6", None, lower=-np.inf, upper=-1.5, censoring="left")
        for i in range(2)
    ], columns=CHANGE_COLUMNS)
    data = model_data(changes, tables.frame(tables.HARMONISED_SUMMARIES), SETTINGS)
    model = build_model(data, SETTINGS)
    assert list(model.coords["study_marker_explicit"]) == ["s|IL-6"]


def test_theta_has_the_prior_of_the_additive_form():
    """Prior draws of θ from the new coordinates and from the additive form (validation/
    legacy_build.py) have the same means and covariance over cells (marginal over σ_γ)."""
    summaries = summary_frame([
        summary_row(f"c{k}", intervention, marker, "change", n=20, effect_type="log_ratio", estimate=-0.5,
                    se=0.2, source_row=k + 2)
        for k, (intervention, marker) in enumerate(
            [("tocilizumab", "IL-6"), ("anakinra", "CRP"), ("emapalumab", "ferritin"), ("anakinra", "temperature")])
    ], columns=SUMMARY_COLUMNS)
    data = model_data(tables.frame(tables.CHANGES), summaries, SETTINGS)
    spec = importlib.util.spec_from_file_location("legacy_build", LEGACY_BUILD)
    legacy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(legacy)
    draws = 20000
    covariances = []
    for build in (build_model, legacy.build_model):
        prior = pm.sample_prior_predictive(draws=draws, model=build(data, SETTINGS), random_seed=3).prior
        theta = prior["theta"].stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy().reshape(draws, -1)
        assert np.abs(theta.mean(axis=0)).max() < 0.05
        covariances.append(np.cov(theta, rowvar=False))
    new, old = covariances
    assert np.abs(new - old).max() < 0.12  # each entry's Monte Carlo SD is about 0.02–0.03


def _point(model: pm.Model, *, sigma: float, tau: float) -> dict[str, np.ndarray]:
    point = {name: np.zeros_like(value) for name, value in model.initial_point().items()}
    point["sigma_softplus_variance__"] = np.full_like(point["sigma_softplus_variance__"], np.log(np.expm1(sigma**2)))
    point["tau_log__"] = np.full_like(point["tau_log__"], np.log(tau))
    return point


@pytest.mark.parametrize("sigma", [1e-3, 0.3, 1.0, 4.0])
def test_sigma_is_sampled_as_its_variance_through_a_softplus(sigma):
    """σ = √softplus(x): the inverse of x = log(expm1(σ²)), with log |dσ/dx| as the density needs."""
    from crsmeta.model.build import SoftplusVariance

    transform, x = SoftplusVariance(), np.log(np.expm1(sigma**2))
    assert float(transform.forward(pt.as_tensor(np.float64(sigma))).eval()) == pytest.approx(x, rel=1e-9)
    assert float(transform.backward(pt.as_tensor(np.float64(x))).eval()) == pytest.approx(sigma, rel=1e-9)
    step = 1e-6 * max(1.0, abs(x))
    slope = (np.sqrt(np.log1p(np.exp(x + step))) - np.sqrt(np.log1p(np.exp(x - step)))) / (2 * step)
    assert float(transform.log_jac_det(pt.as_tensor(np.float64(x))).eval()) == pytest.approx(np.log(slope), abs=1e-5)


def test_replicates_of_integrated_rows_have_the_groups_covariance_one_draw_or_many():
    """The rows' predictive, N(μ, diag(v) + τ²·11ᵀ) per group, drawn for many parameter draws at
    once (a leading batch dimension, as the posterior predictive draws them) as for one."""
    from crsmeta.model.build import _compound_symmetry_draws

    group = np.array([0, 0, 1, 2])
    mean, variance, tau2 = np.array([1.0, -1.0, 0.5, 2.0]), np.array([0.5, 1.0, 0.2, 0.3]), np.array([0.8, 0.1, 0.4])
    one = _compound_symmetry_draws(mean, variance, tau2, group, rng=np.random.default_rng(1))
    assert one.shape == (4,)
    n_draws = 40_000
    many = _compound_symmetry_draws(np.tile(mean, (n_draws, 1)), np.tile(variance, (n_draws, 1)),
                                    np.tile(tau2, (n_draws, 1)), group[None, :], rng=np.random.default_rng(2))
    assert many.shape == (n_draws, 4)
    expected = np.diag(variance) + tau2[group][:, None] * (group[:, None] == group[None, :])
    assert np.allclose(many.mean(axis=0), mean, atol=0.03)
    assert np.allclose(np.cov(many.T), expected, atol=0.04)


def test_one_row_known_by_its_sds_draws_in_pytensors_python_mode(tiny_changes):
    """A machine without a C compiler runs PyTensor's Python implementations: with exactly one
    summary row known by its SDs (the bundled data), setting that row's variance into the vector
    was refused there as runtime broadcasting, and the main fit's predictive draws failed."""
    summaries = summary_frame([
        summary_row("m", "tocilizumab", "CRP", "pre", value=100, spread_type="sd", spread=50, n=10),
        summary_row("m", "tocilizumab", "CRP", "post", value=40, spread_type="sd", spread=20, n=10),
        summary_row("k", "tocilizumab", "IL-6", "pre", value=300, n=12),
        summary_row("k", "tocilizumab", "IL-6", "post", value=90, n=12),
    ], columns=SUMMARY_COLUMNS)
    data = model_data(tiny_changes, summaries, SETTINGS)
    assert data.correlation_rows().size == 1 and len(data.observations) > 1
    # what PyTensor runs without a C compiler: its Python linker, and fusion within numpy's limit of
    # 32 operands a ufunc takes (PyTensor fuses up to 1024 where config.cxx names a compiler)
    with build_model(data, SETTINGS), pytensor.config.change_flags(cxx=""):
        python_mode = Mode(linker="py", optimizer="fast_run")
        prior = pm.sample_prior_predictive(draws=5, random_seed=1, compile_kwargs={"mode": python_mode})
    assert np.isfinite(prior.prior_predictive["y_marginal"].to_numpy()).all()


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_the_variance_of_a_difference_of_medians_or_means_matches_monte_carlo(rho):
    """Sample medians of correlated normals correlate by (2/π)·arcsin ρ, less than the means' ρ."""
    from crsmeta.model.build import pre_post_correlation, summary_change_variance

    n, d_pre, d_post, repeats = 201, 1.5, 1.0, 20000
    rng = np.random.default_rng(11)
    pre = rng.standard_normal((repeats, n))
    post = rho * pre + np.sqrt(1 - rho**2) * rng.standard_normal((repeats, n))
    pre, post = d_pre * pre, d_post * post
    for statistic, efficiency, medians in ((np.median, np.pi / 2, 1.0), (np.mean, 1.0, 0.0)):
        simulated = np.var(statistic(post, axis=1) - statistic(pre, axis=1))
        correlation = pre_post_correlation(pt.as_tensor(rho), medians, np.zeros((1, 21)), 0.0)
        derived = efficiency * summary_change_variance(d_pre, d_post, correlation).eval() / n
        assert derived == pytest.approx(simulated, rel=0.04)


@pytest.mark.parametrize("rho", [0.2, 0.5, 0.9])
def test_a_ratio_of_means_with_their_cvs_has_the_variance_of_patients_whose_log_levels_correlate_by_rho(rho):
    """ρ is the correlation of the patients' log levels for every row: a ratio of means, whose
    delta-method variance is in the levels' own correlation, converts it by the log-normal
    moments. Its variance then matches a Monte Carlo of log-normal patients, and the levels'
    correlation it implies is the one they have."""
    from crsmeta.model.build import log_normal_levels_correlation, summary_change_variance

    n, s_pre, s_post, repeats = 201, 0.9, 0.6, 20000
    rng = np.random.default_rng(12)
    z_pre = rng.standard_normal((repeats, n))
    z_post = rho * z_pre + np.sqrt(1 - rho**2) * rng.standard_normal((repeats, n))
    pre, post = np.exp(s_pre * z_pre), np.exp(0.3 + s_post * z_post)
    cv_pre, cv_post = np.sqrt(np.expm1(s_pre**2)), np.sqrt(np.expm1(s_post**2))
    correlation = log_normal_levels_correlation(pt.as_tensor(rho), cv_pre, cv_post).eval()
    assert correlation == pytest.approx(np.corrcoef(pre.ravel(), post.ravel())[0, 1], abs=0.01)
    simulated = np.var(np.log(post.mean(axis=1)) - np.log(pre.mean(axis=1)))
    assert summary_change_variance(cv_pre, cv_post, correlation) / n == pytest.approx(simulated, rel=0.04)


def test_means_of_a_log_ratio_marker_take_the_levels_correlation_and_with_both_sds_the_simulated_variance_too(
        tiny_changes):
    """The conversion of ρ is for the rows whose d are CVs, a ratio of means with SDs; a difference
    of temperatures with SDs subtracts ρ itself (°C is its levels' scale). Means with both sides'
    SDs, shifted by their CVs, average that variance with the one of the shifted ratio simulated
    at σ (crsmeta.cv_shift); the others take κ(n, λ, r) at their own r, which moves with ρ
    (crsmeta.mean_spread)."""
    from pytensor.graph.replace import graph_replace

    from crsmeta import mean_spread
    from crsmeta.model.build import _summary_moments

    summaries = summary_frame([
        summary_row("o", "tocilizumab", "CRP", "pre", value=100, spread_type="sd", spread=50, n=10),
        summary_row("o", "tocilizumab", "CRP", "post", value=40, n=10),
        summary_row("m", "tocilizumab", "CRP", "pre", value=100, spread_type="sd", spread=50, n=10),
        summary_row("m", "tocilizumab", "CRP", "post", value=40, spread_type="sd", spread=30, n=10),
        summary_row("t", "tocilizumab", "temperature", "pre", value=39.5, spread_type="sd", spread=0.6, n=10),
        summary_row("t", "tocilizumab", "temperature", "post", value=38.4, spread_type="sd", spread=0.5, n=10),
    ], columns=SUMMARY_COLUMNS)
    data = model_data(tiny_changes, summaries, SETTINGS)
    obs = data.observations
    sigma = 0.8
    with pm.Model(coords=data.coords) as model:
        _, variance, _ = _summary_moments(data, SETTINGS, pt.zeros(len(obs)),
                                          pt.fill(pt.ones(len(data.coords["marker"])), sigma))
        rho = pt.scalar("rho")
        variance_at = pytensor.function([rho], graph_replace(variance, {model["rho"]: rho}),
                                        mode=Mode(linker="py", optimizer="fast_compile"))  # no C compile
        at_rho = {value: variance_at(value) for value in (0.3, 0.6)}
    for study, rho in itertools.product(("o", "t"), (0.3, 0.6)):
        row = np.flatnonzero(obs["study_id"] == study)[0]
        d_pre, d_post, n = obs[["disp_pre", "disp_post", "n_effective"]].iloc[row]
        r = rho
        if study == "o":
            assert (d_pre, d_post) == pytest.approx((0.5, 0.5))  # the pre CV, for both sides
            s_pre, s_post = np.sqrt(np.log1p(d_pre**2)), np.sqrt(np.log1p(d_post**2))
            r = np.expm1(rho * s_pre * s_post) / (d_pre * d_post)
            assert r < rho
        inflation = mean_spread.mean_difference_inflation(n, d_pre, d_post, r)  # their d are the rows' own
        expected = inflation * (d_pre**2 + d_post**2 - 2 * r * d_pre * d_post) / n + obs["extra_var"].iloc[row]
        assert at_rho[rho][row] == pytest.approx(expected, rel=1e-9)
    row = np.flatnonzero(obs["study_id"] == "m")[0]
    d_pre, d_post, n = obs[["disp_pre", "disp_post", "n_effective"]].iloc[row]
    assert (d_pre, d_post) == pytest.approx((0.5, 0.75))  # CVs
    simulated = np.interp(sigma, cv_shift.SIGMA_GRID, cv_shift.cv_shift_tables(0.5, 10)[1])
    for rho in (0.3, 0.6):
        r = np.expm1(rho * np.sqrt(np.log1p(d_pre**2) * np.log1p(d_post**2))) / (d_pre * d_post)
        of_sds = (d_pre**2 + d_post**2 - 2 * r * d_pre * d_post) / n
        assert at_rho[rho][row] == pytest.approx((of_sds + simulated) / 2 + obs["extra_var"].iloc[row], rel=1e-9)
    # without such a mean (before the analysis' filters) the model has no term for it: the bundled
    # data's graph, and its compiled code, stay as they were
    temperature_only = model_data(tiny_changes, summaries[summaries["marker"] == "temperature"], SETTINGS)
    with pm.Model(coords=temperature_only.coords) as model:
        _summary_moments(temperature_only, SETTINGS, pt.zeros(len(temperature_only.observations)),
                         pt.ones(len(temperature_only.coords["marker"])))
    assert not {"summary_log_normal_means", "summary_shifted_by_cvs"} & set(model.named_vars)


@pytest.mark.parametrize(("spread", "n", "sigma"), [("iqr", 12, 0.3), ("iqr", 12, 1.0), ("range", 8, 1.0),
                                                     ("iqr", 30, 2.0)])
def test_a_change_of_medians_with_their_quantiles_has_the_variance_a_simulation_of_its_cohorts_gives(spread, n, sigma):
    """In small cohorts the asymptotic (π/2, arcsin ρ) variance of a change of medians overstates
    it (up to 2.5× at n = 12), and the dispersions read from the quantiles overstate s² on
    average: the model's row variance, at the patients' ρ, is unbiased for the simulated one.

    Cohorts as the simulator draws them: log levels Normal(0, 1.2²) before, plus Normal(0, σ²)
    changes independent of them (ρ = 1.2/√(1.2² + σ²)), medians and quantiles as numpy gives them."""
    from crsmeta.comparisons import log_sd_from_quantiles
    from crsmeta.model.build import pre_post_correlation, summary_change_variance

    rng = np.random.default_rng(5)
    pre = rng.normal(0.0, 1.2, (20000, n))
    post = pre + rng.normal(0.0, sigma, pre.shape)
    levels = [np.percentile(np.exp(side), median_spread.QUANTILES[spread], axis=1) for side in (pre, post)]
    y = np.log(levels[1][1] / levels[0][1])
    d_pre, d_post = (np.array([log_sd_from_quantiles(low, high, n, spread) for low, high in zip(side[0], side[2])])
                     for side in levels)
    rho = 1.2 / np.hypot(1.2, sigma)
    efficiency, correlation_table, _ = median_spread.median_difference_terms(n, spread)
    correlation = pre_post_correlation(pt.as_tensor(rho), 1.0, correlation_table[None, :], 1.0).eval()
    variance = efficiency * summary_change_variance(d_pre, d_post, correlation) / n
    assert variance.mean() == pytest.approx(y.var(), rel=0.05)
    asymptotic = np.pi / 2 * (d_pre**2 + d_post**2 - 4 / np.pi * np.arcsin(rho) * d_pre * d_post) / n
    assert asymptotic.mean() > 1.1 * y.var()


def test_each_row_known_by_its_dispersions_takes_the_finite_sample_terms_of_its_kind(tiny_changes):
    """The model picks the rows each set of simulated terms is for: medians with an IQR or range on
    both sides take efficiency(n)·κ(n) and r(n, ρ) (crsmeta.median_spread); means with SDs keep ρ
    and the means' efficiency, times κ(n, λ) at their n and SD ratio (crsmeta.mean_spread), except a
    log-ratio marker's means shifted by their CVs (half their variance simulated)."""
    from crsmeta import mean_spread
    from crsmeta.model.build import _median_difference_tables, _sd_inflation_tables
    from crsmeta.model.data import shifted_by_their_cvs, summary_medians

    quantiles = {"statistic": "median", "spread_type": "iqr"}
    summaries = summary_frame([
        summary_row("q", "tocilizumab", "IL-6", "pre", value=300, n=14, spread_low=100, spread_high=900, **quantiles),
        summary_row("q", "tocilizumab", "IL-6", "post", value=90, n=14, spread_low=20, spread_high=400, **quantiles),
        summary_row("m", "tocilizumab", "CRP", "pre", value=100, spread_type="sd", spread=50, n=6),
        summary_row("m", "tocilizumab", "CRP", "post", value=40, spread_type="sd", spread=10, n=6),
        summary_row("t", "tocilizumab", "temperature", "pre", value=39.5, spread_type="sd", spread=0.6, n=6),
        summary_row("t", "tocilizumab", "temperature", "post", value=38.4, spread_type="sd", spread=0.3, n=6),
    ], columns=SUMMARY_COLUMNS)
    obs = model_data(tiny_changes, summaries, SETTINGS).observations
    variance_factor, correlation, from_quantiles = _median_difference_tables(obs, summary_medians(obs))
    median_row = (obs["study_id"] == "q").to_numpy()
    np.testing.assert_array_equal(from_quantiles, median_row)
    efficiency, expected_correlation, inflation = median_spread.median_difference_terms(14, "iqr")
    assert variance_factor[median_row] == pytest.approx([efficiency * inflation])
    np.testing.assert_allclose(correlation[median_row][0], expected_correlation)
    assert np.isnan(variance_factor[~median_row]).all() and not correlation[~median_row].any()

    sd_inflation = _sd_inflation_tables(obs)
    temperature = (obs["study_id"] == "t").to_numpy()
    assert shifted_by_their_cvs(obs)[(obs["study_id"] == "m").to_numpy()].all()
    np.testing.assert_allclose(sd_inflation[temperature][0], mean_spread.inflation_by_correlation(6, 0.6, 0.3))
    assert (sd_inflation[~temperature] == 1.0).all()
    # unequal SDs (λ = 0.5) make the tail heavier than equal ones would, short of a t with n − 1 df
    at_half = mean_spread.mean_difference_inflation(6, 0.6, 0.3, 0.5)
    assert mean_spread.mean_difference_inflation(6, 1, 1, 0.5) < at_half < (2.571 / 1.96) ** 2
    # and a high r with them heavier still: the variance is then a small difference of two estimates
    assert mean_spread.mean_difference_inflation(6, 0.6, 0.3, 0.9) > 1.1 * at_half
    # κ(n, λ, r) is a term of the model only where a row before the analysis' filters takes it: the
    # bundled data's graph (medians with quantiles, no means with printed SDs) is as it was
    from crsmeta.model.build import _summary_moments

    for kept, has_term in ((summaries, True), (summaries[summaries["study_id"] != "t"], False)):
        data = model_data(tiny_changes, kept, SETTINGS)
        with pm.Model(coords=data.coords) as model:
            _summary_moments(data, SETTINGS, pt.zeros(len(data.observations)), pt.ones(len(data.coords["marker"])))
        assert ("summary_sd_inflation" in model.named_vars) is has_term


@pytest.mark.parametrize(("spread", "n", "rho"), [("iqr", 5, 0.5), ("iqr", 6, 0.8), ("range", 5, 0.3),
                                                   ("iqr", 10, 0.5)])
def test_a_change_of_medians_of_a_few_patients_has_a_95_percent_interval_that_covers_95_percent(spread, n, rho):
    """A row's variance comes from its own estimated quantiles, so y/√variance has a heavier tail
    than a normal's; times κ(n) the row's 95% interval covers 95% (86–93% without it), also at a
    ρ other than the one κ is simulated at. Fresh cohorts of standard normal pairs (s = 1)."""
    from crsmeta.comparisons import wan_denominator
    from crsmeta.model.build import pre_post_correlation, summary_change_variance

    rng = np.random.default_rng(11)
    pre, noise = rng.standard_normal((40000, n)), rng.standard_normal((40000, n))
    low, median_pre, high = np.percentile(pre, median_spread.QUANTILES[spread], axis=1)
    d_pre = (high - low) / wan_denominator(n, spread)
    low, median_post, high = np.percentile(rho * pre + np.sqrt(1 - rho**2) * noise, median_spread.QUANTILES[spread],
                                           axis=1)
    d_post = (high - low) / wan_denominator(n, spread)
    efficiency, correlation_table, inflation = median_spread.median_difference_terms(n, spread)
    correlation = pre_post_correlation(pt.as_tensor(rho), 1.0, correlation_table[None, :], 1.0).eval()
    z = (median_post - median_pre) / np.sqrt(efficiency * summary_change_variance(d_pre, d_post, correlation) / n)
    assert np.mean(np.abs(z) < 1.96) < 0.935
    assert np.mean(np.abs(z) < 1.96 * np.sqrt(inflation)) == pytest.approx(0.95, abs=0.01)


def _means_z_scores(n: int, sd_ratio: float, rho: float):
    """z-scores of changes of means of fresh cohorts of normal pairs (pre SD ``sd_ratio``, post SD
    1, correlation ``rho``) with the variance from their own SDs, and those SDs."""
    from crsmeta.model.build import summary_change_variance

    rng = np.random.default_rng(12)
    first, noise = rng.standard_normal((40000, n)), rng.standard_normal((40000, n))
    pre, post = sd_ratio * first, rho * first + np.sqrt(1 - rho**2) * noise
    d_pre, d_post = pre.std(axis=1, ddof=1), post.std(axis=1, ddof=1)
    z = (post.mean(axis=1) - pre.mean(axis=1)) / np.sqrt(summary_change_variance(d_pre, d_post, rho) / n)
    return z, d_pre, d_post


@pytest.mark.parametrize(("n", "sd_ratio", "rho"), [(4, 0.7, 0.7), (5, 1.0, 0.5), (5, 0.4, 0.4), (8, 0.5, 0.5),
                                                     (12, 0.7, 0.8), (5, 0.8, 0.1)])
def test_a_change_of_means_of_a_few_patients_has_a_95_percent_interval_that_covers_95_percent(n, sd_ratio, rho):
    """A row's variance comes from its own sample SDs, so y/√variance is t-like; times κ(n, λ, r)
    read at the row's own SD ratio and r (here ρ), the row's 95% interval covers 95% (88–93%
    without it)."""
    from crsmeta import mean_spread

    z, d_pre, d_post = _means_z_scores(n, sd_ratio, rho)
    inflation = mean_spread.mean_difference_inflation(n, d_pre, d_post, rho)
    assert np.mean(np.abs(z) < 1.96) < 0.94
    assert np.mean(np.abs(z) < 1.96 * np.sqrt(inflation)) == pytest.approx(0.95, abs=0.012)


@pytest.mark.parametrize(("n", "sd_ratio", "rho"), [(4, 0.5, 0.9), (5, 0.5, 0.9), (6, 0.3, 0.85), (10, 0.5, 0.9)])
def test_a_change_of_means_with_rho_far_above_its_sd_ratio_covers_with_kappa_read_at_its_own_rho(n, sd_ratio, rho):
    """Where ρ is far above λ the variance is a small difference of two estimates and its tail
    heavier: κ read at the row's r covers 93–95% (from the row's estimated λ, which at n = 4 is
    noisy), where κ simulated at ρ = 0.5 alone, as until 2026-12-08, covered 90.8–93.5%."""
    from crsmeta import mean_spread

    z, d_pre, d_post = _means_z_scores(n, sd_ratio, rho)
    coverage = {r: np.mean(np.abs(z) < 1.96 * np.sqrt(mean_spread.mean_difference_inflation(n, d_pre, d_post, r)))
                for r in (0.5, rho)}
    assert coverage[rho] == pytest.approx(0.95, abs=0.02)
    assert coverage[rho] > coverage[0.5] + 0.005


@pytest.mark.parametrize("n", [4, 6, 10])
def test_a_change_printed_with_its_se_enters_with_the_paired_t_width_its_ci_would_have(tiny_changes, n):
    """A reported change's SE is s/√n of its patients' changes, so y/SE is a t with n − 1 df: the
    model reads its SE² times κ(n) = (t₀.₉₇₅/1.96)², which covers 95% (86–92% without), as the
    same change printed with its paired-t 95% CI already did (the CI's half-width over 1.96)."""
    from crsmeta import mean_spread
    from scipy import stats

    rng = np.random.default_rng(13)
    changes = rng.standard_normal((40000, n))
    z = changes.mean(axis=1) / (changes.std(axis=1, ddof=1) / np.sqrt(n))
    inflation = mean_spread.reported_se_inflation(n)
    assert np.mean(np.abs(z) < 1.96) < 0.93
    assert np.mean(np.abs(z) < 1.96 * np.sqrt(inflation)) == pytest.approx(0.95, abs=0.005)

    half_width = stats.t.ppf(0.975, n - 1) * 0.2
    summaries = summary_frame([
        summary_row("se", "tocilizumab", "IL-6", "change", n=n, effect_type="log_ratio", estimate=-0.5, se=0.2),
        summary_row("ci", "tocilizumab", "CRP", "change", n=n, effect_type="log_ratio", estimate=-0.5,
                    ci_low=-0.5 - half_width, ci_high=-0.5 + half_width),
    ], columns=SUMMARY_COLUMNS)
    model = build_model(model_data(tiny_changes, summaries, SETTINGS), SETTINGS)
    np.testing.assert_allclose(model["summary_se_known"].get_value(), [half_width / 1.959964] * 2, rtol=1e-6)


def test_a_p_value_printed_as_greater_than_makes_its_row_less_likely_where_it_would_be_precise():
    """``p > x`` is the event se² ≥ floor: the row's likelihood is the integral above the floor,
    here checked against a numerical integral over se², and with a finite gradient."""
    shape, b, floor = 3.0, 0.4, 0.5
    y = 0.3

    def integral(x0: float) -> pt.TensorVariable:
        return _log_integrated_normal(np.array([y]), pt.zeros(1), pt.zeros(1), pt.as_tensor([b]),
                                      pt.as_tensor([x0]), shape)[0]

    above_floor = float(pm.math.logdiffexp(integral(0.0), integral(b / floor)).eval())

    def density(se2: float) -> float:
        return stats.norm(0.0, np.sqrt(se2)).pdf(y) * stats.invgamma(shape, scale=b).pdf(se2)

    assert above_floor == pytest.approx(np.log(integrate.quad(density, floor, np.inf, limit=200)[0]), abs=1e-6)

    # temperature's: a marker's "p > x" of two levels sets no floor (crsmeta.comparisons); a second
    # study's means (a learned-SE row in both tables): without it the unbounded row would be its
    # marker's only one, whose τ is integrated out in another term
    other = [summary_row("q", "tocilizumab", "temperature", "pre", value=39.8, n=10),
             summary_row("q", "tocilizumab", "temperature", "post", value=38.6, n=10)]
    summaries = summary_frame([
        summary_row("p", "tocilizumab", "temperature", "pre", value=39.5, p_value=0.5, p_relation=">", n=12),
        summary_row("p", "tocilizumab", "temperature", "post", value=39.2, p_value=0.5, p_relation=">", n=12),
        *other,
    ], columns=SUMMARY_COLUMNS)
    unbounded = summaries.assign(p_value=np.nan, p_relation="")
    values = []
    for table in (summaries, unbounded):
        model = build_model(model_data(tables.frame(tables.CHANGES), table, SETTINGS), SETTINGS)
        [potential] = model.replace_rvs_by_values([model["summary_learned_rows"]])  # at the values, not draws
        gradient = pt.grad(potential, model.value_vars, disconnected_inputs="ignore")
        logp, *gradient = model.compile_fn([potential, *gradient], mode=Mode("py", "fast_compile"))(model.initial_point())
        assert all(np.all(np.isfinite(g)) for g in gradient)
        values.append(float(logp))
    assert values[0] < values[1]


def test_a_mean_row_with_printed_sds_takes_its_shift_from_its_own_cvs_not_from_sigma(tiny_changes, monkeypatch):
    """Apart from the small-sample correction of its CV shift and half of its variance, simulated
    at σ[marker] (crsmeta.cv_shift), the row's term does not move with σ[marker] (its shift comes
    from its CVs, the other half of its variance from its SDs and ρ); the same row without SDs
    does. The tables are the row's own, from its pre CV and n."""
    quick = Mode(linker="py", optimizer="fast_compile")  # a few log densities: no C compile needed

    def sigma_effect(summaries: pd.DataFrame) -> float:
        model = build_model(model_data(tiny_changes, summaries, SETTINGS), SETTINGS)
        logp = model.compile_logp(mode=quick)
        return logp(_point(model, sigma=1.5, tau=0.5)) - logp(_point(model, sigma=0.3, tau=0.5))

    def with_row(spread: dict) -> pd.DataFrame:
        return summary_frame([summary_row("m", "tocilizumab", "IL-6", timepoint, value=value, n=40,
                                         **spread.get(timepoint, {}))
                             for timepoint, value in (("pre", 100), ("post", 40))], columns=SUMMARY_COLUMNS)

    printed = {"pre": {"spread_type": "sd", "spread": 150}, "post": {"spread_type": "sd", "spread": 20}}
    corrected = build_model(model_data(tiny_changes, with_row(printed), SETTINGS), SETTINGS)
    bias, variance = cv_shift.cv_shift_tables(1.5, 40)
    np.testing.assert_array_equal(corrected["summary_cv_shift_bias"].get_value(), [bias])
    np.testing.assert_array_equal(corrected["summary_cv_shift_variance"].get_value(), [variance])
    without = sigma_effect(tables.frame(tables.HARMONISED_SUMMARIES))
    assert abs(sigma_effect(with_row(printed)) - without) > 1e-3
    monkeypatch.setattr(cv_shift, "cv_shift_tables",
                        lambda cv_pre, n: np.stack([np.zeros_like(cv_shift.SIGMA_GRID), np.full_like(cv_shift.SIGMA_GRID, 0.1)]))
    assert sigma_effect(with_row(printed)) - without == pytest.approx(0.0, abs=1e-9)
    assert abs(sigma_effect(with_row({})) - without) > 0.1


def test_a_cohort_total_enters_as_its_effective_n(tiny_changes):
    """A row of a cohort of 38 with the value measured in an unknown 19 to 38 has exactly the
    likelihood of the same row from 1/E[1/m] patients all measured; the printed 38 would be
    too precise."""
    from crsmeta.comparisons import effective_n

    quick = Mode(linker="py", optimizer="fast_compile")

    def row_logp(n, flags: str) -> float:
        summaries = summary_frame([summary_row("z", "tocilizumab", "IL-6", timepoint, value=value, n=n, flags=flags)
                                  for timepoint, value in (("pre", 300), ("post", 90))], columns=SUMMARY_COLUMNS)
        model = build_model(model_data(tiny_changes, summaries, SETTINGS), SETTINGS)
        return float(model.compile_logp(mode=quick)(_point(model, sigma=0.8, tau=0.3)))

    n_effective = effective_n(38, cohort_total=True)
    assert row_logp(38, "n_is_cohort_total") == pytest.approx(row_logp(n_effective, ""), abs=1e-9)
    assert abs(row_logp(38, "n_is_cohort_total") - row_logp(38, "")) > 1e-3


def _alone_row_model(tiny_changes, settings: ModelSettings = SETTINGS) -> pm.Model:
    """SYNTHETIC: the case series of ``tiny_changes`` and one cohort's mean CRP before and after
    (no SDs, so its SE is learned), the only CRP row: τ[CRP] is integrated out in it."""
    summaries = summary_frame([summary_row("c", "tocilizumab", "CRP", timepoint, value=value, n=30)
                              for timepoint, value in (("pre", 120), ("post", 30))], columns=SUMMARY_COLUMNS)
    return build_model(model_data(tiny_changes, summaries, settings), settings)


# SYNTHETIC log ratios of CRP of a case report (the first) or a case series (all three)
ALONE_CRP_CHANGES = np.log([30 / 120, 45 / 150, 20 / 110])


def _alone_case_model(tiny_changes, settings: ModelSettings = SETTINGS, patients: int = 1) -> pm.Model:
    """SYNTHETIC: the case series of ``tiny_changes`` and the CRP changes of one case report
    (``patients`` = 1) or case series, the only CRP rows: τ[CRP] is integrated out of them."""
    report = change_frame([change_row("c", patient, "tocilizumab", "CRP", change)
                           for patient, change in enumerate(ALONE_CRP_CHANGES[:patients])])
    return build_model(model_data(pd.concat([tiny_changes, report], ignore_index=True),
                                  tables.frame(tables.HARMONISED_SUMMARIES), settings), settings)


# the kinds of rows whose τ is integrated out: each one's model, potential and kind's position
ALONE_ROWS = {"learned_se": (_alone_row_model, "summary_tau_integrated_rows", 0),
              "case_report": (_alone_case_model, "case_tau_integrated_rows", 1),
              "case_series": (functools.partial(_alone_case_model, patients=3), "case_tau_integrated_rows", 1)}


def _row_log_likelihood_in_tau(model: pm.Model, point: dict):
    """The CRP row's log-likelihood as a function of τ[CRP], the other parameters at ``point``:
    its study's term of the per-study log-likelihood (taken at the draw's τ)."""
    expression, studies = study_log_likelihood(model)
    [expression] = model.replace_rvs_by_values([expression])
    function = model.compile_fn(expression[studies.index("c")], mode=Mode("py", "fast_compile"))
    crp = model.coords["marker"].index("CRP")

    def at(tau: float) -> float:
        log_tau = point["tau_log__"].copy()
        log_tau[crp] = np.log(tau)
        return float(function({**point, "tau_log__": log_tau}))
    return at


@pytest.mark.parametrize("tau_prior", ["gamma", "halfnormal"])
@pytest.mark.parametrize("kind", ALONE_ROWS)
def test_tau_of_a_marker_known_by_one_row_is_integrated_out_exactly(tiny_changes, tau_prior, kind):
    """The log density has ∫ p(τ) L(τ) dτ for the row, a learned-SE summary row or an exact case
    change (checked against quadrature over τ of its likelihood at each τ, whose se² integral the
    tests above check; the grids, coarse by design, keep the error below 2e-4) under either τ
    prior; τ[CRP] itself is free of it. The other kind has no rows."""
    settings = SETTINGS.replace(tau_prior=tau_prior)
    build, potential_name, position = ALONE_ROWS[kind]
    # the two temperature changes of tiny_changes' s1 are a case series of their own marker
    model = build(tiny_changes[tiny_changes["marker"] != "temperature"], settings)
    [integrated] = integrated_tau(model)  # the other kind has no rows, so no term
    assert integrated.prefix == INTEGRATED_TAU_DRAW_PREFIXES[position]
    assert [model.coords["marker"][m] for m in integrated.markers] == ["CRP"]
    point = _point(model, sigma=0.7, tau=0.4)
    point["theta_grand_mean"] = np.array(-0.9)
    [potential] = model.replace_rvs_by_values([model[potential_name]])
    integrated = float(model.compile_fn(potential, mode=Mode("py", "fast_compile"))(point))
    row = _row_log_likelihood_in_tau(model, point)
    prior = {"gamma": stats.gamma(2.0, scale=settings.tau_sd / 2.0),  # Gamma(2, 2/scale)
             "halfnormal": stats.halfnorm(scale=settings.tau_sd)}[tau_prior]
    expected = np.log(integrate.quad(lambda t: prior.pdf(t) * np.exp(row(t)), 0, np.inf, limit=200, epsabs=0)[0])
    assert integrated == pytest.approx(expected, abs=2e-4)  # coarse grids by design (tau_log_grid)
    crp = model.coords["marker"].index("CRP")
    moved = {**point, "tau_log__": np.where(np.arange(point["tau_log__"].size) == crp, np.log(2.0), point["tau_log__"])}
    assert float(model.compile_fn(potential, mode=Mode("py", "fast_compile"))(moved)) == pytest.approx(integrated, abs=1e-12)


@pytest.mark.parametrize("kind", ALONE_ROWS)
def test_draws_of_an_integrated_tau_follow_its_conditional_posterior(tiny_changes, kind):
    """Given the other parameters, the τ drawn after sampling has the distribution p(τ) L(τ)
    normalised (Kolmogorov–Smirnov against its quadrature CDF, 4000 draws at one point)."""
    import arviz as az

    from crsmeta.model.integrated_tau import draw_integrated_tau

    model = ALONE_ROWS[kind][0](tiny_changes[tiny_changes["marker"] != "temperature"])
    point = _point(model, sigma=0.7, tau=0.4)
    point["theta_grand_mean"] = np.array(-0.9)
    # a draw as the sampler writes it: free variables and the deterministics τ's draws read
    recorded = model.free_RVs + [variable for variable in model.deterministics
                                 if variable.name.startswith(INTEGRATED_TAU_DRAW_PREFIXES)]
    constrained = {rv.name: value for rv, value in zip(recorded, model.compile_fn(
        model.replace_rvs_by_values(recorded), mode=Mode("py", "fast_compile"))(point))}
    draws = 4000
    idata = az.from_dict(posterior={name: np.broadcast_to(value, (1, draws, *np.shape(value))).copy()
                                    for name, value in constrained.items()})
    crp = model.coords["marker"].index("CRP")
    tau = draw_integrated_tau(idata, model, seed=3).posterior["tau"].values[..., crp].ravel()
    row = _row_log_likelihood_in_tau(model, point)
    prior = stats.gamma(2.0, scale=SETTINGS.tau_sd / 2.0)
    grid = np.exp(np.linspace(np.log(1e-4), np.log(10.0), 800))
    density = prior.pdf(grid) * np.exp([row(t) for t in grid])
    cdf = np.concatenate([[0.0], np.cumsum(np.diff(grid) * (density[1:] + density[:-1]) / 2)])
    assert stats.kstest(tau, lambda t: np.interp(t, grid, cdf / cdf[-1])).pvalue > 0.01
    assert not any(name.startswith(INTEGRATED_TAU_DRAW_PREFIXES) for name in idata.posterior.data_vars)
    other = model.coords["marker"].index("IL-6")
    assert np.all(idata.posterior["tau"].values[..., other] == constrained["tau"][other])


@pytest.mark.parametrize("tau", [0.01, 0.4, 3.0])
def test_a_case_series_alone_in_its_marker_keeps_the_multivariate_normal_likelihood(tiny_changes, tau):
    """Split into its τ-free part and its mean's term, a one-study marker's case series still has
    the likelihood of its rows, N(θ1, σ²I + τ²11ᵀ), at every τ (scipy's multivariate normal)."""
    model = _alone_case_model(tiny_changes[tiny_changes["marker"] != "temperature"], patients=3)
    point = _point(model, sigma=0.7, tau=0.4)
    point["theta_grand_mean"] = np.array(-0.9)
    theta = model.compile_fn(model.replace_rvs_by_values([model["theta"]])[0], inputs=model.value_vars,
                             on_unused_input="ignore", mode=Mode("py", "fast_compile"))(point)
    cell = theta[model.coords["intervention"].index("tocilizumab"), model.coords["marker"].index("CRP")]
    covariance = 0.7**2 * np.eye(3) + tau**2 * np.ones((3, 3))
    expected = stats.multivariate_normal(np.full(3, cell), covariance).logpdf(ALONE_CRP_CHANGES)
    assert _row_log_likelihood_in_tau(model, point)(tau) == pytest.approx(expected, abs=1e-10)


def test_the_prior_draws_carry_no_values_recorded_for_the_tau_draws(tiny_changes):
    """What each posterior draw records for τ's draws (IntegratedTau.draw_values) is dropped
    from the prior group too: the prior predictive would otherwise keep a copy per prior draw."""
    import arviz as az

    from crsmeta.model.sample import add_predictive

    model = _alone_row_model(tiny_changes)
    point = _point(model, sigma=0.7, tau=0.4)
    constrained = {rv.name: value for rv, value in zip(model.free_RVs, model.compile_fn(
        model.replace_rvs_by_values(model.free_RVs), mode=Mode("py", "fast_compile"))(point))}
    idata = az.from_dict(posterior={name: np.broadcast_to(value, (1, 5, *np.shape(value))).copy()
                                    for name, value in constrained.items()})
    idata = add_predictive(idata, model, SETTINGS.replace(prior_draws=5))
    assert "tau" in idata.prior
    assert not any(name.startswith(INTEGRATED_TAU_DRAW_PREFIXES) for name in idata.prior.data_vars)


@pytest.mark.parametrize("statistic", ["mean", "median"])
def test_a_ratio_of_two_cohorts_levels_keeps_the_baseline_spread_in_its_shift_and_its_learned_se(statistic):
    """A row of two cohort means (or medians) without spread: its log ratio is centred on
    θ + σ²/2 + b(s, σ, n) (θ for medians) and its se² on Var(s, σ, n) of crsmeta.cohort_log_ratio,
    at s = baseline_sd[marker] and σ; formerly on θ + σ²/2 and σ²/n (π/2·σ²/n for medians), which
    left out the baseline's spread that a ratio of two cohorts' summaries does not cancel."""
    from crsmeta import cohort_log_ratio

    summaries = summary_frame([summary_row(study, "tocilizumab", "IL-6", timepoint, value=value, n=12, statistic=statistic)
                               for study, (pre, post) in (("a", (300, 90)), ("b", (500, 250)))
                               for timepoint, value in (("pre", pre), ("post", post))], columns=SUMMARY_COLUMNS)
    model = build_model(model_data(tables.frame(tables.CHANGES), summaries, SETTINGS), SETTINGS)
    assert model.coords["baseline_marker"] == ("IL-6",)
    sigma, tau, s = 0.8, 0.3, 1.0  # s: baseline_sd at the zero of its log transform
    [potential] = model.replace_rvs_by_values([model["summary_learned_rows"]])
    logp = float(model.compile_fn(potential, mode=Mode("py", "fast_compile"))(_point(model, sigma=sigma, tau=tau)))

    bias_table, variance_table = cohort_log_ratio.ratio_tables(12, medians=statistic == "median")
    shift = (sigma**2 / 2 + sigma**2 * cohort_log_ratio.table_at(bias_table, s, sigma)) if statistic == "mean" else 0.0
    shape = SETTINGS.row_variance_shape
    b = (shape - 1) * sigma**2 * cohort_log_ratio.table_at(variance_table, s, sigma)

    def row_likelihood(y: float) -> float:  # ∫ N(y; θ + shift, se² + τ²) InverseGamma(se²; a, b) dse², θ = 0 here
        return integrate.quad(lambda v: stats.norm.pdf(y, shift, np.sqrt(v + tau**2)) * stats.invgamma.pdf(v, shape, scale=b),
                              0, np.inf, limit=200)[0]

    expected = sum(np.log(row_likelihood(np.log(post / pre))) for pre, post in ((300, 90), (500, 250)))
    assert logp == pytest.approx(expected, abs=1e-3)


def test_temperatures_difference_of_two_medians_keeps_the_baseline_spread_in_its_learned_se():
    """Two cohorts' median temperatures without spread: median(pre + d) − median(pre) is not the
    median of the changes, so its se² is centred on Var(s, σ, n) of the medians' table at
    s = baseline_sd[temperature] (prior mean temp_baseline_sd, °C) and σ; formerly on π/2·σ²/n,
    which left the baseline's spread out. A difference of means (the mean of the differences)
    still cancels it."""
    from crsmeta import cohort_log_ratio
    from crsmeta.model.build import baseline_sd_prior_mean

    values = (("a", (39.6, 38.1)), ("b", (40.1, 38.9)))
    summaries = summary_frame([summary_row(study, "tocilizumab", "temperature", timepoint, value=value, n=12, statistic="median")
                               for study, (pre, post) in values
                               for timepoint, value in (("pre", pre), ("post", post))], columns=SUMMARY_COLUMNS)
    model = build_model(model_data(tables.frame(tables.CHANGES), summaries, SETTINGS), SETTINGS)
    assert model.coords["baseline_marker"] == ("temperature",)
    settings = SETTINGS.replace(temp_baseline_sd=0.7)
    assert baseline_sd_prior_mean(["IL-6", "temperature"], settings).tolist() == [SETTINGS.baseline_sd, 0.7]
    sigma, tau, s = 0.8, 0.3, 1.0  # s: baseline_sd at the zero of its log transform
    [potential] = model.replace_rvs_by_values([model["summary_learned_rows"]])
    logp = float(model.compile_fn(potential, mode=Mode("py", "fast_compile"))(_point(model, sigma=sigma, tau=tau)))

    shape = SETTINGS.row_variance_shape
    b = (shape - 1) * sigma**2 * cohort_log_ratio.table_at(cohort_log_ratio.median_ratio_variance_table(12), s, sigma)

    def row_likelihood(y: float) -> float:  # ∫ N(y; θ, se² + τ²) InverseGamma(se²; a, b) dse², θ = 0 here
        return integrate.quad(lambda v: stats.norm.pdf(y, 0.0, np.sqrt(v + tau**2)) * stats.invgamma.pdf(v, shape, scale=b),
                              0, np.inf, limit=200)[0]

    expected = sum(np.log(row_likelihood(post - pre)) for _, (pre, post) in values)
    assert logp == pytest.approx(expected, abs=1e-3)


def test_rows_that_print_their_spread_or_a_mean_log_ratio_have_no_baseline_sd(tiny_changes):
    """The baseline's spread enters only rows that are a ratio of two levels' summaries with no
    spread printed: means with SDs on both sides take theirs from their CVs (crsmeta.cv_shift),
    a printed mean log ratio is θ's own scale, temperature's difference of means is the mean of
    its differences."""
    summaries = summary_frame([
        *[summary_row("m", "tocilizumab", "IL-6", timepoint, value=value, spread_type="sd", spread=spread, n=20)
          for timepoint, value, spread in (("pre", 300, 200), ("post", 90, 50))],
        *[summary_row("t", "tocilizumab", "temperature", timepoint, value=value, n=20)
          for timepoint, value in (("pre", 39.5), ("post", 38.0))],
    ], columns=SUMMARY_COLUMNS)
    model = build_model(model_data(tiny_changes, summaries, SETTINGS), SETTINGS)
    assert "baseline_sd" not in model.named_vars


def _il6_cohorts_and_case_series(pre_values, pre_censoring=None):
    """SYNTHETIC: two cohorts' IL-6 means without spread (they read s[IL-6]) and a case series
    printing its patients' IL-6 before and after tocilizumab (levels ``pre_values``)."""
    summaries = summary_frame([summary_row(study, "tocilizumab", "IL-6", timepoint, value=value, n=12)
                               for study, (pre, post) in (("a", (300, 90)), ("b", (500, 250)))
                               for timepoint, value in (("pre", pre), ("post", post))], columns=SUMMARY_COLUMNS)
    censoring = pre_censoring or ["none"] * len(pre_values)
    changes = change_frame([change_row("c", patient, "tocilizumab", "IL-6", -1.0 + 0.1 * patient, pre_value=pre,
                                       post_value=pre * 0.3, pre_censoring=code, post_censoring="none")
                            for patient, (pre, code) in enumerate(zip(pre_values, censoring))], columns=CHANGE_COLUMNS)
    return changes, summaries


def test_a_case_series_levels_before_the_intervention_inform_the_baseline_sd():
    """A study printing its patients' levels gives s[marker] data: the sum of squares of their log
    levels about the study's mean is s²·χ²(n − 1), whatever that mean. Formerly s learned only
    from the rows whose variance it widens, so its posterior was nearly its prior."""
    levels = [120.0, 800.0, 2500.0, 60.0]
    changes, summaries = _il6_cohorts_and_case_series(levels)
    model = build_model(model_data(changes, summaries, SETTINGS), SETTINGS)
    assert model.coords["baseline_spread_group"] == ("c|IL-6",)
    s = 1.0  # baseline_sd at the zero of its log transform
    term = model.logp(vars=[model["baseline_spread"]], sum=True)
    logp = float(model.compile_fn(term, mode=Mode("py", "fast_compile"))({"baseline_sd_log__": np.zeros(1)}))
    log_levels = np.log(levels)
    sum_of_squares = float(((log_levels - log_levels.mean()) ** 2).sum())
    assert logp == pytest.approx(stats.chi2.logpdf(sum_of_squares / s**2, df=len(levels) - 1) - 2 * np.log(s), abs=1e-9)


@pytest.mark.parametrize("case", ["censored", "one patient", "equal levels", "no summary reads s"])
def test_levels_that_cannot_say_how_spread_they_are_give_no_baseline_spread_term(case):
    """A censored level among a study's patients (dropping it would shrink the spread), a single
    patient, levels equal as printed, or a marker without s: no term."""
    levels, codes = {"censored": ([120.0, 5.0, 900.0], ["none", "left", "none"]), "one patient": ([120.0], None),
                     "equal levels": ([120.0, 120.0], None), "no summary reads s": ([120.0, 800.0], None)}[case]
    changes, summaries = _il6_cohorts_and_case_series(levels, codes)
    if case == "no summary reads s":
        summaries = summaries.assign(marker="ferritin")
    model = build_model(model_data(changes, summaries, SETTINGS), SETTINGS)
    assert "baseline_spread" not in model.named_vars


def test_an_analysis_leaving_the_case_series_out_keeps_the_baseline_spread_term_empty():
    """As every other term: the main model's structure (and compiled code) in an analysis that
    leaves the rows out, with no values."""
    changes, summaries = _il6_cohorts_and_case_series([120.0, 800.0, 2500.0])
    settings = SETTINGS.replace(exclude_studies=("c",))
    model = build_model(model_data(changes, summaries, settings), settings)
    assert model.coords["baseline_spread_group"] == ()
