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


def test_one_step_per_publication_date_of_the_contributing_studies_but_the_main_set():
    """f reaches no model (no step of its own); the last date completes the set unless an undated
    study (e) contributes, which enters only the main analysis."""
    assert cumulative_dates(PUBLISHED, ["a", "b", "c", "d"]) == [PartialDate(2020), PartialDate(2021, 5)]
    assert cumulative_dates(PUBLISHED, ["a", "b", "c", "d", "e"]) == [
        PartialDate(2020), PartialDate(2021, 5), PartialDate(2023)]
    assert cumulative_dates(PUBLISHED, ["a"]) == []


def test_each_step_leaves_out_the_studies_published_later_or_not_dated():
    base = ModelSettings(exclude_studies=("a",))
    analyses = analysis_settings(base, ONLY_CUMULATIVE, sorted(PUBLISHED), ["a", "b", "c", "d", "e"], published=PUBLISHED)
    assert list(analyses) == [MAIN, "cumulative_2020", "cumulative_2021-05", "cumulative_2023"]
    assert analyses["cumulative_2021-05"].exclude_studies == ("a", "d", "e")
    assert analyses["cumulative_2020"].exclude_studies == ("a", "b", "c", "d", "e")
    assert settings_after_data(base, "cumulative_2021-05", PUBLISHED) == analyses["cumulative_2021-05"]
    assert analysis_settings(base, ONLY_CUMULATIVE, sorted(PUBLISHED), published=PUBLISHED) == {MAIN: base}
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
