"""Model structure on a tiny hand-made dataset: settings, coords, dims, shapes (no sampling)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import pytest
import yaml

from conftest import model_data
from crsmeta.comparisons import summary_comparisons
from crsmeta.errors import InputError
from crsmeta.model import ModelSettings, build_model
from crsmeta.model.data import contributing_studies
from crsmeta.model.analyses import analyses_after_data, analysis_settings, leave_one_out_settings
from crsmeta.model.settings import CONFIG_BLOCKS
from typed_tables import typed_changes, typed_summaries


@pytest.fixture
def tiny_changes(tiny_changes: pd.DataFrame) -> pd.DataFrame:
    """conftest's changes typed by their contract, as the model reads them."""
    return typed_changes(tiny_changes)


@pytest.fixture
def tiny_summaries(tiny_summaries: pd.DataFrame) -> pd.DataFrame:
    """conftest's summaries typed by their contract, as the changes stage reads them."""
    return typed_summaries(tiny_summaries)



def test_settings_merge_config_blocks_over_defaults():
    cfg = {"model": {"priors": {"tau_sd": 0.25}, "covariates": {"population": False},
                     "data": {"exclude_studies": ["x"]}, "likelihood": "student_t"},
           "sampler": {"chains": 2, "backend": "pymc"}, "diagnostics": {"rhat_max": 1.02}}
    settings = ModelSettings.from_config(cfg)
    assert (settings.tau_sd, settings.population, settings.exclude_studies) == (0.25, False, ("x",))
    assert (settings.likelihood, settings.chains, settings.backend, settings.rhat_max) == ("student_t", 2, "pymc", 1.02)
    assert ModelSettings.from_dict(settings.to_dict()) == settings
    assert ModelSettings.from_config({"seed": 7}).seed == 7
    assert ModelSettings.from_config({"seed": 7, "sampler": {"seed": 8}}).seed == 8
    assert settings.replace(chains=3).chains == 3


def _schema_defaults(properties: dict) -> dict:
    """The defaults under ``properties`` of a JSON Schema, by key, through nested objects."""
    defaults = {}
    for key, schema in properties.items():
        if "properties" in schema:
            defaults |= _schema_defaults(schema["properties"])
        elif "default" in schema:
            defaults[key] = schema["default"]
    return defaults


def test_the_config_schemas_defaults_are_the_settings_defaults():
    """A workflow run takes a missing model, sampler or diagnostics key from the config schema's
    default (snakemake.utils.validate fills it in), the package's own callers from ModelSettings:
    the two must agree, and every setting but the seed (the config's top-level ``seed``) must be
    in the schema, so that a default changed in one place and not the other fails here."""
    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    in_schema = {}
    for block in CONFIG_BLOCKS:
        in_schema |= _schema_defaults(schema["properties"][block]["properties"])
    settings = ModelSettings().to_dict()
    assert {name: settings[name] for name in in_schema} == in_schema
    assert set(settings) - set(in_schema) == {"seed"}


def test_unknown_setting_is_an_input_error():
    with pytest.raises(InputError, match="unknown model setting"):
        ModelSettings.from_config({"model": {"priors": {"tau_scale": 1.0}}})


def test_analysis_settings_names_every_sensitivity_analysis():
    base = ModelSettings()
    analyses = analysis_settings(base, {"corr_high": False}, ["s2", "s1"])
    assert list(analyses)[:1] == ["main"]
    assert {"loo_s1", "loo_s2", "case_only", "summary_only", "tau_prior_half", "tau_prior_double",
            "student_t", "no_digitised", "corr_low"} <= set(analyses)
    assert "corr_high" not in analyses
    assert analyses["tau_prior_half"].tau_sd == base.tau_sd / 2
    assert analyses["sigma_prior_double"].sigma_sd == base.sigma_sd * 2
    assert analyses["sigma_prior_half"].temp_sigma_sd == base.temp_sigma_sd / 2
    assert analyses["sigma_prior_double"].baseline_sd == base.baseline_sd * 2  # s: the baseline's spread
    assert analyses["baseline_adjusted"].baseline_level and not base.baseline_level
    every = analysis_settings(base, {}, [])
    assert {settings.target_accept for settings in every.values()} == {base.target_accept}
    assert analyses["loo_s1"].exclude_studies == ("s1",)
    assert list(analysis_settings(base, {"activate": False}, ["s1"])) == ["main"]
    only = analysis_settings(base, {"leave_one_out": ["s2"]}, ["s1", "s2"])
    assert "loo_s2" in only and "loo_s1" not in only


