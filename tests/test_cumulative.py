"""Cumulative meta-analysis: which steps are fitted, with which studies, and the stacked table."""

import pandas as pd

from crsmeta import tables
from crsmeta.cumulative import ALL_STUDIES, cumulative_table
from crsmeta.model import ModelSettings
from crsmeta.model.analyses import (
    CUMULATIVE_PREFIX, MAIN, analyses_after_data, analysis_settings, cumulative_dates, settings_after_data,
)
from crsmeta.studies import PartialDate

PUBLISHED = {"a": PartialDate(2020), "b": PartialDate(2021, 5), "c": PartialDate(2021, 5), "d": PartialDate(2023),
             "e": None, "f": PartialDate(2019)}
ONLY_CUMULATIVE = {"activate": True, "leave_one_out": False, "cumulative": True, **{name: False for name in (
    "case_only", "summary_only", "tau_prior_half", "tau_prior_double", "sigma_prior_half", "sigma_prior_double",
    "student_t", "no_digitised", "corr_low", "corr_high", "baseline_adjusted", "exclude_high_risk")}}


def _contributing(cells: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"study_id": list(cells), "case_rows": 0, "summary_rows": 1, "cells": list(cells.values())})


def test_a_step_at_each_date_where_an_estimate_of_several_studies_has_some_but_not_all():
    """IL-6 of tocilizumab: a (2020), b and c (2021-05), d (2023), e (no date). Steps at 2020 and
    2021-05 (d and e still to come); none at 2023 (e has no date, it enters the main analysis
    only, so 2023 is still short of it: a step). f's one-study estimate and a cell whose studies
    share one date give none."""
    contributing = _contributing({"a": "tocilizumab|IL-6", "b": "tocilizumab|IL-6;anakinra|CRP",
                                  "c": "tocilizumab|IL-6;anakinra|CRP", "d": "tocilizumab|IL-6",
                                  "e": "tocilizumab|IL-6", "f": "emapalumab|IL-10"})
    assert cumulative_dates(PUBLISHED, contributing) == [PartialDate(2020), PartialDate(2021, 5), PartialDate(2023)]
    dated = contributing[contributing["study_id"] != "e"]
    assert cumulative_dates(PUBLISHED, dated) == [PartialDate(2020), PartialDate(2021, 5)]
    same_date = _contributing({"b": "anakinra|CRP", "c": "anakinra|CRP", "f": "emapalumab|IL-10"})
    assert cumulative_dates(PUBLISHED, same_date) == []


def test_each_step_leaves_out_the_studies_published_later_or_not_dated():
    base = ModelSettings(exclude_studies=("a",))
    steps = [PartialDate(2020), PartialDate(2021, 5), PartialDate(2023)]
    analyses = analysis_settings(base, ONLY_CUMULATIVE, sorted(PUBLISHED), ["a", "b", "c", "d", "e"],
                                 published=PUBLISHED, cumulative=steps)
    assert list(analyses) == [MAIN, "cumulative_2020", "cumulative_2021-05", "cumulative_2023"]
    assert analyses["cumulative_2021-05"].exclude_studies == ("a", "d", "e")
    assert analyses["cumulative_2020"].exclude_studies == ("a", "b", "c", "d", "e")
    assert settings_after_data(base, "cumulative_2021-05", PUBLISHED) == analyses["cumulative_2021-05"]
    assert analysis_settings(base, ONLY_CUMULATIVE | {"cumulative": False}, sorted(PUBLISHED), published=PUBLISHED,
                             cumulative=steps) == {MAIN: base}
    assert analyses_after_data(ONLY_CUMULATIVE) and not analyses_after_data(ONLY_CUMULATIVE | {"cumulative": False})


def _effects(analysis: str, rows: list[tuple[str, str, int, float]]) -> list[dict]:
    return [{"analysis": analysis, "intervention": i, "marker": m, "scale": "log_ratio", "n_studies": n,
             "n_patients": 10 * n, "theta_median": t, "theta_lo95": t - 1, "theta_hi95": t + 1, "pct_median": 0.0,
             "pct_lo95": 0.0, "pct_hi95": 0.0, "p_reduction": 0.5, "gate": "passed"} for i, m, n, t in rows]


def test_the_table_holds_each_estimate_of_two_or_more_studies_at_every_step_in_order():
    effects = pd.DataFrame(
        _effects(MAIN, [("tocilizumab", "IL-6", 3, -1.0), ("anakinra", "CRP", 1, -0.5)])
        + _effects(CUMULATIVE_PREFIX + "2021-05", [("tocilizumab", "IL-6", 2, -1.2), ("anakinra", "CRP", 1, -0.5)])
        + _effects(CUMULATIVE_PREFIX + "2020", [("tocilizumab", "IL-6", 1, -2.0)]))
    table = cumulative_table(effects, PUBLISHED, ["a", "b", "c", "d"])
    tables.check(tables.CUMULATIVE, table)
    assert list(table["up_to"]) == ["2020", "2021-05", ALL_STUDIES]
    assert list(table["theta_median"]) == [-2.0, -1.2, -1.0]
    assert list(table["n_studies_in"]) == [1, 3, 4]
    assert set(table["marker"]) == {"IL-6"}
