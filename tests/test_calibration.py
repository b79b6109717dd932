"""SYNTHETIC simulation-based calibration (crsmeta.calibration, workflow/rules/calibration.smk):
each route's design enters the model by its route alone; one replicate gives a valid table, seeded
by the master seed, its route's name and its index alone; pooling uniform ranks passes, per route;
the workflow plans one job per route and simulated dataset and one summary. The robustness study:
a replicate under a misspecification scenario is paired with the SBC replicate (same truth,
design and seeds); its summary's bias, RMSE and coverage; its jobs only when scenarios are set."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import copy_project, planned_jobs
from test_demo_rules import dry_run

from crsmeta import calibration, tables
from crsmeta.errors import InputError
from crsmeta.model.settings import ModelSettings
from crsmeta.simulate.pipeline import run_pipeline

PROJECT = Path(__file__).resolve().parents[1]

FEW_DRAWS = ModelSettings(chains=2, draws=50, tune=50, cores=1)


def test_a_replicate_seeds_are_a_child_keyed_by_its_route_and_index_whatever_the_process() -> None:
    seeds = calibration.replicate_seeds(7, "sd", 3)
    # the route's key is the same in every process (Python's hash of a string is not)
    assert calibration.route_key("sd") == 50605304
    child = np.random.SeedSequence(7, spawn_key=(50605304, 3)).generate_state(3)
    assert (seeds.simulation, seeds.truth, seeds.sampler) == tuple(int(seed) for seed in child)
    assert len({calibration.replicate_seeds(7, "sd", 2), seeds, calibration.replicate_seeds(8, "sd", 3),
                calibration.replicate_seeds(7, "se", 3)}) == 4
    with pytest.raises(InputError, match="unknown SBC route 'sds'"):
        calibration.route_design("sds")


@pytest.mark.parametrize("route", list(calibration.ROUTES))
def test_each_route_design_enters_the_model_by_its_route_alone(route) -> None:
    design = calibration.ROUTES[route]
    simulated = run_pipeline(dataclasses.replace(design.spec, seed=5))
    methods = set(simulated.comparisons["method"])
    censoring = {"none": "exact", "left": "censored", "right": "censored", "interval": "censored"}
    entered = methods | {censoring[value] for value in simulated.changes["censoring"]}
    if route == "mixed":  # its case series print a value below the LOD only now and then
        assert {"exact", "se_reported"} <= entered <= set(design.enters_as)
    else:
        assert entered == set(design.enters_as)
    # every cell of the design has data, which the prior draw needs
    cells = pd.concat([simulated.comparisons, simulated.changes])[["intervention", "marker"]].drop_duplicates()
    assert len(cells) == len(design.spec.interventions) * len(design.spec.markers)
    assert simulated.comparisons["synthetic"].all() and simulated.changes["synthetic"].all()


def test_the_config_and_its_schema_name_every_scenario_and_the_schema_none_by_default() -> None:
    schema = yaml.safe_load((PROJECT / "workflow/schemas/config.schema.yaml").read_text())
    scenarios = schema["properties"]["calibration"]["properties"]["scenarios"]
    assert scenarios["items"]["enum"] == list(calibration.SCENARIOS) and scenarios["default"] == []
    config = yaml.safe_load((PROJECT / "config/calibration.yaml").read_text())
    assert config["calibration"]["scenarios"] == list(calibration.SCENARIOS)


def test_the_config_and_its_schema_name_every_route() -> None:
    schema = yaml.safe_load((PROJECT / "workflow/schemas/config.schema.yaml").read_text())
    routes = schema["properties"]["calibration"]["properties"]["routes"]
    assert routes["items"]["enum"] == routes["default"] == list(calibration.ROUTES)
    config = yaml.safe_load((PROJECT / "config/calibration.yaml").read_text())
    assert config["calibration"]["routes"] == list(calibration.ROUTES)


@pytest.mark.parametrize("path", sorted(PROJECT.glob("config/calibration*.yaml")), ids=lambda path: path.name)
def test_every_calibration_config_fits_the_schema(path) -> None:
    """The configs the committed runs of docs/validation.md came from still run: their
    `calibration` block is what the schema takes (the Snakefile validates the merged config)."""
    schema = yaml.safe_load((PROJECT / "workflow/schemas/config.schema.yaml").read_text())
    block = yaml.safe_load(path.read_text())["calibration"]
    jsonschema.validate(block, schema["properties"]["calibration"])


def test_a_replicate_with_the_mocked_sampler_gives_a_valid_synthetic_table(mock_sampling, tmp_path) -> None:
    ranks = calibration.run_replicate(4, 11, FEW_DRAWS, thin_to=60, route="effect_se")
    tables.check(tables.SBC_RANKS, ranks)
    spec = calibration.ROUTES["effect_se"].spec
    expected = {"theta": len(spec.interventions) * len(spec.markers), "tau": len(spec.markers),
                "sigma": len(spec.markers)}
    assert ranks["kind"].value_counts().to_dict() == expected
    assert ranks["parameter"].is_unique and ranks["synthetic"].all() and (ranks["route"] == "effect_se").all()
    assert (ranks["replicate"] == 4).all() and (ranks["master_seed"] == 11).all()
    assert (ranks["n_draws"] == 60).all() and ranks["rank"].between(0, 60).all()
    # a wider interval covers whatever a narrower one covers
    for narrow, wide in (("covered50", "covered80"), ("covered80", "covered90"), ("covered90", "covered95")):
        assert (~ranks[narrow] | ranks[wide]).all()
    # the replicate's own sampler seed, whichever settings' seed came in
    assert mock_sampling[-1] == {"draws": 50, "random_seed": calibration.replicate_seeds(11, "effect_se", 4).sampler}
    # the same replicate again (its studies through the pipeline in another temporary directory):
    # the same table, byte for byte
    again = calibration.run_replicate(4, 11, FEW_DRAWS.replace(seed=123), thin_to=60, route="effect_se")
    tables.write(tables.SBC_RANKS, ranks, tmp_path / "first.tsv")
    tables.write(tables.SBC_RANKS, again, tmp_path / "again.tsv")
    assert (tmp_path / "first.tsv").read_bytes() == (tmp_path / "again.tsv").read_bytes()


def test_a_refit_from_the_truth_a_replicate_table_records_simulates_the_same_dataset(mock_sampling) -> None:
    """validation/sbc_default_settings.py --truths: the table's truth is the prior draw, and the
    dataset simulated from it the replicate's, whatever coordinates drew it. Mocked sampler."""
    ranks = calibration.run_replicate(4, 11, FEW_DRAWS, thin_to=60, route="case_exact")
    truth = calibration.recorded_truth(ranks)
    seeds = calibration.replicate_seeds(11, "case_exact", 4)
    spec = dataclasses.replace(calibration.route_design("case_exact").spec, seed=seeds.simulation)
    assert truth == calibration.prior_truth(spec, FEW_DRAWS, seeds.truth)
    refit, _ = calibration.fit_replicate(4, 11, FEW_DRAWS, "case_exact", truth=truth, sampler_seed_offset=2)
    assert refit is truth
    assert mock_sampling[-1]["random_seed"] == seeds.sampler + 2


