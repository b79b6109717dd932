"""Recovery of a simulated truth (crsmeta.model.recovery): intervals against known θ, per cell."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from crsmeta import tables
from crsmeta.errors import InputError
from crsmeta.model.recovery import coverage_summary, truth_coverage

INTERVENTIONS = ["tocilizumab", "emapalumab"]
MARKERS = ["IL-6", "ferritin"]


def posterior_around(centres: np.ndarray, sd: float = 0.1) -> az.InferenceData:
    """2 chains × 500 draws of θ[intervention, marker] ~ Normal(centres, sd), seeded."""
    draws = np.random.default_rng(0).normal(centres, sd, size=(2, 500, *centres.shape))
    return az.from_dict(posterior={"theta": draws}, coords={"intervention": INTERVENTIONS, "marker": MARKERS},
                        dims={"theta": ["intervention", "marker"]})


def truth_table(values: list[list[float]]) -> pd.DataFrame:
    """The simulator's truth (tables.TRUTH) with the given θ; τ and σ are not read here."""
    return tables.frame(tables.TRUTH, [
        {"intervention": i, "marker": m, "theta": values[a][b], "tau": 0.3, "sigma": 0.5, "synthetic": True}
        for a, i in enumerate(INTERVENTIONS) for b, m in enumerate(MARKERS)])


def test_cells_are_covered_when_the_truth_is_inside_and_missed_when_far_outside():
    idata = posterior_around(np.array([[-0.5, -0.2], [0.0, 0.3]]))
    truth = truth_table([[-0.5, -0.2], [1.0, 0.3]])  # emapalumab × IL-6 is 10 SDs away
    cells = pd.DataFrame({"intervention": ["tocilizumab", "emapalumab"], "marker": ["IL-6", "IL-6"]})
    table = truth_coverage(idata, truth, cells).set_index(["intervention", "marker"])
    assert list(table.reset_index().columns) == tables.RECOVERY.columns
    assert table["covered"].to_dict() == {("tocilizumab", "IL-6"): True, ("tocilizumab", "ferritin"): True,
                                          ("emapalumab", "IL-6"): False, ("emapalumab", "ferritin"): True}
    assert table["has_data"].sum() == 2 and table.loc[("emapalumab", "IL-6"), "has_data"]
    lo, hi = table.loc[("tocilizumab", "IL-6"), ["lo", "hi"]]
    assert hi - lo == pytest.approx(2 * 1.645 * 0.1, rel=0.1)  # a central 90% interval


def test_summary_counts_all_cells_and_cells_with_data():
    idata = posterior_around(np.zeros((2, 2)))
    truth = truth_table([[0.0, 5.0], [0.0, 0.0]])
    cells = pd.DataFrame({"intervention": ["tocilizumab"], "marker": ["ferritin"]})
    summary = coverage_summary(truth_coverage(idata, truth, cells))
    assert summary == {"cells": 4, "covered": 3, "coverage": 0.75,
                       "cells_with_data": 1, "covered_with_data": 0, "coverage_with_data": 0.0}


def test_a_truth_of_cell_texts_is_refused_and_a_missing_cell_is_an_error():
    """The truth is read typed (tables.read(tables.TRUTH, ...)): text is not coerced to θ."""
    idata = posterior_around(np.zeros((2, 2)))
    truth = truth_table([[0.0, 0.0], [0.0, 0.0]])
    with pytest.raises(InputError, match="theta"):
        truth_coverage(idata, truth.astype(str), truth)
    with pytest.raises(ValueError, match="no θ for the fitted cell"):
        truth_coverage(idata, truth.iloc[:3], truth)
