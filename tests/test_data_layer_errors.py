"""Bad input fails with a message naming the file, the row and the column, and what was expected."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from crsmeta.errors import InputError
from crsmeta.extract import extract_cases, extract_summaries
from crsmeta.harmonise import harmonise_study
from crsmeta.studies import load_studies, load_study

LONG_HEADER = "patient,intervention,marker,timepoint,hours,value,unit,crs_grade,locator,quote"


def write_study(project: Path, body: str, table: str | None, *, name: str = "s1", layout: str = "long") -> Path:
    """Write a study file (and its case table) into a scratch project directory."""
    study = project / "config" / "studies" / f"{name}.yaml"
    study.parent.mkdir(parents=True, exist_ok=True)
    data = project / "resources" / name / "cases.csv"
    header = textwrap.dedent(
        f"""\
        id: {name}
        citation: "SYNTHETIC test study {name}"
        url: https://example.org/{name}
        population: car_t_crs
        design: case_series
        """
    )
    header += textwrap.dedent(body)
    if table is not None:
        data.parent.mkdir(parents=True, exist_ok=True)
        data.write_text(table, encoding="utf-8")
        header += f"cases:\n  file: resources/{name}/cases.csv\n  layout: {layout}\n"
    # last, so that the lines the tests name do not move
    study.write_text(header + "published: not_reported\n", encoding="utf-8")
    return study


def run_data_layer(study_path: Path, project: Path):
    study = load_study(study_path, project)
    return harmonise_study(study, extract_cases(study), extract_summaries(study))


def long_table(*rows: str) -> str:
    return "\n".join([LONG_HEADER, *rows]) + "\n"


GOOD_ROW = "P1,tocilizumab,IL-6,pre,0,120,pg/mL,3,Table 1,quoted"


def assert_names(error: InputError, *parts: str) -> None:
    message = str(error)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path


def test_good_long_table_harmonises(project: Path) -> None:
    study = write_study(project, "grading_scale: Lee2014\n", long_table(GOOD_ROW, "P1,tocilizumab,IL-6,post,24,1.2,ng/mL,3,Table 1,q"))
    result = run_data_layer(study, project)
    assert list(result.cases["value"]) == [120.0, 1200.0]
    assert set(result.rows["status"]) == {"included"}


@pytest.mark.parametrize(
    ("row", "column", "expected"),
    [
        ("P1,tocilizumab,IL-6,pre,0,120,furlongs,3,Table 1,q", "unit", "unit"),
        ("P1,tocilizumab,IL-6,pre,0,n.d.,pg/mL,3,Table 1,q", "value", "number"),
        ("P1,tocilizumab,IL-66,pre,0,120,pg/mL,3,Table 1,q", "marker", "IL-6"),
        ("P1,tocilizumabb,IL-6,pre,0,120,pg/mL,3,Table 1,q", "intervention", "tocilizumab"),
        ("P1,tocilizumab,IL-6,pre,0,120,pg/mL,7,Table 1,q", "crs_grade", "grade"),
        ("P1,tocilizumab,temperature,pre,0,102.2,°C,3,Table 1,q", "value", "confirm"),
        ("P1,tocilizumab,IL-6,pre,0,120,IU/mL,3,Table 1,q", "unit", "factor"),
        ("P1,tocilizumab,IL-6,before,0,120,pg/mL,3,Table 1,q", "timepoint", "pre, post, change"),
        ("P1,tocilizumab,IL-6,pre,soon,120,pg/mL,3,Table 1,q", "hours", "number"),
    ],
    ids=["unknown-unit", "non-numeric", "unknown-marker", "unknown-intervention", "impossible-grade",
         "temperature-range", "assay-unit", "unknown-timepoint", "bad-hours"],
)
def test_bad_cell_names_file_row_column(project: Path, row: str, column: str, expected: str) -> None:
    study = write_study(project, "grading_scale: Lee2014\n", long_table(GOOD_ROW, row))
    with pytest.raises(InputError) as caught:
        run_data_layer(study, project)
    assert_names(caught.value, "config/studies/s1.yaml", "resources/s1/cases.csv", "row 3", f"column '{column}'", expected)


def test_confirmed_value_passes_the_range_check(project: Path) -> None:
    body = "grading_scale: Lee2014\nconfirmed_values:\n  - {table: cases, row: 3, column: value, reason: printed so}\n"
    study = write_study(project, body, long_table(GOOD_ROW, "P1,tocilizumab,temperature,pre,0,44.5,°C,3,Table 1,q"))
    assert run_data_layer(study, project).cases["value"].iloc[1] == pytest.approx(44.5)


def test_missing_required_column(project: Path) -> None:
    table = "patient,intervention,marker,timepoint,value\nP1,tocilizumab,IL-6,pre,120\n"
    study = write_study(project, "grading_scale: Lee2014\n", table)
    with pytest.raises(InputError) as caught:
        run_data_layer(study, project)
    assert_names(caught.value, "s1.yaml", "resources/s1/cases.csv", "row 1", "column 'unit'", "expected")


def test_unexpected_column_is_not_dropped(project: Path) -> None:
    table = "patient,intervention,marker,timepoint,value,unit,age\nP1,tocilizumab,IL-6,pre,120,pg/mL,40\n"
    study = write_study(project, "grading_scale: Lee2014\n", table)
    with pytest.raises(InputError) as caught:
        run_data_layer(study, project)
    assert_names(caught.value, "resources/s1/cases.csv", "row 1", "column 'age'", "ignored_columns")


def test_duplicate_measurement(project: Path) -> None:
    study = write_study(project, "grading_scale: Lee2014\n", long_table(GOOD_ROW, "P1,tocilizumab,IL6,pre,0,130,pg/mL,3,Table 1,q"))
    with pytest.raises(InputError) as caught:
        run_data_layer(study, project)
    assert_names(caught.value, "s1.yaml", "resources/s1/cases.csv", "row 2", "column 'value'", "duplicate", "row 3")


def test_unknown_grading_scale(project: Path) -> None:
    study = write_study(project, "grading_scale: Lee2015\n", long_table(GOOD_ROW))
    with pytest.raises(InputError) as caught:
        load_study(study, project)
    assert_names(caught.value, "config/studies/s1.yaml", "line 6", "key 'grading_scale'", "Lee2014")


def test_study_id_clash(project: Path) -> None:
    first = write_study(project, "grading_scale: Lee2014\n", long_table(GOOD_ROW), name="s1")
    second = project / "config" / "studies" / "copy.yaml"
    second.write_text(first.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_studies([first, second], project)
    assert_names(caught.value, "copy.yaml", "line 1", "key 'id'", "already used by", "s1.yaml")


def test_missing_data_file(project: Path) -> None:
    study = write_study(project, "grading_scale: Lee2014\ncases:\n  file: resources/none.csv\n  layout: long\n", None)
    with pytest.raises(InputError) as caught:
        load_study(study, project)
    assert_names(caught.value, "s1.yaml", "line 8", "key 'cases.file'", "does not exist")


def test_data_file_outside_project(project: Path) -> None:
    (project.parent / "outside.csv").write_text(long_table(GOOD_ROW), encoding="utf-8")
    study = write_study(project, "grading_scale: Lee2014\ncases:\n  file: ../outside.csv\n  layout: long\n", None)
    with pytest.raises(InputError) as caught:
        load_study(study, project)
    assert_names(caught.value, "s1.yaml", "line 8", "key 'cases.file'", "outside the project directory")


def test_malformed_yaml(project: Path) -> None:
    study = write_study(project, "grading_scale: [Lee2014\n", None)
    with pytest.raises(InputError) as caught:
        load_study(study, project)
    assert_names(caught.value, "s1.yaml", "line 7", "character 1", "malformed YAML")


def test_yaml_tags_never_execute(project: Path) -> None:
    marker = project / "executed"
    body = f"grading_scale: !!python/object/apply:os.system ['touch {marker}']\n"
    study = write_study(project, body, None)
    with pytest.raises(InputError) as caught:
        load_study(study, project)
    assert not marker.exists()
    assert_names(caught.value, "s1.yaml", "line 6", "malformed YAML")


def test_empty_table(project: Path) -> None:
    study = write_study(project, "grading_scale: Lee2014\n", LONG_HEADER + "\n")
    with pytest.raises(InputError) as caught:
        run_data_layer(study, project)
    assert_names(caught.value, "s1.yaml", "resources/s1/cases.csv", "row 2", "no data rows")


# --------------------------------------------------------------------------- where the curator looks
WIDE_TABLE = "Patient,Age,Salvage,IL6_before,IL6_after\nP1,54,TPE,2.5,0.4\nP2,61,TPE,12,<0.005\n"


def write_wide_study(
    project: Path, table: str = WIDE_TABLE, *, before: str = "{marker: IL-6, timepoint: pre, unit: ng/mL, hours: 0}",
    constants: str = '{locator: "Table 1", quote: "Table 1 (per-patient values)"}',
) -> Path:
    """A wide case table as a curator writes it; the IL6_before measurement is on line 14."""
    study = project / "config" / "studies" / "doe2024.yaml"
    study.parent.mkdir(parents=True, exist_ok=True)
    data = project / "resources" / "doe2024" / "cases.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(table, encoding="utf-8")
    study.write_text(
        textwrap.dedent(
            f"""\
            id: doe2024
            citation: "SYNTHETIC Doe J. Plasma exchange for refractory CRS. J Example. 2024."
            pmid: 31513353
            population: car_t_crs
            design: case_series
            grading_scale: Lee2014
            cases:
              file: resources/doe2024/cases.csv
              layout: wide
              columns: {{patient: Patient, intervention: Salvage}}
              constants: {constants}
              ignored_columns: [Age]
              measurements:
                IL6_before: {before}
                IL6_after: {{marker: IL-6, timepoint: post, unit: ng/mL, hours: 24}}
            published: 2024
            """
        ),
        encoding="utf-8",
    )
    return study


def test_good_wide_table_harmonises(project: Path) -> None:
    result = run_data_layer(write_wide_study(project), project)
    assert list(result.cases["value"]) == [2500.0, 400.0, 12000.0, 5.0]


@pytest.mark.parametrize(
    ("before", "field", "expected"),
    [
        ("{marker: IL-6, timepoint: pre, unit: furlongs, hours: 0}", "unit", "unit 'furlongs'"),
        ("{marker: IL-66, timepoint: pre, unit: ng/mL, hours: 0}", "marker", "IL-6"),
        ("{marker: IL-6, timepoint: change, unit: ng/mL, hours: 0}", "unit", "not a unit of change"),
    ],
    ids=["unknown-unit", "unknown-marker", "change-unit"],
)
def test_bad_value_from_the_study_file_names_its_key_and_line(
    project: Path, before: str, field: str, expected: str
) -> None:
    study = write_wide_study(project, before=before)
    with pytest.raises(InputError) as caught:
        run_data_layer(study, project)
    assert_names(caught.value, "config/studies/doe2024.yaml", "line 14", f"key 'cases.measurements.IL6_before.{field}'", expected)
    assert "cases.csv" not in str(caught.value) and ", row " not in str(caught.value)


def test_bad_constant_names_its_key_and_line(project: Path) -> None:
    table = "Patient,Age,IL6_before,IL6_after\nP1,54,2.5,0.4\n"
    study = write_wide_study(project, table, constants='{intervention: plasma exchnge, locator: "Table 1"}')
    study.write_text(study.read_text(encoding="utf-8").replace(", intervention: Salvage", ""), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        run_data_layer(study, project)
    assert_names(caught.value, "doe2024.yaml", "line 11", "key 'cases.constants.intervention'", "plasma_exchange")


def test_constant_and_column_for_the_same_field_are_refused(project: Path) -> None:
    table = "Patient,Age,Salvage,locator,IL6_before,IL6_after\nP1,54,TPE,Table 2,2.5,0.4\n"
    with pytest.raises(InputError) as caught:
        run_data_layer(write_wide_study(project, table), project)
    assert_names(caught.value, "line 11", "key 'cases.constants.locator'", "resources/doe2024/cases.csv", "row 1", "column 'locator'", "both")


def test_bad_cell_of_a_wide_table_still_names_row_and_column(project: Path) -> None:
    table = WIDE_TABLE.replace("12,<0.005", "n.d.,<0.005")
    with pytest.raises(InputError) as caught:
        run_data_layer(write_wide_study(project, table), project)
    assert_names(caught.value, "doe2024.yaml", "resources/doe2024/cases.csv", "row 3", "column 'IL6_before'", "number")


def test_declared_measurement_renamed_in_the_table_is_named_missing(project: Path) -> None:
    table = WIDE_TABLE.replace("IL6_before", "IL6_pre")
    with pytest.raises(InputError) as caught:
        run_data_layer(write_wide_study(project, table), project)
    assert_names(
        caught.value, "config/studies/doe2024.yaml", "line 14", "key 'cases.measurements.IL6_before'",
        "resources/doe2024/cases.csv", "row 1", "'IL6_before'", "missing from the table",
        "closest undeclared column of the table is 'IL6_pre'",
    )


def test_mapped_column_renamed_in_the_table_is_named_missing(project: Path) -> None:
    table = WIDE_TABLE.replace("Patient", "Pt")
    with pytest.raises(InputError) as caught:
        run_data_layer(write_wide_study(project, table), project)
    assert_names(caught.value, "line 10", "key 'cases.columns.patient'", "row 1", "'Patient'", "missing", "'Pt'")


def test_missing_required_column_suggests_the_closest(project: Path) -> None:
    table = "patient,intervention,marker,timepoint,value,units\nP1,tocilizumab,IL-6,pre,120,pg/mL\n"
    study = write_study(project, "grading_scale: Lee2014\n", table)
    with pytest.raises(InputError) as caught:
        run_data_layer(study, project)
    assert_names(caught.value, "row 1", "column 'unit'", "is missing", "closest undeclared column of the table is 'units'")


def test_wide_table_without_measurements_names_the_layout_line(project: Path) -> None:
    study = write_wide_study(project)
    text = study.read_text(encoding="utf-8")
    study.write_text(text[: text.index("  measurements:")] + "published: 2024\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        run_data_layer(study, project)
    assert_names(caught.value, "doe2024.yaml", "line 9", "key 'cases.layout'", "cases.measurements")
