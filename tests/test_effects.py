"""The standard-care contrast says whether it rests on a study with both arms (no sampling)."""

import numpy as np
import pandas as pd
import xarray as xr

from conftest import summary_row
from crsmeta.model import ModelData, ModelSettings
from crsmeta.model.effects import _contrast, studies_with_both_arms


def _with_separate_control(tiny_summaries: pd.DataFrame) -> pd.DataFrame:
    """SYNTHETIC: adds a standard-care cohort for ferritin that holds no other arm."""
    control = [summary_row("c2", "standard_care", "ferritin", "pre", value=3000, n=15),
               summary_row("c2", "standard_care", "ferritin", "post", value=2000, n=15)]
    return pd.concat([tiny_summaries, pd.DataFrame(control)], ignore_index=True)


def _posterior(data: ModelData) -> xr.Dataset:
    interventions, markers = data.coords["intervention"], data.coords["marker"]
    draws = np.random.default_rng(0).normal(-0.5, 0.1, size=(len(interventions), len(markers), 200))
    theta = xr.DataArray(draws, dims=("intervention", "marker", "sample"),
                         coords={"intervention": interventions, "marker": markers})
    return xr.Dataset({"theta": theta})


def test_contrast_within_a_trial_names_the_trial(tiny_changes, tiny_summaries):
    data = ModelData.from_tables(tiny_changes, _with_separate_control(tiny_summaries), ModelSettings())
    assert studies_with_both_arms(data, "hemoadsorption", "IL-6") == ["t1"]
    contrast = _contrast(_posterior(data), data, "hemoadsorption", "IL-6")
    assert contrast["contrast_basis"] == "within_study"
    assert "t1" in contrast["contrast_note"]
    assert np.isfinite(contrast["contrast_median"])


def test_contrast_across_studies_is_marked_indirect(tiny_changes, tiny_summaries):
    data = ModelData.from_tables(tiny_changes, _with_separate_control(tiny_summaries), ModelSettings())
    assert studies_with_both_arms(data, "tocilizumab", "ferritin") == []
    contrast = _contrast(_posterior(data), data, "tocilizumab", "ferritin")
    assert contrast["contrast_basis"] == "indirect"
    assert contrast["contrast_note"].startswith("indirect")
    assert np.isfinite(contrast["contrast_median"])


def test_no_contrast_has_no_basis(tiny_changes, tiny_summaries):
    data = ModelData.from_tables(tiny_changes, tiny_summaries, ModelSettings())
    contrast = _contrast(_posterior(data), data, "tocilizumab", "ferritin")
    assert contrast["contrast_basis"] == "" and np.isnan(contrast["contrast_median"])