def test_leave_one_out_of_the_contributing_studies_waits_for_the_data():
    base = ModelSettings(exclude_studies=("s9",))
    cfg = {"leave_one_out": "contributing", "cumulative": False}
    assert analyses_after_data(cfg) and not analyses_after_data({"leave_one_out": True, "cumulative": False})
    assert not analyses_after_data(cfg | {"activate": False})
    before = analysis_settings(base, cfg, ["s1", "s2", "s3"])
    assert not any(name.startswith("loo_") for name in before)
    after = analysis_settings(base, cfg, ["s1", "s2", "s3"], contributing=["s3", "s1"])
    assert [name for name in after if name.startswith("loo_")] == ["loo_s1", "loo_s3"]
    assert after["loo_s3"] == leave_one_out_settings(base, "s3")
    assert after["loo_s3"].exclude_studies == ("s3", "s9")


def test_contributing_studies_are_those_whose_rows_reach_the_model(tiny_changes, tiny_summaries):
    table = contributing_studies(tiny_changes, summary_comparisons(tiny_summaries)[0], ModelSettings())
    assert table[["study_id", "case_rows", "summary_rows"]].to_dict("records") == [
        {"study_id": "c1", "case_rows": 0, "summary_rows": 2},
        {"study_id": "s1", "case_rows": 15, "summary_rows": 0},
        {"study_id": "s2", "case_rows": 13, "summary_rows": 0},
        {"study_id": "t1", "case_rows": 0, "summary_rows": 2},
    ]
    assert table.set_index("study_id").loc["s2", "cells"] == "plasma_exchange|IL-6;plasma_exchange|ferritin"
    without_s1 = contributing_studies(tiny_changes, summary_comparisons(tiny_summaries)[0], ModelSettings(exclude_studies=("s1",)))
    assert "s1" not in set(without_s1["study_id"])


def test_coords_and_counts(tiny_changes, tiny_summaries):
    data = model_data(tiny_changes, tiny_summaries, ModelSettings())
    assert data.coords["marker"] == ["IL-6", "ferritin", "temperature"]
    assert data.coords["population"][0] == "car_t_crs"
    assert not data.use_population  # no intervention is seen in two populations: shift not identified
    counts = data.counts().set_index(["intervention", "marker"])
    assert counts.loc[("tocilizumab", "IL-6"), "n_patients"] == 7
    assert counts.loc[("emapalumab", "IL-6"), ["n_studies", "n_patients", "n_summary_rows"]].tolist() == [1, 30, 1]
    assert ("emapalumab", "ferritin") not in counts.index


def test_population_shift_only_when_the_data_identify_it(tiny_changes, tiny_summaries):
    crossed = tiny_changes.copy()
    crossed.loc[crossed["intervention"] == "tocilizumab", "population"] = ["viral_cytokine_storm"] + [
        "car_t_crs"] * (int((crossed["intervention"] == "tocilizumab").sum()) - 1)
    assert model_data(crossed, tiny_summaries, ModelSettings()).use_population
    forced = ModelSettings().replace(population=True)
    assert model_data(tiny_changes, tiny_summaries, forced).use_population


