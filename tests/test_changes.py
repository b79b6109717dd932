"""Per-patient changes: pairing rules, censoring bounds, pass-through, and the pairing audit."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from crsmeta import tables
from crsmeta.changes import derive_changes, source_reference
from crsmeta.errors import InputError


def case_rows(*rows: dict) -> pd.DataFrame:
    """Harmonised case rows (given as the cells' text), typed as read from cases.tsv."""
    records = []
    for number, row in enumerate(rows, start=2):
        record = dict.fromkeys(tables.HARMONISED_CASES.columns, "")
        record.update(
            study_id="s1", patient_id="p1", population="car_t_crs", design="case_report",
            intervention="tocilizumab", marker="IL-6", unit="pg/mL", censoring="none",
            digitised="False", synthetic="False", source_file="cases.csv",
            source_row=str(number), source_column="value",
        )
        record.update({key: str(value) for key, value in row.items()})
        records.append(record)
    text = pd.DataFrame(records, columns=tables.HARMONISED_CASES.columns, dtype=str)
    return tables.parse(tables.HARMONISED_CASES, text)


def assert_every_row_accounted_for(cases: pd.DataFrame, changes: pd.DataFrame,
                                   pairing: pd.DataFrame) -> None:
    used = [ref for refs in changes["source_rows"] for ref in refs.split(";")]
    audited = [source_reference(row) for _, row in pairing.iterrows()]
    everything = sorted(used + audited)
    assert everything == sorted(source_reference(row) for _, row in cases.iterrows())


def test_exact_pair_gives_log_ratio_and_records_provenance():
    cases = case_rows(
        {"timepoint": "pre", "hours": "-2", "value": "1000", "flags": "curator_reconstructed"},
        {"timepoint": "post", "hours": "24", "value": "100", "digitised": "True"},
    )
    changes, pairing = derive_changes(cases)
    row = changes.iloc[0]
    assert row["change"] == pytest.approx(math.log(0.1))
    assert row["change_lower"] == row["change_upper"] == row["change"]
    assert row["censoring"] == "none"
    assert row["unit"] == "log_ratio"
    assert row["hours"] == 24
    assert row["selection"] == "closest_to_target"
    assert row["digitised"] and not row["synthetic"]
    assert row["flags"] == "curator_reconstructed"
    assert row["source_rows"] == "s1:cases.csv:2:value;s1:cases.csv:3:value"
    assert pairing.empty


def test_temperature_is_a_difference_in_degrees():
    cases = case_rows(
        {"marker": "temperature", "unit": "degC", "timepoint": "pre", "hours": "0",
         "value": "39.7"},
        {"marker": "temperature", "unit": "degC", "timepoint": "post", "hours": "12",
         "value": "37.2"},
    )
    changes, _ = derive_changes(cases)
    assert changes.iloc[0]["change"] == pytest.approx(-2.5)
    assert changes.iloc[0]["unit"] == "degC_difference"


@pytest.mark.parametrize(
    ("pre", "post", "censoring", "lower_open", "upper_open"),
    [
        ("none", "left", "left", True, False),
        ("none", "right", "right", False, True),
        ("left", "none", "right", False, True),
        ("right", "none", "left", True, False),
        ("left", "right", "right", False, True),
        ("right", "left", "left", True, False),
    ],
)
def test_one_sided_censoring_gives_a_bound(pre, post, censoring, lower_open, upper_open):
    cases = case_rows(
        {"timepoint": "pre", "hours": "0", "value": "800", "censoring": pre},
        {"timepoint": "post", "hours": "24", "value": "5", "censoring": post},
    )
    changes, pairing = derive_changes(cases)
    row = changes.iloc[0]
    bound = math.log(5 / 800)
    assert row["censoring"] == censoring
    assert math.isnan(row["change"])
    assert row["change_lower"] == (-math.inf if lower_open else pytest.approx(bound))
    assert row["change_upper"] == (math.inf if upper_open else pytest.approx(bound))
    assert (row["pre_censoring"], row["post_censoring"]) == (pre, post)
    assert pairing.empty


@pytest.mark.parametrize("direction", ["left", "right"])
def test_both_censored_in_the_same_direction_is_not_a_change(direction):
    cases = case_rows(
        {"timepoint": "pre", "hours": "0", "value": "5", "censoring": direction},
        {"timepoint": "post", "hours": "24", "value": "5", "censoring": direction},
    )
    changes, pairing = derive_changes(cases)
    assert changes.empty
    assert set(pairing["reason"]) == {
        "both values censored in the same direction: change unbounded"
    }
    assert_every_row_accounted_for(cases, changes, pairing)


def test_post_selection_rules_and_the_audit_of_unchosen_values():
    cases = case_rows(
        {"timepoint": "pre", "hours": "-30", "value": "2000"},
        {"timepoint": "pre", "hours": "-1", "value": "1000"},
        {"timepoint": "post", "hours": "6", "value": "500"},
        {"timepoint": "post", "hours": "20", "value": "200"},
        {"timepoint": "post", "hours": "200", "value": "50"},
    )
    closest, audit = derive_changes(cases, selection="closest_to_target", target_hours=24)
    assert closest.iloc[0]["post_value"] == 200
    assert closest.iloc[0]["pre_value"] == 1000
    first, _ = derive_changes(cases, selection="first_in_window")
    assert first.iloc[0]["post_value"] == 500
    assert first.iloc[0]["selection"] == "first_in_window"
    reasons = dict(zip(audit["source_row"], audit["reason"]))
    assert reasons[2] == "earlier pre value superseded by the one closest to the intervention"
    assert reasons[4].startswith("post value outside the selection rule: another post value")
    assert reasons[6] == "post value outside the window 0–168 h"
    assert_every_row_accounted_for(cases, closest, audit)


def test_closest_to_target_prefers_the_earlier_value_on_a_tie():
    cases = case_rows(
        {"timepoint": "pre", "hours": "0", "value": "100"},
        {"timepoint": "post", "hours": "12", "value": "50"},
        {"timepoint": "post", "hours": "36", "value": "20"},
    )
    changes, _ = derive_changes(cases, target_hours=24)
    assert changes.iloc[0]["hours"] == 12


def test_post_without_hours_is_used_only_when_it_is_the_only_post_value():
    alone = case_rows(
        {"timepoint": "pre", "value": "100"},
        {"timepoint": "post", "value": "10"},
    )
    changes, pairing = derive_changes(alone)
    assert changes.iloc[0]["flags"] == "hours not reported"
    assert math.isnan(changes.iloc[0]["hours"])
    assert pairing.empty

    beside = case_rows(
        {"timepoint": "pre", "value": "100"},
        {"timepoint": "post", "value": "10"},
        {"timepoint": "post", "hours": "24", "value": "30"},
    )
    changes, pairing = derive_changes(beside)
    assert changes.iloc[0]["post_value"] == 30
    assert pairing.iloc[0]["reason"].startswith("post value without hours")
    assert_every_row_accounted_for(beside, changes, pairing)


def test_several_pre_values_without_hours_are_ambiguous():
    cases = case_rows(
        {"timepoint": "pre", "value": "100"},
        {"timepoint": "pre", "value": "300"},
        {"timepoint": "post", "hours": "24", "value": "10"},
    )
    changes, pairing = derive_changes(cases)
    assert changes.empty
    reasons = list(pairing["reason"])
    assert reasons[:2] == ["several pre values whose order is not reported: ambiguous"] * 2
    assert reasons[2] == "no usable pre value (see the pre rows)"


@pytest.mark.parametrize(
    ("rows", "reason"),
    [
        ([{"timepoint": "pre", "hours": "0", "value": "100"}], "only a pre value"),
        ([{"timepoint": "post", "hours": "24", "value": "100"}], "pre value missing"),
        (
            [{"timepoint": "pre", "hours": "0", "value": "100"},
             {"timepoint": "post", "hours": "300", "value": "10"}],
            "no post value within the window 0–168 h",
        ),
        (
            [{"timepoint": "pre", "hours": "0", "value": "0"},
             {"timepoint": "post", "hours": "24", "value": "10"}],
            "a value <= 0: the log ratio is undefined",
        ),
    ],
)
def test_rows_without_a_change_are_audited_with_a_reason(rows, reason):
    cases = case_rows(*rows)
    changes, pairing = derive_changes(cases)
    assert changes.empty
    assert reason in set(pairing["reason"])
    assert_every_row_accounted_for(cases, changes, pairing)


def test_reported_change_passes_through_unless_pre_and_post_exist():
    reported = case_rows(
        {"timepoint": "change", "hours": "48", "value": "-1.5", "unit": "log_ratio",
         "censoring": "left"},
    )
    changes, pairing = derive_changes(reported)
    row = changes.iloc[0]
    assert (row["selection"], row["censoring"], row["hours"]) == ("reported_change", "left", 48)
    assert (row["change_lower"], row["change_upper"]) == (-math.inf, -1.5)
    assert pairing.empty

    both = case_rows(
        {"timepoint": "pre", "hours": "0", "value": "100"},
        {"timepoint": "post", "hours": "48", "value": "10"},
        {"timepoint": "change", "hours": "48", "value": "-2.3", "unit": "log_ratio"},
    )
    changes, pairing = derive_changes(both)
    assert changes.iloc[0]["selection"] == "closest_to_target"
    assert pairing.iloc[0]["reason"] == (
        "the change was derived from the patient's pre and post values"
    )


def test_many_patients_every_row_used_or_audited_and_order_deterministic():
    rows = []
    for patient, marker in [("p2", "IL-6"), ("p1", "CRP"), ("p1", "IL-6")]:
        rows += [
            {"patient_id": patient, "marker": marker, "timepoint": "pre", "hours": "-5",
             "value": "10"},
            {"patient_id": patient, "marker": marker, "timepoint": "pre", "hours": "0",
             "value": "20"},
            {"patient_id": patient, "marker": marker, "timepoint": "post", "hours": "24",
             "value": "5"},
            {"patient_id": patient, "marker": marker, "timepoint": "post", "hours": "72",
             "value": "2"},
        ]
    rows.append({"patient_id": "p3", "timepoint": "pre", "value": "10"})
    cases = case_rows(*rows)
    changes, pairing = derive_changes(cases)
    assert list(zip(changes["patient_id"], changes["marker"])) == [
        ("p1", "CRP"), ("p1", "IL-6"), ("p2", "IL-6")
    ]
    assert_every_row_accounted_for(cases, changes, pairing)
    shuffled, _ = derive_changes(cases.sample(frac=1, random_state=3))
    pd.testing.assert_frame_equal(changes, shuffled)


def test_changes_and_pairing_round_trip_through_their_contracts(tmp_path):
    cases = case_rows(
        {"timepoint": "pre", "hours": "", "value": "1000"},
        {"timepoint": "post", "hours": "24", "value": "100", "censoring": "left"},
        {"timepoint": "post", "hours": "400", "value": "90"},
    )
    changes, pairing = derive_changes(cases)
    tables.write(tables.CHANGES, changes, tmp_path / "changes.tsv")
    tables.write(tables.PAIRING, pairing, tmp_path / "pairing.tsv")
    back = tables.read(tables.CHANGES, tmp_path / "changes.tsv")
    assert back.loc[0, "change_lower"] == -math.inf
    assert back.loc[0, "change_upper"] == pytest.approx(math.log(0.1))
    pd.testing.assert_frame_equal(back, changes)
    pd.testing.assert_frame_equal(tables.read(tables.PAIRING, tmp_path / "pairing.tsv"), pairing)


def test_cases_read_as_text_are_refused_not_converted():
    text = case_rows({"timepoint": "pre", "value": "1000"}).astype(str)
    with pytest.raises(InputError, match=r"column 'hours': harmonised cases: the column holds str values"):
        derive_changes(text)


def test_closest_to_target_without_a_target_is_refused():
    with pytest.raises(ValueError, match="target_hours"):
        derive_changes(case_rows(), target_hours=None)
