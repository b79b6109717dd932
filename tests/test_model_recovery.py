"""Recovery of a simulated truth (crsmeta.model.recovery): intervals against known θ, per cell."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from crsmeta import tables
from crsmeta.errors import InputError
from crsmeta.model.recovery import coverage_summary, draw_coverage, recovery_summary, truth_coverage

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


def test_a_draw_covers_the_central_share_of_each_cell_and_the_summary_compares_the_truth_with_it():
    """Independent cells of N(0, 0.1) draws: a draw falls in a cell's central 90% interval 90% of the
    time, so over 4 cells with data its coverage is 0.75 or 1 mostly; a truth covered in 1 of 4 is
    rarer than almost every draw, one covered in all 4 is not."""
    idata = posterior_around(np.zeros((2, 2)))
    cells = pd.DataFrame({"intervention": np.repeat(INTERVENTIONS, 2), "marker": MARKERS * 2})
    drawn = draw_coverage(idata, truth_coverage(idata, truth_table([[0.0, 0.0], [0.0, 0.0]]), cells))
    assert drawn.shape == (1000,) and drawn.mean() == pytest.approx(0.9, abs=0.01)
    assert set(np.unique(drawn)) <= {0.0, 0.25, 0.5, 0.75, 1.0}

    missed = recovery_summary(idata, truth_coverage(idata, truth_table([[0.0, 5.0], [5.0, 5.0]]), cells))
    assert list(missed.columns) == tables.RECOVERY_SUMMARY.columns
    row = missed.iloc[0]
    assert (row["covered_with_data"], row["cells_with_data"]) == (1, 4)
    assert row["calibrated_p05"] == 0.5 and row["p_as_low"] < 0.01
    assert recovery_summary(idata, truth_coverage(idata, truth_table([[0.0] * 2] * 2), cells)).iloc[0]["p_as_low"] == 1.0


def test_a_truth_of_cell_texts_is_refused_and_a_missing_cell_is_an_error():
    """The truth is read typed (tables.read(tables.TRUTH, ...)): text is not coerced to θ."""
    idata = posterior_around(np.zeros((2, 2)))
    truth = truth_table([[0.0, 0.0], [0.0, 0.0]])
    with pytest.raises(InputError, match="theta"):
        truth_coverage(idata, truth.astype(str), truth)
    with pytest.raises(ValueError, match="no θ for the fitted cell"):
        truth_coverage(idata, truth.iloc[:3], truth)