def test_a_route_of_means_without_spread_draws_the_baseline_spread_and_simulates_with_it(mock_sampling) -> None:
    """The rows of ``learned_se`` read s[marker] (crsmeta.cohort_log_ratio): the truth draws it
    from the model's prior for the two markers (temperature's difference has none), the dataset's
    baseline levels are simulated with it, and it is ranked like θ, τ and σ. A route whose rows
    do not read it (``case_exact``) keeps its design's baseline. Mocked sampler."""
    seeds = calibration.replicate_seeds(11, "learned_se", 2)
    spec = dataclasses.replace(calibration.route_design("learned_se").spec, seed=seeds.simulation)
    truth = calibration.prior_truth(spec, FEW_DRAWS, seeds.truth)
    assert set(truth["baseline_sd"]) == {"IL-6", "ferritin"}
    simulated = spec.with_truth(truth["theta"], truth["tau"], truth["sigma"], baseline_sd=truth["baseline_sd"])
    assert {m: simulated.baseline[m][1] for m in ("IL-6", "ferritin")} == truth["baseline_sd"]
    assert simulated.baseline["temperature"] == spec.baseline["temperature"]
    ranks = calibration.run_replicate(2, 11, FEW_DRAWS, thin_to=60, route="learned_se")
    assert set(ranks.loc[ranks["kind"] == "baseline_sd", "parameter"]) == {"baseline_sd[IL-6]", "baseline_sd[ferritin]"}
    assert calibration.recorded_truth(ranks)["baseline_sd"] == truth["baseline_sd"]
    case_spec = dataclasses.replace(calibration.route_design("case_exact").spec, seed=3)
    assert calibration.prior_truth(case_spec, FEW_DRAWS, 4)["baseline_sd"] == {}


