"""The stage tables' contracts: strict reads name file, row and column; writes round-trip."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from crsmeta import tables
from crsmeta.errors import InputError
from crsmeta.model.diagnostics import PASSED, GateVerdict, with_verdict


def case_record(**changes: object) -> dict:
    """One harmonised case row as harmonise writes it (SYNTHETIC)."""
    record = dict.fromkeys(tables.HARMONISED_CASES.columns, "")
    record.update(
        study_id="s1", patient_id="p1", population="car_t_crs", design="case_report",
        intervention="tocilizumab", marker="IL-6", timepoint="pre", hours=math.nan, value=120.0,
        unit="pg/mL", censoring="none", digitised=False, source_file="cases.csv", source_row=2,
        source_column="value", synthetic=True,
    )
    record.update(changes)
    return record


@pytest.fixture
def cases_tsv(tmp_path):
    """A harmonised case table of two rows written through its contract."""
    path = tmp_path / "cases.tsv"
    rows = [case_record(), case_record(timepoint="post", hours=24.0, value=30.5, source_row=3)]
    tables.write(tables.HARMONISED_CASES, tables.frame(tables.HARMONISED_CASES, rows), path)
    return path


def edit_cell(path, row: int, column: str, text: str) -> None:
    """Put ``text`` in a cell of a TSV (row as a person counts it: header = row 1)."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.loc[row - 2, column] = text
    frame.to_csv(path, sep="\t", index=False, lineterminator="\n")


def test_round_trip_keeps_types_values_and_bytes(cases_tsv, tmp_path):
    back = tables.read(tables.HARMONISED_CASES, cases_tsv)
    assert back.dtypes.astype(str).to_dict() == {
        name: "str" if cell.dtype == "str" else cell.dtype
        for name, cell in tables.HARMONISED_CASES.cells.items()
    }
    assert back["hours"].isna().tolist() == [True, False]
    assert back["value"].tolist() == [120.0, 30.5]
    assert back["source_row"].tolist() == [2, 3]
    assert back["synthetic"].tolist() == [True, True]
    again = tmp_path / "again.tsv"
    tables.write(tables.HARMONISED_CASES, back, again)
    assert again.read_bytes() == cases_tsv.read_bytes()


def test_an_empty_table_round_trips_with_its_header(tmp_path):
    path = tmp_path / "changes.tsv"
    tables.write(tables.CHANGES, tables.frame(tables.CHANGES), path)
    assert path.read_text().rstrip("\n").split("\t") == tables.CHANGES.columns
    assert tables.read(tables.CHANGES, path).empty


def test_a_missing_column_is_named(cases_tsv):
    frame = pd.read_csv(cases_tsv, sep="\t", dtype=str, keep_default_na=False)
    frame.drop(columns="censoring").to_csv(cases_tsv, sep="\t", index=False)
    with pytest.raises(InputError, match=r"cases.tsv, row 1, column 'censoring': .*column 'censoring' is missing"):
        tables.read(tables.HARMONISED_CASES, cases_tsv)


def test_an_unexpected_column_is_named(cases_tsv):
    frame = pd.read_csv(cases_tsv, sep="\t", dtype=str, keep_default_na=False)
    frame.assign(comment="x").to_csv(cases_tsv, sep="\t", index=False)
    with pytest.raises(InputError, match=r"cases.tsv, row 1, column 'comment': .*unexpected column 'comment'"):
        tables.read(tables.HARMONISED_CASES, cases_tsv)


def test_columns_out_of_order_are_refused(cases_tsv):
    frame = pd.read_csv(cases_tsv, sep="\t", dtype=str, keep_default_na=False)
    columns = frame.columns.tolist()
    columns[0], columns[1] = columns[1], columns[0]
    frame[columns].to_csv(cases_tsv, sep="\t", index=False)
    with pytest.raises(InputError, match=r"row 1, column 'patient_id': .*out of order"):
        tables.read(tables.HARMONISED_CASES, cases_tsv)


@pytest.mark.parametrize(("column", "text", "expected"), [
    ("value", "12 pg", "a number"),
    ("value", "", "a number"),
    ("hours", "about 24", "a number or an empty cell"),
    ("source_row", "3.0", "a whole number"),
    ("digitised", "yes", "True or False"),
])
def test_a_cell_of_the_wrong_type_names_file_row_and_column(cases_tsv, column, text, expected):
    edit_cell(cases_tsv, 3, column, text)
    with pytest.raises(InputError, match=rf"cases.tsv, row 3, column '{column}': .*{text!r}.*expected {expected}"):
        tables.read(tables.HARMONISED_CASES, cases_tsv)


def test_a_value_outside_the_allowed_ones_names_its_cell(cases_tsv):
    edit_cell(cases_tsv, 2, "censoring", "below")
    with pytest.raises(InputError, match=r"row 2, column 'censoring': .*'below' is not allowed; expected one of"):
        tables.read(tables.HARMONISED_CASES, cases_tsv)


def test_a_frame_of_the_wrong_type_is_not_written(tmp_path):
    path = tmp_path / "cases.tsv"
    wrong = pd.DataFrame([case_record(value="120")])
    with pytest.raises(InputError, match=r"cases.tsv, column 'value': .*expected a number"):
        tables.write(tables.HARMONISED_CASES, wrong, path)
    assert not path.exists()


def test_a_frame_with_an_empty_text_cell_is_not_built():
    with pytest.raises(InputError, match=r"row 3, column 'marker': harmonised cases: empty cell"):
        tables.frame(tables.HARMONISED_CASES, [case_record(), case_record(marker=None)])


@pytest.fixture
def diagnostics_tsv(tmp_path):
    """A diagnostics table (a parameter, a chain and the fit's verdict) written through its contract."""
    sampler = tables.frame(tables.SAMPLER_DIAGNOSTICS, [
        {"analysis": "main", "kind": "parameter", "parameter": "mu", "chain": None, "r_hat": 1.001,
         "ess_bulk": 900.0, "ess_tail": 800.0, "divergences": None, "bfmi": math.nan},
        {"analysis": "main", "kind": "chain", "parameter": "sampler", "chain": 0, "r_hat": math.nan,
         "ess_bulk": math.nan, "ess_tail": math.nan, "divergences": 2, "bfmi": 0.9},
    ])
    path = tmp_path / "diagnostics.tsv"
    tables.write(tables.DIAGNOSTICS, with_verdict(sampler, GateVerdict(PASSED, 1000)), path)
    return path


def test_optional_counts_are_whole_numbers_or_empty(diagnostics_tsv, tmp_path):
    back = tables.read(tables.DIAGNOSTICS, diagnostics_tsv)
    assert back["chain"].dtype == "Int64" and back["chain"].isna().tolist() == [True, False, True]
    assert back["divergences"].iloc[1] == 2 and back["draws"].iloc[2] == 1000.0
    assert diagnostics_tsv.read_text().splitlines()[2].split("\t")[3] == "0", "a count is written without a decimal"
    again = tmp_path / "again.tsv"
    tables.write(tables.DIAGNOSTICS, back, again)
    assert again.read_bytes() == diagnostics_tsv.read_bytes()


def test_an_optional_count_that_is_not_whole_names_its_cell(diagnostics_tsv):
    edit_cell(diagnostics_tsv, 3, "divergences", "1.5")
    with pytest.raises(InputError, match=r"row 3, column 'divergences': .*'1.5'.*expected a whole number or an empty cell"):
        tables.read(tables.DIAGNOSTICS, diagnostics_tsv)
