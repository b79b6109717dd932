"""Sensitivity analyses from the main draws: which analyses qualify, the per-study log-likelihood
the weights come from, PSIS on a prior whose answer is known, and the route written in the tables.
Reweighted against refitted estimates on the bundled data: validation/reweighting.py."""

import arviz as az
import numpy as np
import pandas as pd
import pytest

from conftest import model_data

from crsmeta import tables
from crsmeta.comparisons import summary_comparisons
from crsmeta.io import write_netcdf
from crsmeta.model import ModelSettings, fit_analysis
from crsmeta.model.analyses import PARETO_K_MAX, analysis_settings, fit_priority, reweighting_of
from crsmeta.model.build import BASELINE_MARKER, build_model, study_log_likelihood
from crsmeta.model.over_draws import DRAWS_PER_BLOCK
from crsmeta.model.reweight import (
    REWEIGHTED, SAMPLED, MainFit, add_study_log_likelihood, log_weights, model_change, reweight,
    reweight_main,
)
from mock_sampler.prior_draws import prior_draws_as_posterior
from typed_tables import typed_changes, typed_summaries


@pytest.fixture
def tiny_changes(tiny_changes: pd.DataFrame) -> pd.DataFrame:
    """conftest's changes typed by their contract, as the model reads them."""
    return typed_changes(tiny_changes)


@pytest.fixture
def tiny_summaries(tiny_summaries: pd.DataFrame) -> pd.DataFrame:
    """conftest's summaries typed by their contract, as the changes stage reads them."""
    return typed_summaries(tiny_summaries)


FAST = ModelSettings(chains=2, draws=100, tune=100, cores=2, prior_draws=50, gate=False)


def test_only_a_left_out_study_the_priors_of_tau_and_rho_and_row_filters_are_reweightings():
    analyses = analysis_settings(FAST, {}, ["s1", "s2"])
    routes = {name: reweighting_of(FAST, settings) for name, settings in analyses.items()}
    assert routes["loo_s1"].left_out == "s1" and routes["loo_s1"].prior_fields == ()
    assert routes["tau_prior_half"].prior_fields == ("tau_sd", "temp_tau_sd")
    assert routes["sigma_prior_double"].prior_fields == ("sigma_sd", "temp_sigma_sd", "baseline_sd", "temp_baseline_sd")
    assert routes["corr_low"].prior_fields == ("corr_prior",) and routes["corr_low"].left_out is None
    assert routes["no_digitised"].row_filters == ("exclude_digitised",) and routes["no_digitised"].left_out is None
    for name in ("case_only", "summary_only", "student_t"):
        assert routes[name] is None, name
    assert reweighting_of(FAST, FAST.replace(exclude_studies=("s1", "s2"))) is None
    assert reweighting_of(FAST, FAST.replace(cores=1)).left_out is None  # how a job runs is no change


def test_a_run_starts_the_main_fit_then_the_structures_of_their_own_then_the_fits_that_reuse_its_code():
    analyses = analysis_settings(FAST, {}, ["s1", "s2"], contributing=["s1", "s2"])
    priorities = {name: fit_priority(name, FAST, settings) for name, settings in analyses.items()}
    assert priorities["main"] == 3
    assert {name for name, priority in priorities.items() if priority == 2} == {"student_t", "baseline_adjusted"}
    assert {name for name, priority in priorities.items() if priority == 1} == {"case_only", "summary_only"}
    assert priorities["loo_s1"] == priorities["tau_prior_half"] == priorities["no_digitised"] == 0