def test_a_route_of_medians_with_quantiles_draws_rho_and_gives_every_marker_that_correlation(mock_sampling) -> None:
    """The rows of ``iqr`` read ρ as their patients' pre/post correlation: the truth draws it from
    ρ's prior, apart from θ, τ and σ (the same draws as without it), the dataset's patients of
    every marker correlate by it, and it is ranked. Mocked sampler."""
    seeds = calibration.replicate_seeds(11, "iqr", 3)
    spec = dataclasses.replace(calibration.route_design("iqr").spec, seed=seeds.simulation)
    truth = calibration.prior_truth(spec, FEW_DRAWS, seeds.truth, rho=True)
    assert 0 < truth["rho"][""] < 1
    without = calibration.prior_truth(spec, FEW_DRAWS, seeds.truth)
    assert without["rho"] == {} and {k: v for k, v in truth.items() if k != "rho"} == {
        k: v for k, v in without.items() if k != "rho"}
    ranks = calibration.run_replicate(3, 11, FEW_DRAWS, thin_to=60, route="iqr")
    assert ranks.loc[ranks["kind"] == "rho", "parameter"].tolist() == ["rho"]
    assert calibration.recorded_truth(ranks)["rho"] == truth["rho"]
    assert calibration._correlation_of_every_marker(spec, truth["rho"]) == dict.fromkeys(spec.markers, truth["rho"][""])


@pytest.mark.slow
def test_a_real_replicate_of_one_route_samples_and_ranks_every_parameter() -> None:
    ranks = calibration.run_replicate(0, 3, ModelSettings(chains=2, draws=30, tune=30, cores=1), thin_to=29,
                                      route="effect_se")
    tables.check(tables.SBC_RANKS, ranks)
    assert len(ranks) == 6 + 3 + 3 and ranks["rank"].between(0, 29).all() and (ranks["n_draws"] == 29).all()


def uniform_ranks(n_datasets: int, n_draws: int = 99, route: str = "sd") -> pd.DataFrame:
    """SYNTHETIC replicate rows of ``route`` with exactly uniform ranks (every rank value as often,
    in a scrambled order, when ``n_draws + 1`` divides ``n_datasets``), covered at each level's rate."""
    rows = []
    for replicate in range(n_datasets):
        for offset, (parameter, kind) in enumerate(
                (("theta[tocilizumab,IL-6]", "theta"), ("theta[emapalumab,IL-6]", "theta"), ("tau[IL-6]", "tau"),
                 ("sigma[IL-6]", "sigma"))):
            rank = (37 * replicate + 11 * offset) % (n_draws + 1)
            fraction = (rank + 0.5) / (n_draws + 1)
            covered = {f"covered{round(100 * level)}": bool(abs(fraction - 0.5) <= level / 2)
                       for level in calibration.LEVELS}
            rows.append({"route": route, "replicate": replicate, "master_seed": 1, "parameter": parameter,
                         "kind": kind, "truth": 0.0, "rank": rank, "n_draws": n_draws, **covered,
                         "divergences": 0, "synthetic": True})
    return tables.frame(tables.SBC_RANKS, rows)


