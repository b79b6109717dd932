"""The effects table without sampling: the standard-care contrast says whether it rests on a study
with both arms; each cell's prior SD (checked against prior draws of the built model), posterior SD
and evidence label."""

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

from conftest import change_row, model_data, summary_row
from crsmeta import tables
from crsmeta.model import ModelData, ModelSettings
from crsmeta.model.build import build_model, theta_prior_sd
from crsmeta.model.effects import (DATA_DRIVEN, PRIOR_DRIVEN, WEAKLY_INFORMED, _cell_draws, _contrast,
                                   cell_prior_sd, effects_table, evidence, studies_with_both_arms)
from crsmeta.vocabulary import ChangeScale, change_scale
from typed_tables import change_frame, summary_frame, typed_changes, typed_summaries


@pytest.fixture
def tiny_changes(tiny_changes: pd.DataFrame) -> pd.DataFrame:
    """conftest's changes typed by their contract, as the model reads them."""
    return typed_changes(tiny_changes)


@pytest.fixture
def tiny_summaries(tiny_summaries: pd.DataFrame) -> pd.DataFrame:
    """conftest's summaries typed by their contract, as the changes stage reads them."""
    return typed_summaries(tiny_summaries)


PRIOR_DRAWS = 8000


def _with_separate_control(tiny_summaries: pd.DataFrame) -> pd.DataFrame:
    """SYNTHETIC: adds a standard-care cohort for ferritin that holds no other arm."""
    control = [summary_row("c2", "standard_care", "ferritin", "pre", value=3000, n=15),
               summary_row("c2", "standard_care", "ferritin", "post", value=2000, n=15)]
    return pd.concat([tiny_summaries, summary_frame(control)], ignore_index=True)


def _posterior(data: ModelData) -> xr.Dataset:
    interventions, markers = data.coords["intervention"], data.coords["marker"]
    draws = np.random.default_rng(0).normal(-0.5, 0.1, size=(len(interventions), len(markers), 200))
    theta = xr.DataArray(draws, dims=("intervention", "marker", "sample"),
                         coords={"intervention": interventions, "marker": markers})
    return xr.Dataset({"theta": theta})


def test_contrast_within_a_trial_names_the_trial(tiny_changes, tiny_summaries):
    data = model_data(tiny_changes, _with_separate_control(tiny_summaries), ModelSettings())
    assert studies_with_both_arms(data, "hemoadsorption", "IL-6") == ["t1"]
    contrast = _contrast(_posterior(data), data, "hemoadsorption", "IL-6")
    assert contrast["contrast_basis"] == "within_study"
    assert "t1" in contrast["contrast_note"]
    assert np.isfinite(contrast["contrast_median"])


def test_contrast_across_studies_is_marked_indirect(tiny_changes, tiny_summaries):
    data = model_data(tiny_changes, _with_separate_control(tiny_summaries), ModelSettings())
    assert studies_with_both_arms(data, "tocilizumab", "ferritin") == []
    contrast = _contrast(_posterior(data), data, "tocilizumab", "ferritin")
    assert contrast["contrast_basis"] == "indirect"
    assert contrast["contrast_note"].startswith("indirect")
    assert np.isfinite(contrast["contrast_median"])


def test_no_contrast_has_no_basis(tiny_changes, tiny_summaries):
    data = model_data(tiny_changes, tiny_summaries, ModelSettings())
    contrast = _contrast(_posterior(data), data, "tocilizumab", "ferritin")
    assert contrast["contrast_basis"] == "" and np.isnan(contrast["contrast_median"])


def _prior_draws(data: ModelData, settings: ModelSettings) -> xr.Dataset:
    """Prior draws of θ (and the population effect, when the model has one) of the built model."""
    model = build_model(data, settings)
    names = [name for name in ("theta", "population_effect") if name in model.named_vars]
    draws = pm.draw([model[name] for name in names], draws=PRIOR_DRAWS, random_seed=11,
                    mode="FAST_COMPILE")  # Python mode: no C compile
    dims = {"theta": ("intervention", "marker"), "population_effect": ("population", "family")}
    return xr.Dataset({name: (("sample", *dims[name]), value) for name, value in zip(names, draws, strict=True)},
                      coords={dim: data.coords[dim] for dim in ("intervention", "marker", "population", "family")})


def _assert_prior_sds_match_draws(data: ModelData, settings: ModelSettings) -> None:
    prior = _prior_draws(data, settings)
    for intervention, marker in data.counts()[["intervention", "marker"]].itertuples(index=False):
        drawn = np.std(_cell_draws(prior, data, intervention, marker))
        stated = cell_prior_sd(data, settings, intervention, marker)
        # Monte Carlo error of an SD from 8000 draws of this scale mixture: ≤ 3.5% seen over the cells;
        # a mean instead of the mean square of σ_γ, or Σw for Σw², is off by 12–16%
        assert drawn == pytest.approx(stated, rel=0.06), (intervention, marker)
    assert {change_scale(m) for m in data.coords["marker"]} == set(ChangeScale)  # labs and temperature