@pytest.mark.parametrize("likelihood", ["normal", "student_t"])
def test_the_study_log_likelihoods_sum_to_the_models_log_likelihood(tiny_changes, tiny_summaries, likelihood):
    """Every route (marginal Gaussian groups, conditional and Student-t rows, censored and
    learned-SE rows) contributes to exactly one study, and nothing is counted twice."""
    settings = FAST.replace(likelihood=likelihood)
    data = model_data(tiny_changes, tiny_summaries, settings)
    model = build_model(data, settings)
    per_study, studies = study_log_likelihood(model)
    assert studies == ["c1", "s1", "s2", "t1"]
    likelihood_terms = model.logp(vars=model.observed_RVs + model.potentials)
    [total, by_study] = model.replace_rvs_by_values([likelihood_terms, per_study])
    function = model.compile_fn([total, by_study], inputs=model.value_vars, point_fn=False, on_unused_input="ignore",
                                mode="FAST_COMPILE")  # Python ops: no C compile for three evaluations
    rng = np.random.default_rng(3)
    for _ in range(3):
        point = {name: value + 0.5 * rng.standard_normal(value.shape) for name, value in model.initial_point().items()}
        model_value, study_values = function(*[point[v.name] for v in model.value_vars])
        assert np.all(np.isfinite(study_values)) and np.all(study_values != 0)
        assert float(np.sum(study_values)) == pytest.approx(float(model_value), rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("likelihood", ["normal", "student_t"])
def test_the_study_log_likelihood_of_all_draws_at_once_is_that_of_each_draw(tiny_changes, tiny_summaries, likelihood):
    """add_study_log_likelihood evaluates the graph vectorised over the draws, in blocks: each
    draw's values are those of the graph at that draw alone, in the draw's own place."""
    settings = FAST.replace(likelihood=likelihood)
    model = build_model(model_data(tiny_changes, tiny_summaries, settings), settings)
    idata = prior_draws_as_posterior(draws=DRAWS_PER_BLOCK + 7, chains=2, random_seed=4, model=model)
    add_study_log_likelihood(idata, model)
    per_study, _ = study_log_likelihood(model)
    one_draw = model.compile_fn(per_study, inputs=model.free_RVs, point_fn=False, on_unused_input="ignore",
                                mode="FAST_COMPILE")
    for chain, draw in ((0, 0), (0, DRAWS_PER_BLOCK + 6), (1, 3), (1, DRAWS_PER_BLOCK)):
        point = [idata.posterior[rv.name].sel(chain=chain, draw=draw).to_numpy() for rv in model.free_RVs]
        expected = one_draw(*point)
        written = idata.log_likelihood["study"].sel(chain=chain, draw=draw).to_numpy()
        np.testing.assert_allclose(written, expected, rtol=1e-12, atol=1e-12)


def test_halving_the_tau_prior_reweights_draws_of_the_old_prior_into_the_new_one(tiny_changes, tiny_summaries):
    """With no likelihood, draws of Gamma(2, 2/0.5) weighted by the prior ratio are Gamma(2, 2/0.25)."""
    data = model_data(tiny_changes, tiny_summaries, FAST)
    n_markers = len(data.coords["marker"])
    tau = np.random.default_rng(5).gamma(2.0, 0.5 / 2.0, size=(4, 2000, n_markers))
    main = az.from_dict(posterior={"tau": tau}, coords={"marker": data.coords["marker"]}, dims={"tau": ["marker"]})
    halved = FAST.replace(tau_sd=0.25, temp_tau_sd=0.25)
    weights = log_weights(main, data, FAST, halved, reweighting_of(FAST, halved))
    result = reweight(main, weights, halved, main_ess=tau[..., 0].size)
    assert result.pareto_k < PARETO_K_MAX and not result.refit_reason
    reweighted = result.idata.posterior["tau"].to_numpy().reshape(-1, n_markers)
    assert reweighted.mean(axis=0) == pytest.approx(np.full(n_markers, 0.25), rel=0.06)


def test_halving_the_spread_priors_reweights_draws_of_the_old_priors_into_the_new_ones(tiny_changes, tiny_summaries):
    """With no likelihood, draws of σ's and s's Gamma(2, 2/mean) weighted by the prior ratios
    have the halved means (sigma_prior_half rescales both)."""
    data = model_data(tiny_changes, tiny_summaries, FAST)
    n_markers = len(data.coords["marker"])
    rng = np.random.default_rng(6)
    sigma = rng.gamma(2.0, FAST.sigma_sd / 2.0, size=(4, 2000, n_markers))
    baseline_sd = rng.gamma(2.0, FAST.baseline_sd / 2.0, size=(4, 2000, 1))  # one marker's s
    main = az.from_dict(posterior={"sigma": sigma, "baseline_sd": baseline_sd},
                        coords={"marker": data.coords["marker"], BASELINE_MARKER: ["IL-6"]},
                        dims={"sigma": ["marker"], "baseline_sd": [BASELINE_MARKER]})
    halved = analysis_settings(FAST, {}, [])["sigma_prior_half"]
    assert FAST.temp_sigma_sd == FAST.sigma_sd  # one prior mean for every marker of this draw
    assert halved.baseline_sd == FAST.baseline_sd / 2
    result = reweight(main, log_weights(main, data, FAST, halved, reweighting_of(FAST, halved)), halved,
                      main_ess=sigma[..., 0].size)
    assert result.pareto_k < PARETO_K_MAX and not result.refit_reason
    reweighted = result.idata.posterior
    assert reweighted["sigma"].to_numpy().reshape(-1, n_markers).mean(axis=0) == pytest.approx(
        np.full(n_markers, FAST.sigma_sd / 2), rel=0.06)
    assert reweighted["baseline_sd"].to_numpy().mean() == pytest.approx(FAST.baseline_sd / 2, rel=0.06)


def test_doubling_it_is_refitted_when_the_weights_have_a_heavy_tail(tiny_changes, tiny_summaries):
    """The opposite direction: the ratio exp(2τ) has no finite variance under the old prior."""
    data = model_data(tiny_changes, tiny_summaries, FAST)
    tau = np.random.default_rng(5).gamma(2.0, 0.5 / 2.0, size=(4, 2000, len(data.coords["marker"])))
    main = az.from_dict(posterior={"tau": tau}, coords={"marker": data.coords["marker"]}, dims={"tau": ["marker"]})
    doubled = FAST.replace(tau_sd=1.0, temp_tau_sd=1.0)
    result = reweight(main, log_weights(main, data, FAST, doubled, reweighting_of(FAST, doubled)), doubled,
                      main_ess=tau[..., 0].size)
    assert result.refit_reason


def test_a_left_out_study_is_reweighted_or_refitted_and_the_tables_say_which(mock_sampling, tiny_changes,
                                                                               tiny_summaries):
    """Mocked sampler: the route, k̂ and note reach the effects and the diagnostics' fit row; a
    study whose absence changes the model (s2 holds the only graded patients) is refitted. (One
    that holds the only rows of a level, such as t1 the only second population, leaves that
    level with its prior: no change to the model, crsmeta.model.data.ModelData.)"""
    graded = FAST.replace(baseline_grade=True)
    changes = tiny_changes.assign(astct_grades=np.where(tiny_changes["study_id"] == "s2", "3|4", ""))
    main = _passing_main(fit_analysis(changes, summary_comparisons(tiny_summaries)[0], graded), graded)
    without_s2 = fit_analysis(changes, summary_comparisons(tiny_summaries)[0], graded.replace(exclude_studies=("s2",)),
                              "loo_s2", main=main)
    assert without_s2.route == SAMPLED and "baseline-grade covariate switched off" in without_s2.route_note

    with_populations = FAST.replace(population=True)
    main = _passing_main(fit_analysis(tiny_changes, summary_comparisons(tiny_summaries)[0], with_populations), with_populations)
    without_t1 = model_data(tiny_changes, tiny_summaries, with_populations.replace(exclude_studies=("t1",)))
    assert without_t1.use_population and not model_change(main.data, without_t1, "t1")

    without_s2 = fit_analysis(tiny_changes, summary_comparisons(tiny_summaries)[0], with_populations.replace(exclude_studies=("s2",)),
                              "loo_s2", main=main)
    assert set(without_s2.effects["route"]) == {without_s2.route}
    fit_row = without_s2.diagnostics[without_s2.diagnostics["kind"] == "fit"].iloc[0]
    assert fit_row["route"] == without_s2.route and np.isfinite(fit_row["pareto_k"])
    assert "plasma_exchange" not in set(without_s2.effects["intervention"])
    if without_s2.route == REWEIGHTED:
        assert without_s2.idata.posterior.sizes["chain"] == 1
    else:
        assert fit_row["route_note"].startswith("sampled, not reweighted")


def test_no_digitised_is_the_main_posterior_where_no_digitised_row_reaches_the_model(
        mock_sampling, tiny_changes, tiny_summaries):
    """Mocked sampler: without digitised rows the analysis takes the main draws as they are; with
    one it is refitted, and the note says how many rows the filter drops."""
    settings = FAST.replace(ess_min=50)  # the mocked draws' ESS
    no_digitised = settings.replace(exclude_digitised=True)
    main = _passing_main(fit_analysis(tiny_changes, summary_comparisons(tiny_summaries)[0], settings), settings)
    same = fit_analysis(tiny_changes, summary_comparisons(tiny_summaries)[0], no_digitised, "no_digitised", main=main)
    assert same.route == REWEIGHTED and same.pareto_k == float("-inf")
    assert "constant weights" in same.route_note

    digitised = tiny_changes.assign(digitised=tiny_changes["patient_id"] == tiny_changes["patient_id"].iloc[0])
    main = _passing_main(fit_analysis(digitised, summary_comparisons(tiny_summaries)[0], settings), settings)
    refitted = fit_analysis(digitised, summary_comparisons(tiny_summaries)[0], no_digitised, "no_digitised", main=main)
    dropped = int((digitised["patient_id"] == digitised["patient_id"].iloc[0]).sum())
    assert refitted.route == SAMPLED
    assert f"exclude_digitised drops {dropped} of the main model's rows" in refitted.route_note


def test_a_main_fit_that_lists_gate_failures_is_not_reweighted_even_with_the_gate_off(
        mock_sampling, tiny_changes, tiny_summaries):
    """Prior draws fail R-hat and ESS; with ``gate: false`` they are written, but not reused."""
    main_result = fit_analysis(tiny_changes, summary_comparisons(tiny_summaries)[0], FAST)
    assert main_result.diagnostics.loc[main_result.diagnostics["kind"] == "fit", "gate_failures"].iloc[0]
    main = MainFit(idata=main_result.idata, data=main_result.data, settings=FAST, diagnostics=main_result.diagnostics)
    result = fit_analysis(tiny_changes, summary_comparisons(tiny_summaries)[0], FAST.replace(tau_sd=0.25), "tau_prior_half", main=main)
    assert result.route == SAMPLED and "did not pass the diagnostics gate" in result.route_note


def _passing_main(result, settings: ModelSettings) -> MainFit:
    """The mocked main fit as if its draws had passed the gate (for the routing, not the numbers)."""
    diagnostics = result.diagnostics.copy()
    is_fit = diagnostics["kind"] == "fit"
    diagnostics.loc[is_fit, ["gate", "gate_failures"]] = ["passed", ""]
    return MainFit(idata=result.idata, data=result.data, settings=settings, diagnostics=diagnostics)


def test_the_study_log_likelihood_is_written_with_the_main_draws(mock_sampling, tiny_changes, tiny_summaries, tmp_path):
    result = fit_analysis(tiny_changes, summary_comparisons(tiny_summaries)[0], FAST)
    write_netcdf(result.idata, tmp_path / "posterior.nc")
    written = az.from_netcdf(tmp_path / "posterior.nc")
    assert list(written.log_likelihood["study"].coords["study_id"].values) == ["c1", "s1", "s2", "t1"]
    assert written.log_likelihood["study"].dims == ("chain", "draw", "study_id")


def test_a_correlation_prior_no_row_depends_on_keeps_the_draws_and_redraws_rho(mock_sampling, tiny_changes):
    """Without rows known by their SDs ρ is its prior alone: corr_low takes the main draws as they
    are (constant weights) and ρ from its own prior."""
    settings = FAST.replace(ess_min=50)  # the mocked draws' ESS
    main = _passing_main(fit_analysis(tiny_changes, summary_comparisons(tables.frame(tables.HARMONISED_SUMMARIES))[0], settings), settings)
    assert not main.data.correlation_rows().size
    low = settings.replace(corr_prior=(2.0, 8.0))
    data = model_data(tiny_changes, tables.frame(tables.HARMONISED_SUMMARIES), low)
    reweighted = reweight_main(main, data, low, reweighting_of(settings, low))
    assert not reweighted.refit_reason and reweighted.pareto_k == float("-inf")
    rho = reweighted.idata.posterior["rho"].to_numpy().ravel()
    assert abs(rho.mean() - 0.2) < 0.05  # Beta(2, 8), not the main fit's Beta(5, 5)
    theta = reweighted.idata.posterior["theta"].to_numpy().reshape(-1, *main.idata.posterior["theta"].shape[2:])
    main_theta = main.idata.posterior["theta"].to_numpy().reshape(theta.shape)
    assert {tuple(row.ravel()) for row in theta} <= {tuple(row.ravel()) for row in main_theta}
