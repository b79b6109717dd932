"""The crsmeta command line: a study file skeleton from a table, and every problem of a study at once.

Every table here is SYNTHETIC (values made up for the test, labelled so in the citations).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from crsmeta.cli import main
from crsmeta.errors import InputError, InputErrors
from crsmeta.extract import extract_cases, extract_summaries
from crsmeta.harmonise import harmonise_study
from crsmeta.studies import load_study

WIDE_CSV = """\
Patient,Age,Salvage,Grade,IL6 pre (ng/mL),IL6 post (ng/mL),Temperature pre (°F),Temperature post (°F),Outcome
P1,54,TPE,3,2.5,0.4,102.2,99.5,alive
P2,61,plasmapheresis,4,12,<0.005,103.1,98.6,alive
P3,47,TPE,3,1.8,0.9,101.3,,died
"""
METADATA = {
    "citation": "SYNTHETIC test study for the crsmeta command line",
    "url": "https://example.org/synthetic",
    "population": "car_t_crs",
    "design": "case_series",
    "grading_scale": "Lee2014",
    "published": "2024",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory, the working directory of the commands."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(project: Path, relative: str, text: str) -> Path:
    path = project / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def fill_in(study_file: Path, **table_changes: Any) -> None:
    """What the curator does with a skeleton: the paper's metadata in place of the nulls, the
    provenance constants, and the changes given to the table's block."""
    data = yaml.safe_load(study_file.read_text(encoding="utf-8"))
    data.pop("doi")  # the synthetic study has a URL instead
    data.update(METADATA)
    table = data["cases"]
    table["constants"] = {**table.get("constants", {}), "locator": "Table 1", "quote": "Table 1 (per-patient values)"}
    for key, value in table_changes.items():
        table[key] = value
    study_file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def test_new_study_on_a_wide_csv_guesses_and_flags(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(project, "resources/literature/doe2024/cases.csv", WIDE_CSV)
    assert main(["new-study", "resources/literature/doe2024/cases.csv", "--id", "doe2024"]) == 0
    text = (project / "config/studies/doe2024.yaml").read_text(encoding="utf-8")
    skeleton = yaml.safe_load(text)
    cases = skeleton["cases"]
    assert cases["file"] == "resources/literature/doe2024/cases.csv"
    assert cases["layout"] == "wide"
    assert cases["columns"] == {"patient": "Patient", "intervention": "Salvage", "crs_grade": "Grade"}
    assert cases["measurements"]["IL6 pre (ng/mL)"] == {"marker": "IL-6", "timepoint": "pre", "unit": "ng/mL"}
    assert cases["measurements"]["Temperature post (°F)"] == {"marker": "temperature", "timepoint": "post", "unit": "°F"}
    assert cases["ignored_columns"] == ["Age"]  # the vocabulary's non-modelled 'age', flagged
    # nothing only the paper can give is filled in: the schema refuses every null
    for key in ("citation", "doi", "population", "design", "grading_scale", "published"):
        assert skeleton[key] is None
    assert cases["constants"] == {"locator": None, "quote": None}
    # every guess is marked, and the unrecognised column is listed in the file and on stderr
    assert "layout: wide  # CHECK: 4 header(s) name a marker, e.g. 'IL6 pre (ng/mL)'" in text
    assert "unit: ng/mL  # CHECK: unit guessed from the header" in text
    assert "intervention: Salvage  # CHECK: every value is a known intervention" in text
    assert "- Age  # CHECK: 'age' in the vocabulary, not modelled" in text
    assert "#   Outcome" in text
    assert "Outcome" not in cases.get("ignored_columns", [])
    assert "unrecognised columns (1; map or ignore each): Outcome" in capsys.readouterr().err


def test_skeleton_filled_in_passes_check(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(project, "resources/literature/doe2024/cases.csv", WIDE_CSV)
    main(["new-study", "resources/literature/doe2024/cases.csv", "--id", "doe2024"])
    study_file = project / "config/studies/doe2024.yaml"
    capsys.readouterr()
    assert main(["check", str(study_file)]) == 1
    out = capsys.readouterr().out
    assert "line 7, key 'citation': None is not of type 'string'" in out
    assert "table rows not checked until" in out  # population, design, grading_scale are still null

    fill_in(study_file, ignored_columns=["Age", "Outcome"])
    assert main(["check", "config/studies/doe2024.yaml"]) == 0
    assert capsys.readouterr().out.strip() == (
        "config/studies/doe2024.yaml (doe2024): ok, 12 rows extracted, 11 included, "
        "1 excluded (empty cell in a wide table: not measured ×1)"
    )


def test_check_compares_a_fresh_skeletons_headers_in_the_first_run(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The nulls of a fresh skeleton (population, the locator, a unit still to fill in) keep the
    rows unchecked, but not the header: its undeclared and missing columns are listed at once."""
    write(project, "resources/literature/doe2024/cases.csv", WIDE_CSV)
    main(["new-study", "resources/literature/doe2024/cases.csv", "--id", "doe2024"])
    study_file = project / "config/studies/doe2024.yaml"
    text = study_file.read_text(encoding="utf-8")
    # the curator misspells a measurement column, names a column the table lacks, and blanks a unit
    text = text.replace("    IL6 post (ng/mL):", "    IL6 post (pg/mL):")
    text = text.replace("    - Age  #", "    - Sex\n    - Age  #")
    text = text.replace("unit: °F  # CHECK", "unit: null  # CHECK", 1)
    study_file.write_text(text, encoding="utf-8")
    capsys.readouterr()
    assert main(["check", "config/studies/doe2024.yaml"]) == 1
    lines = capsys.readouterr().out.splitlines()
    table = "resources/literature/doe2024/cases.csv"
    expected = [
        f"key 'cases.ignored_columns[0]', {table}, row 1: column 'Sex', named in the study file, is missing from the table",
        f"key 'cases.measurements.IL6 post (pg/mL)', {table}, row 1: column 'IL6 post (pg/mL)', named in the study "
        "file, is missing from the table; the closest undeclared column of the table is 'IL6 post (ng/mL)'",
        f"{table}, row 1, column 'IL6 post (ng/mL)': unexpected column 'IL6 post (ng/mL)'",
        f"{table}, row 1, column 'Outcome': unexpected column 'Outcome'",
    ]
    for part in expected:
        assert sum(part in line for line in lines) == 1, part
    assert sum("schema allows" in line for line in lines) == 9  # the eight nulls and the unit
    assert lines[-1] == (
        "config/studies/doe2024.yaml: 13 problems; table rows not checked until design, grading_scale, population, "
        "cases.constants, cases.measurements pass the schema (headers checked)"
    )


def test_new_study_on_a_long_xlsx_then_check(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = project / "resources/literature/roe2025/cases.xlsx"
    table.parent.mkdir(parents=True)
    pd.DataFrame({
        "Patient": ["A", "A", "B", "B"],
        "Drug": ["tocilizumab", "tocilizumab", "Actemra", "Actemra"],
        "Cytokine": ["IL-6", "IL-6", "IFN-γ", "IFN-γ"],
        "Timepoint": ["pre", "post", "pre", "post"],
        "Value": [120, 30, 85, 12],
        "Unit": ["pg/mL", "pg/mL", "pg/mL", "pg/mL"],
    }).to_excel(table, index=False, sheet_name="Table 2")
    assert main(["new-study", str(table), "--id", "roe2025", "--sheet", "Table 2"]) == 0
    study_file = project / "config/studies/roe2025.yaml"
    text = study_file.read_text(encoding="utf-8")
    cases = yaml.safe_load(text)["cases"]
    assert (cases["layout"], cases["sheet"]) == ("long", "Table 2")
    assert "layout: long  # CHECK: column 'Cytokine' holds marker names" in text
    assert cases["columns"] == {
        "patient": "Patient", "intervention": "Drug", "marker": "Cytokine",
        "timepoint": "Timepoint", "value": "Value", "unit": "Unit",
    }
    assert "marker: Cytokine  # CHECK: every value is a known marker (IL-6, IFN-γ → IFN-gamma)" in text
    assert "measurements" not in cases and "ignored_columns" not in cases

    fill_in(study_file)
    capsys.readouterr()
    assert main(["check", str(study_file)]) == 0
    assert "ok, 4 rows extracted, 4 included, 0 excluded" in capsys.readouterr().out


def test_new_study_refuses_to_overwrite(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(project, "resources/literature/doe2024/cases.csv", WIDE_CSV)
    existing = write(project, "config/studies/doe2024.yaml", "id: doe2024  # the curator's work\n")
    assert main(["new-study", "resources/literature/doe2024/cases.csv", "--id", "doe2024"]) == 1
    assert existing.read_text(encoding="utf-8") == "id: doe2024  # the curator's work\n"
    assert "already exists; nothing written" in capsys.readouterr().err


def test_new_study_refuses_an_id_the_schema_refuses(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(project, "resources/x/cases.csv", WIDE_CSV)
    assert main(["new-study", "resources/x/cases.csv", "--id", "doe-2024"]) == 1
    assert "study id 'doe-2024'" in capsys.readouterr().err
    assert not (project / "config").exists()


SEVERAL_PROBLEMS = """\
id: many
citation: "SYN"
url: https://example.org/synthetic
population: car_t_crs
design: case_series
grading_scale: Lee2014
published: "2024-02-30"
cases:
  file: resources/many/cases.csv
  layout: wide
  columns: {patient: Patient, intervention: Salvage}
  constants: {locator: "Table 1", quote: "Table 1"}
  measurements:
    IL6_pre:  {marker: IL-6, timepoint: pre,  unit: ng/mLL}
    IL6_post: {marker: IL-6, timepoint: post, unit: furlong}
    T_pre:    {marker: temperature, timepoint: pre, unit: degF}
"""
SEVERAL_PROBLEMS_TABLE = """\
Patient,Salvage,IL6_pre,IL6_post,T_pre,Age
P1,TPE,2.5,0.4,102.2,54
P2,TPE,2.0,0.3,n.d.,61
"""


def test_check_reports_every_problem_at_once(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(project, "resources/many/cases.csv", SEVERAL_PROBLEMS_TABLE)
    study_file = write(project, "config/studies/many.yaml", SEVERAL_PROBLEMS)
    assert main(["check", "config/studies/many.yaml"]) == 1
    lines = capsys.readouterr().out.splitlines()
    expected = [
        "config/studies/many.yaml, line 2, key 'citation': 'SYN' is too short",
        "config/studies/many.yaml, line 7, key 'published': '2024-02-30' is not a date",
        "resources/many/cases.csv, row 1, column 'Age': unexpected column 'Age'",
        "config/studies/many.yaml, line 14, key 'cases.measurements.IL6_pre.unit': unknown unit 'ng/mLL'",
        "config/studies/many.yaml, line 15, key 'cases.measurements.IL6_post.unit': unit 'furlong'",
        "resources/many/cases.csv, row 3, column 'T_pre': cannot read 'n.d.' as a number",
        "config/studies/many.yaml (many): 6 problems",
    ]
    assert len(lines) == len(expected)
    for line, part in zip(lines, expected):
        assert part in line
    # the pipeline still stops at the first problem of a table, with the message it gave before
    fixed = SEVERAL_PROBLEMS.replace('"SYN"', '"SYNTHETIC study"').replace("2024-02-30", "2024-02-29")
    study_file.write_text(fixed, encoding="utf-8")
    without_age = "\n".join(line.rsplit(",", 1)[0] for line in SEVERAL_PROBLEMS_TABLE.splitlines()) + "\n"
    write(project, "resources/many/cases.csv", without_age)
    study = load_study("config/studies/many.yaml", project)
    with pytest.raises(InputError) as raised:
        harmonise_study(study, extract_cases(study), extract_summaries(study))
    # each row that reads a bad unit of the study file repeats it; crsmeta check shows it once
    assert isinstance(raised.value, InputErrors) and len({str(problem) for problem in raised.value.problems}) == 3
    assert str(raised.value) == str(raised.value.problems[0])


def test_installed_entry_point_checks_a_study(project: Path) -> None:
    write(project, "resources/literature/doe2024/cases.csv", WIDE_CSV)
    main(["new-study", "resources/literature/doe2024/cases.csv", "--id", "doe2024"])
    fill_in(project / "config/studies/doe2024.yaml", ignored_columns=["Age", "Outcome"])
    command = Path(sys.executable).parent / "crsmeta"
    finished = subprocess.run(
        [str(command), "check", "config/studies/doe2024.yaml"],
        cwd=project, capture_output=True, text=True, timeout=120, check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "config/studies/doe2024.yaml (doe2024): ok, 12 rows extracted" in finished.stdout