def test_prior_sd_of_theta_matches_prior_draws(tiny_changes, tiny_summaries):
    settings = ModelSettings(interaction_sd=1.5, temp_intervention_sd=0.7)  # σ_γ's term dominates
    data = model_data(tiny_changes, tiny_summaries, settings)
    assert len(data.coords["intervention"]) >= 2 and len(data.lab_markers) >= 2 and not data.use_population
    _assert_prior_sds_match_draws(data, settings)


def test_prior_sd_of_theta_with_one_intervention(tiny_changes):
    """One level on the intervention axis: its sum-to-zero parts are 0, the grand mean holds the rest."""
    settings = ModelSettings(include_summaries=False, interaction_sd=1.5)
    data = model_data(tiny_changes[tiny_changes["study_id"] == "s1"], tables.frame(tables.HARMONISED_SUMMARIES), settings)
    assert data.coords["intervention"] == ["tocilizumab"]
    _assert_prior_sds_match_draws(data, settings)


def test_prior_sd_adds_the_weighted_population_shift(tiny_changes, tiny_summaries):
    """A cell drawn from two populations, half its rows from each: θ plus half the shift."""
    extra = change_frame([change_row("s3", 1, "hemoadsorption", "IL-6", -0.6)])  # beside one trial row
    changes = pd.concat([tiny_changes, extra], ignore_index=True)
    settings = ModelSettings(population=True, covariate_sd=2.0)
    data = model_data(changes, tiny_summaries, settings)
    assert data.use_population
    mixed = cell_prior_sd(data, settings, "hemoadsorption", "IL-6")
    reference_only = cell_prior_sd(data, settings, "tocilizumab", "IL-6")
    assert reference_only == pytest.approx(theta_prior_sd(settings, difference_scale=False))
    assert mixed == pytest.approx(np.hypot(reference_only, settings.covariate_sd / 2))
    _assert_prior_sds_match_draws(data, settings)


def test_theta_prior_sd_of_the_defaults():
    settings = ModelSettings()
    assert theta_prior_sd(settings, difference_scale=False) == pytest.approx(np.sqrt(1 + 0.25 + 0.25 + 1.5 * 0.25))
    assert theta_prior_sd(settings, difference_scale=True) == pytest.approx(np.sqrt(1 + 0.25))


@pytest.mark.parametrize(("ratio", "label"), [
    (0.05, DATA_DRIVEN), (0.3, DATA_DRIVEN), (0.31, WEAKLY_INFORMED), (0.7, WEAKLY_INFORMED),
    (0.71, PRIOR_DRIVEN), (1.2, PRIOR_DRIVEN),
])
def test_evidence_label_thresholds(ratio, label):
    assert evidence(ratio) == label


def test_effects_table_reports_prior_and_posterior_sd(tiny_changes, tiny_summaries):
    """Each cell's posterior SD against its prior SD, and the label of their ratio."""
    settings = ModelSettings()
    data = model_data(tiny_changes, tiny_summaries, settings)
    interventions, markers = data.coords["intervention"], data.coords["marker"]
    fraction = {"tocilizumab": 0.1, "plasma_exchange": 0.5}  # of the prior SD; the others 0.9
    spread = np.array([[fraction.get(i, 0.9) * theta_prior_sd(settings, change_scale(m) is ChangeScale.DIFFERENCE)
                        for m in markers] for i in interventions])
    rng = np.random.default_rng(5)
    theta = -0.5 + spread * rng.standard_normal((2, 2000, len(interventions), len(markers)))
    idata = az.from_dict(posterior={"theta": theta, "tau": np.full((2, 2000, len(markers)), 0.3)},
                         coords={"intervention": interventions, "marker": markers},
                         dims={"theta": ["intervention", "marker"], "tau": ["marker"]})
    table = effects_table(idata, data, settings)
    tables.check(tables.EFFECT_ESTIMATES, table)
    assert table["sd_ratio"].to_numpy() == pytest.approx((table["posterior_sd"] / table["prior_sd"]).to_numpy())
    expected = {"tocilizumab": DATA_DRIVEN, "plasma_exchange": WEAKLY_INFORMED}
    for row in table.itertuples():
        assert row.evidence == expected.get(row.intervention, PRIOR_DRIVEN), row
        assert row.sd_ratio == pytest.approx(fraction.get(row.intervention, 0.9), rel=0.05)
