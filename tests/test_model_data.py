"""Which rows enter an analysis' model (crsmeta.model.data): no patients counted twice."""

import pandas as pd
import pytest

from conftest import change_row, model_data, summary_row
from crsmeta.errors import InputError
from crsmeta.model import ModelSettings
from crsmeta.model.data import SAME_PATIENTS_AS_CASES
from typed_tables import change_frame, summary_frame, typed_changes, typed_summaries

SETTINGS = ModelSettings(chains=1, draws=10, tune=10, cores=1, prior_draws=10, gate=False)


def _study_with_cases_and_their_summary():
    """SYNTHETIC: study s1 prints its patients' IL-6 and their median before and after; s2 only a summary."""
    changes = change_frame([change_row("s1", patient, "tocilizumab", "IL-6", change)
                            for patient, change in enumerate([-1.2, -0.4, -0.9])])
    summaries = summary_frame([
        summary_row("s1", "tocilizumab", "IL-6", "pre", value=900, statistic="median", n=3),
        summary_row("s1", "tocilizumab", "IL-6", "post", hours=24, value=300, statistic="median", n=3),
        summary_row("s2", "tocilizumab", "IL-6", "pre", value=500, statistic="median", n=10),
        summary_row("s2", "tocilizumab", "IL-6", "post", hours=24, value=200, statistic="median", n=10),
    ])
    return changes, summaries


def test_a_summary_of_patients_also_given_case_by_case_does_not_enter():
    data = model_data(*_study_with_cases_and_their_summary(), SETTINGS)
    assert list(data.cases["study_id"]) == ["s1"] * 3
    assert list(data.observations["study_id"]) == ["s2"]
    dropped = data.audit[data.audit["reason"] == SAME_PATIENTS_AS_CASES]
    assert list(zip(dropped["level"], dropped["study_id"])) == [("summary", "s1")]


def test_without_the_case_rows_the_summary_of_the_same_patients_enters():
    summary_only = SETTINGS.replace(include_cases=False)
    data = model_data(*_study_with_cases_and_their_summary(), summary_only)
    assert data.cases.empty and sorted(data.observations["study_id"]) == ["s1", "s2"]
    assert SAME_PATIENTS_AS_CASES not in set(data.audit["reason"])


def test_changes_of_cell_texts_are_refused_not_coerced():
    """The changes come typed (tables.read): a frame of cell texts fails at its first column of
    the wrong type instead of being read as numbers and flags."""
    _, summaries = _study_with_cases_and_their_summary()
    text = pd.DataFrame([change_row("s1", 0, "tocilizumab", "IL-6", -1.2, lower=-1.2, upper=-1.2)])
    with pytest.raises(InputError, match="per-patient changes"):
        model_data(text, summaries, SETTINGS)


def test_leaving_a_study_out_keeps_every_level_and_reports_only_levels_with_rows(tiny_changes, tiny_summaries):
    """Leaving out t1, the only study of hemoadsorption, standard care and the viral population:
    the levels stay (the model's structure and compiled code stay the main model's), the rows and
    the cells reported go. before_filters is the data of every row."""
    changes, summaries = typed_changes(tiny_changes), typed_summaries(tiny_summaries)
    main = model_data(changes, summaries, SETTINGS)
    left_out = model_data(changes, summaries, SETTINGS.replace(exclude_studies=("t1",)))
    for dim in ("intervention", "marker", "population", "population_shifted"):
        assert left_out.coords[dim] == main.coords[dim], dim
    assert "hemoadsorption" in left_out.coords["intervention"]
    assert "t1" not in left_out.coords["study"] and "t1" not in set(left_out.observations["study_id"])
    assert "hemoadsorption" not in set(left_out.counts()["intervention"])
    assert main.unfiltered is None and main.before_filters is main
    assert len(left_out.before_filters.observations) == len(main.observations)