def test_model_dims_and_shapes(tiny_changes, tiny_summaries):
    data = model_data(tiny_changes, tiny_summaries, ModelSettings())
    model = build_model(data, ModelSettings())
    dims = model.named_vars_to_dims
    assert dims["theta"] == ("intervention", "marker")
    assert dims["tau"] == ("marker",) and dims["y_marginal"] == ("gaussian_marginal",)
    # each study's one censored or learned row lets its u be integrated out: no explicit u
    assert "u" not in dims and "study_marker_explicit" not in model.coords
    # a kind of row without rows adds no term (tiny_summaries has no learned-SE row alone for its marker)
    assert {p.name for p in model.potentials} == {"censored_changes", "summary_learned_rows"}
    point = model.initial_point()
    # PyTensor's Python mode: shapes and finiteness need no C compile (minutes with an empty cache)
    theta = pm.draw(model["theta"], random_seed=1, mode="FAST_COMPILE")
    assert theta.shape == (5, 3)
    assert "censored_changes" in [p.name for p in model.potentials]
    assert np.isfinite(model.compile_logp(mode="FAST_COMPILE")(point))


def test_filters_drop_rows_into_the_audit(tiny_changes, tiny_summaries):
    settings = ModelSettings(include_summaries=False, exclude_studies=("s2",))
    data = model_data(tiny_changes, tiny_summaries, settings)
    assert data.observations.empty and set(data.cases["study_id"]) == {"s1"}
    assert "analysis leaves this study out" in set(data.audit["reason"])
    with pytest.raises(InputError, match="no case-level or summary-level"):
        model_data(tiny_changes, tiny_summaries, settings.replace(include_cases=False))


def test_covariates_switch_on(tiny_changes, tiny_summaries):
    changes = tiny_changes.assign(co_interventions="corticosteroids", astct_grades="3|4")
    settings = ModelSettings(co_interventions=True, baseline_grade=True, population=False)
    data = model_data(changes, tiny_summaries, settings)
    model = build_model(data, settings)
    assert model.named_vars_to_dims["co_intervention_effect"] == ("co_intervention", "family")
    assert "grade_effect" in model.named_vars and "population_shift" not in model.named_vars


def test_student_t_likelihood_builds(tiny_changes, tiny_summaries):
    settings = ModelSettings().replace(likelihood="student_t")
    model = build_model(model_data(tiny_changes, tiny_summaries, settings), settings)
    assert "nu_minus_one" in model.named_vars
    assert any(rv.name == "change" for rv in model.observed_RVs)


def test_the_baseline_level_enters_each_row_centred_on_its_marker(tiny_changes, tiny_summaries):
    """Case rows: log of the patient's pre value; summary pairs: log of the printed pre level;
    a printed change without its pre value (and temperature's °C) as the module says; centred on
    the marker's mean over the modelled rows, 0 where there is none."""
    from crsmeta.model.build import _linear_predictor

    rng = np.random.default_rng(3)
    pre_values = rng.uniform(50, 5000, len(tiny_changes))
    pre_values[0] = np.nan  # a reported change passed through: no pre value, centred to 0
    changes = tiny_changes.assign(pre_value=pre_values)
    settings = ModelSettings(baseline_level=True, population=False)
    data = model_data(changes, tiny_summaries, settings)
    assert data.use_baseline
    rows = data.rows(["marker", "pre_value"])
    pre = rows["pre_value"].to_numpy()
    level = np.where(rows["marker"] == "temperature", pre, np.log(pre))
    expected = level - pd.Series(level).groupby(rows["marker"].to_numpy()).transform("mean").to_numpy()
    expected = np.nan_to_num(expected)
    both = np.concatenate([data.centred_baseline(data.cases), data.centred_baseline(data.observations)])
    assert both == pytest.approx(expected)
    with pm.Model(coords=data.coords):
        theta = pt.zeros((len(data.coords["intervention"]), len(data.coords["marker"])))
        slope = np.array([0.3, -0.7])  # per family: log ratio, temperature
        mean = _linear_predictor(data, data.cases, theta, {"baseline": pt.as_tensor(slope)}, prefix="case").eval()
    assert mean == pytest.approx(slope[data.family_index(data.cases)] * data.centred_baseline(data.cases))
    assert "baseline_effect" in build_model(data, settings).named_vars
    assert not model_data(tiny_changes, tiny_summaries, ModelSettings(population=False)).use_baseline