def test_pooling_uniform_ranks_gives_a_passing_summary_per_route(tmp_path) -> None:
    ranks = pd.concat([uniform_ranks(200, route="iqr"), uniform_ranks(200, route="sd")], ignore_index=True)
    replicates = [group.reset_index(drop=True) for _, group in ranks.groupby(["route", "replicate"])]
    pooled = calibration.pool(reversed(replicates))
    pd.testing.assert_frame_equal(pooled, ranks)
    summary = calibration.summarise(pooled)
    tables.check(tables.SBC_SUMMARY, summary)
    assert list(zip(summary["route"], summary["parameter"])) == [
        (route, parameter) for route in ("iqr", "sd")
        for parameter in ("theta[tocilizumab,IL-6]", "theta[emapalumab,IL-6]", "tau[IL-6]", "sigma[IL-6]")]
    assert summary["ecdf_in_band"].all() and summary["coverage_in_band"].all()
    assert (summary["chi2_p"] == 1.0).all() and (summary["ecdf_max_diff"] < 0.01).all()
    assert (summary["coverage90"] == 0.9).all() and (summary["n_datasets"] == 200).all()
    assert summary["synthetic"].all()
    routes = calibration.summarise_routes(pooled, summary)
    tables.check(tables.SBC_ROUTE_SUMMARY, routes)
    assert list(zip(routes["route"], routes["kind"], routes["n_parameters"])) == [
        ("iqr", "theta", 2), ("iqr", "tau", 1), ("iqr", "sigma", 1),
        ("sd", "theta", 2), ("sd", "tau", 1), ("sd", "sigma", 1)]
    assert list(routes["enters_as"].unique()) == ["iqr_log;iqr", "sd_reported"]
    lo, hi = calibration.coverage_band(200, 0.9)
    assert (routes["coverage90_lo"] == lo).all() and (routes["coverage90_hi"] == hi).all() and lo < 0.9 < hi
    assert routes[[f"coverage{level}_in_band" for level in (50, 80, 90, 95)]].all(axis=None)
    assert (routes[["chi2_p_below_05", "outside_ecdf_band", "divergent_datasets"]] == 0).all(axis=None)
    calibration.plot_ranks(pooled[pooled["route"] == "sd"], tmp_path / "sd.png")
    assert (tmp_path / "sd.png").stat().st_size > 0
    text = calibration.markdown(summary, pooled, "test")
    assert "SYNTHETIC" in text and "| iqr | theta | 2 | 200 | 0.500 | 0.800 | 0.900 | 0.960 |" in text


def test_a_route_whose_intervals_miss_is_flagged_and_the_others_are_not() -> None:
    ranks = pd.concat([uniform_ranks(200, route="iqr"), uniform_ranks(200, route="sd")], ignore_index=True)
    too_narrow = ranks["route"] == "sd"
    ranks.loc[too_narrow, "rank"] = ranks.loc[too_narrow, "rank"] // 2
    ranks.loc[too_narrow, "covered90"] &= ranks.loc[too_narrow, "replicate"] % 5 != 0  # 72% covered
    summary = calibration.summarise(ranks)
    routes = calibration.summarise_routes(ranks, summary).set_index(["route", "kind"])
    assert not routes.loc["sd", "coverage90_in_band"].any() and routes.loc["iqr", "coverage90_in_band"].all()
    assert (routes.loc["sd", "outside_ecdf_band"] == routes.loc["sd", "n_parameters"]).all()
    assert (routes.loc["iqr", "outside_ecdf_band"] == 0).all()
    assert "0.720*" in calibration.markdown(summary, ranks, "test")


def test_ranks_piled_at_one_end_fall_outside_the_ecdf_band() -> None:
    ranks = uniform_ranks(200)
    ranks["rank"] = ranks["rank"] // 2  # the truth sits low in every posterior: too high an estimate
    summary = calibration.summarise(ranks)
    assert not summary["ecdf_in_band"].any()
    assert (summary["chi2_p"] < 1e-6).all()


def test_pooling_refuses_replicates_of_two_runs_or_one_replicate_twice() -> None:
    ranks = uniform_ranks(3)
    with pytest.raises(InputError, match="master_seed"):
        calibration.pool([ranks[ranks["replicate"] < 2], ranks[ranks["replicate"] == 2].assign(master_seed=2)])
    with pytest.raises(InputError, match="replicate 1 of route 'sd' appears twice"):
        calibration.pool([ranks, ranks[ranks["replicate"] == 1]])
    # the same index in another route is another replicate
    assert len(calibration.pool([ranks, ranks.assign(route="se")])) == 2 * len(ranks)


def test_the_calibration_config_plans_one_job_per_route_scenario_and_dataset_and_the_summaries(tmp_path) -> None:
    project = copy_project(tmp_path / "project")
    result, imported = dry_run(project, "--configfile", "config/calibration.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    calibration_config = yaml.safe_load((project / "config/calibration.yaml").read_text())["calibration"]
    jobs = planned_jobs(result.stdout + result.stderr)
    n_replicates = calibration_config["n_datasets"] * len(calibration_config["routes"])
    assert jobs == {"sbc_replicate": n_replicates, "sbc_summary": 1,
                    "robustness_replicate": n_replicates * len(calibration_config["scenarios"]),
                    "robustness_summary": 1, "all": 1}
    # parsing imports neither the sampler nor the simulator, and reads no study
    assert not {name for name in imported if name.split(".")[0] in ("pymc", "pytensor")}
    assert "crsmeta.simulate" not in imported and "crsmeta.studies" not in imported


# --- robustness under misspecification --------------------------------------------------------


def test_a_robustness_replicate_is_paired_with_the_sbc_replicate_of_its_route_and_index(mock_sampling) -> None:
    """The same prior truth and sampler seed as the SBC replicate (and, tests/test_simulate.py, the
    same design): only the scenario's data differ. Mocked sampler: the posterior is prior draws."""
    ranks = calibration.run_replicate(2, 11, FEW_DRAWS, thin_to=40, route="effect_se")
    estimates = calibration.run_robustness_replicate(2, 11, FEW_DRAWS, route="effect_se", scenario="heavy_tails",
                                                     thin_to=40)
    tables.check(tables.ROBUSTNESS_ESTIMATES, estimates)
    assert mock_sampling[-1] == mock_sampling[-2] == {
        "draws": 50, "random_seed": calibration.replicate_seeds(11, "effect_se", 2).sampler}
    paired = ["route", "replicate", "master_seed", "parameter", "kind", "truth", "n_draws"]
    pd.testing.assert_frame_equal(estimates[paired], ranks[paired])
    assert (estimates["scenario"] == "heavy_tails").all() and estimates["synthetic"].all()
    assert (estimates["sd"] > 0).all() and estimates["median"].notna().all()
    assert (estimates["rank"] == ranks["rank"]).all()  # the mocked posterior ignores the data
    with pytest.raises(InputError, match="unknown robustness scenario 'heavy'"):
        calibration.run_robustness_replicate(2, 11, FEW_DRAWS, route="effect_se", scenario="heavy")


def estimate_rows(scenario: str, route: str, errors: list[float], sd: float, covered: list[bool],
                  master_seed: int = 1) -> list[dict]:
    """SYNTHETIC robustness rows: replicate k's θ[tocilizumab,IL-6] and θ[emapalumab,IL-6] both
    ``errors[k]`` above a truth of 0.5, with posterior SD ``sd``, covered at every level as ``covered[k]``."""
    return [{"scenario": scenario, "route": route, "replicate": replicate, "master_seed": master_seed,
             "parameter": parameter, "kind": "theta", "truth": 0.5, "median": 0.5 + error, "sd": sd,
             "rank": 10, "n_draws": 19, **{f"covered{level}": hit for level in (50, 80, 90, 95)},
             "divergences": int(replicate == 0), "synthetic": True}
            for replicate, (error, hit) in enumerate(zip(errors, covered, strict=True))
            for parameter in ("theta[tocilizumab,IL-6]", "theta[emapalumab,IL-6]")]


def test_the_robustness_summary_gives_bias_rmse_and_coverage_per_scenario_route_and_kind() -> None:
    biased = estimate_rows("heavy_tails", "sd", [0.1, 0.3, -0.1, 0.3] * 2, 0.2, [True, False] * 4)
    calibrated = estimate_rows("skewed_levels", "sd", [0.0] * 20, 0.5, [True] * 18 + [False] * 2)
    parts = [tables.frame(tables.ROBUSTNESS_ESTIMATES, [row for row in rows if row["replicate"] == replicate])
             for rows in (calibrated, biased) for replicate in range(len(rows) // 2)]
    estimates = calibration.pool_robustness(reversed(parts))
    assert list(estimates["scenario"].unique()) == ["heavy_tails", "skewed_levels"]
    summary = calibration.summarise_robustness(estimates)
    tables.check(tables.ROBUSTNESS_SUMMARY, summary)
    heavy, skewed = (row for _, row in summary.iterrows())
    assert (heavy["scenario"], heavy["route"], heavy["kind"], heavy["n_parameters"], heavy["n_datasets"]) == (
        "heavy_tails", "sd", "theta", 2, 8)
    assert heavy["bias"] == pytest.approx(0.15) and heavy["rmse"] == pytest.approx(np.sqrt(0.05))
    assert heavy["bias_in_sd"] == pytest.approx(0.75) and heavy["coverage90"] == 0.5
    assert (heavy["coverage90_lo"], heavy["coverage90_hi"]) == calibration.coverage_band(8, 0.9)
    assert not heavy["coverage90_in_band"] and heavy["divergent_datasets"] == 1
    assert (skewed["bias"], skewed["rmse"], skewed["bias_in_sd"], skewed["coverage90"]) == (0.0, 0.0, 0.0, 0.9)
    assert skewed["coverage90_in_band"] and skewed["synthetic"] and skewed["n_datasets"] == 20
    text = calibration.robustness_markdown(summary, "test")
    assert "SYNTHETIC" in text
    assert "| heavy_tails | sd | theta | 2 | 8 | +0.150 | 0.224 | +0.75 | 0.500 | 0.500 | 0.500* | 0.500* | 1 |" in text
    with pytest.raises(InputError, match="robustness replicate 5 of scenario 'heavy_tails', route 'sd' appears twice"):
        calibration.pool_robustness([*parts, parts[-3]])


@pytest.mark.parametrize("scenarios", [[], ["heavy_tails"]])
def test_a_small_calibration_config_plans_robustness_jobs_only_for_its_scenarios(tmp_path, scenarios) -> None:
    """One route, 2 datasets: with a scenario, one robustness job per dataset (paths by scenario,
    route and index) and their summary besides the SBC's; without, the SBC's jobs alone."""
    project = copy_project(tmp_path / "project")
    small = {"calibration": {"n_datasets": 2, "seed": 1, "draws": 30, "tune": 30, "chains": 2, "thin_to": 29,
                             "routes": ["effect_se"], "scenarios": scenarios}, "studies": []}
    (project / "config/calibration_small.yaml").write_text(yaml.safe_dump(small))
    result, _ = dry_run(project, "--configfile", "config/calibration_small.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = planned_jobs(result.stdout + result.stderr)
    robustness = {"robustness_replicate": 2, "robustness_summary": 1} if scenarios else {}
    assert jobs == {"sbc_replicate": 2, "sbc_summary": 1, **robustness, "all": 1}
    planned = result.stdout + result.stderr
    for replicate in (0, 1):
        assert (f"results/calibration/robustness/heavy_tails/effect_se/{replicate}.tsv" in planned) == bool(scenarios)
    assert ("results/calibration/robustness.md" in planned) == bool(scenarios)


@pytest.mark.slow
def test_a_real_robustness_replicate_samples_and_estimates_every_parameter() -> None:
    estimates = calibration.run_robustness_replicate(0, 3, ModelSettings(chains=2, draws=30, tune=30, cores=1),
                                                     route="effect_se", scenario="heavy_tails", thin_to=29)
    tables.check(tables.ROBUSTNESS_ESTIMATES, estimates)
    assert len(estimates) == 6 + 3 + 3 and (estimates["sd"] > 0).all()
    assert (estimates["n_draws"] == 29).all() and estimates["rank"].between(0, 29).all()
