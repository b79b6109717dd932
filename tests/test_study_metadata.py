"""Study metadata: publication date, date added, risk-of-bias appraisal (issue 13, points 2 and 7).

The study files written here are SYNTHETIC (citations say so); the bundled studies are checked
against their own citations only. No appraisal of a bundled study exists: the ratings below are
made up for the tests and labelled SYNTHETIC.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup

from crsmeta.errors import InputError
from crsmeta.io import load_yaml_with_lines
from crsmeta.model.analyses import EXCLUDE_HIGH_RISK, MAIN, analysis_settings, reweighting_of, skipped_analyses
from crsmeta.model.settings import ModelSettings
from crsmeta.report import ReportInputs
from crsmeta.report import tables as report_tables
from crsmeta.report.render import report_html
from crsmeta.studies import (
    NOT_REPORTED, PartialDate, by_publication, date_problems, high_risk_study_ids, load_studies, load_study,
)

from fixtures.report.build import write_fixture_project

# ArviZ 0.23 passes matplotlib 3.11 a deprecated alias mapping on every plot; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted((ROOT / "config" / "studies").glob("*.yaml"))
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]

HEADER = """\
id: doe2024
citation: "SYNTHETIC Doe J. Tocilizumab for CRS. J Example. 2024."
url: https://example.org/doe2024
population: car_t_crs
design: case_series
grading_scale: ASTCT2019
"""
# a SYNTHETIC appraisal, made up for the tests: nobody appraised a real study here
SYNTHETIC_APPRAISAL = """\
risk_of_bias:
  tool: JBI_case_series
  domains:
    clear inclusion criteria: yes
    complete inclusion: "no"
    outcomes reported: unclear
  overall: {overall}
  rater: SYNTHETIC test rater
  note: SYNTHETIC rating written by tests/test_study_metadata.py
"""


def write(tmp_path: Path, extra: str, name: str = "doe2024") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(HEADER.replace("doe2024", name) + textwrap.dedent(extra), encoding="utf-8")
    return path


def load_error(tmp_path: Path, extra: str) -> str:
    with pytest.raises(InputError) as caught:
        load_study(write(tmp_path, extra), tmp_path)
    return str(caught.value)


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(("written", "expected"), [
    ("2024", "2024"), ("'2024'", "2024"), ("2024-05", "2024-05"), ("2024-05-14", "2024-05-14"),
    ("'2024-05-14'", "2024-05-14"),
])
def test_published_keeps_the_precision_the_citation_gives(tmp_path, written, expected):
    study = load_study(write(tmp_path, f"published: {written}\nadded: 2026-11-21\n"), tmp_path)
    assert str(study.published) == expected
    assert study.added.isoformat() == "2026-11-21"


def test_not_reported_publication_date(tmp_path):
    study = load_study(write(tmp_path, "published: not_reported\n"), tmp_path)
    assert study.published is None and study.added is None


def test_partial_dates_order_by_the_first_day_of_their_period():
    texts = ["2024-02", "2024-01-01", "2023-12-31", "2024", "2024-01"]
    assert [str(d) for d in sorted(PartialDate.parse(t) for t in texts)] == [
        "2023-12-31", "2024", "2024-01", "2024-01-01", "2024-02"]


def test_studies_without_a_date_come_after_every_dated_one(tmp_path):
    studies = [load_study(write(tmp_path, f"published: {date}\n", name), tmp_path)
               for name, date in [("a", NOT_REPORTED), ("b", "2025"), ("c", "2024-06"), ("d", "2024")]]
    assert [study.id for study in by_publication(studies)] == ["d", "c", "b", "a"]


def test_published_is_required(tmp_path):
    message = load_error(tmp_path, "")
    assert "doe2024.yaml, line 1" in message and "'published' is a required property" in message
    assert "YYYY-MM-DD, YYYY-MM or YYYY" in message and NOT_REPORTED in message


def test_a_synthetic_study_needs_no_publication_date(tmp_path):
    assert load_study(write(tmp_path, "synthetic: true\n"), tmp_path).published is None


@pytest.mark.parametrize(("extra", "key", "line", "problem"), [
    ("published: 2024-02-30\n", "published", 7, "'2024-02-30' is not a date (day is out of range for month)"),
    ("published: 2024-13\n", "published", 7, "month 13 does not exist"),
    ("published: 2024/05\n", "published", 7, "does not match"),
    ("published: May 2024\n", "published", 7, "does not match"),
    ("published: 24\n", "published", 7, "less than the minimum"),
    ("published: 2024\nadded: 2026-11\n", "added", 8, "does not match"),
    ("published: 2024\nadded: 2026-11-31\n", "added", 8, "'2026-11-31' is not a date"),
], ids=["no-such-day", "no-such-month", "slashes", "words", "two-digit-year", "added-partial", "added-no-such-day"])
def test_bad_date_names_file_key_line_and_form(tmp_path, extra, key, line, problem):
    message = load_error(tmp_path, extra)
    assert f"doe2024.yaml, line {line}, key '{key}'" in message, message
    assert problem in message and "YYYY-MM-DD" in message, message


def test_date_problems_lists_every_bad_date_at_once(tmp_path):
    """For `crsmeta check`, which lists all of a file's problems."""
    path = write(tmp_path, "published: 2023-02-29\nadded: 2026-04-31\n")
    data, key_lines = load_yaml_with_lines(path)
    problems = date_problems(data, path, key_lines)
    assert [(problem.key, problem.line) for problem in problems] == [("published", 7), ("added", 8)]


# --------------------------------------------------------------------------- risk of bias


def test_appraisal_is_read_with_yes_no_answers_as_text(tmp_path):
    study = load_study(write(tmp_path, "published: 2024\n" + SYNTHETIC_APPRAISAL.format(overall="high")), tmp_path)
    assert study.overall_risk_of_bias == "high"
    assert study.risk_of_bias["domains"] == {
        "clear inclusion criteria": "yes", "complete inclusion": "no", "outcomes reported": "unclear"}
    assert high_risk_study_ids([study]) == ["doe2024"]


def test_a_study_without_appraisal_is_not_appraised(tmp_path):
    study = load_study(write(tmp_path, "published: 2024\n"), tmp_path)
    assert study.risk_of_bias is None and study.overall_risk_of_bias is None
    assert high_risk_study_ids([study]) == []


APPRAISAL_ERRORS = [
    (SYNTHETIC_APPRAISAL.format(overall="moderate"), "risk_of_bias.overall", 14, "'moderate' is not one of",
     "low, some_concerns or high"),
    (SYNTHETIC_APPRAISAL.format(overall="low").replace("unclear", "maybe"), "risk_of_bias.domains.outcomes reported",
     13, "'maybe' is not one of", "JBI checklist answer"),
    (SYNTHETIC_APPRAISAL.format(overall="low").replace("JBI_case_series", "JBI"), "risk_of_bias.tool", 9,
     "'JBI' is not one of", "Murad2018"),
    ("risk_of_bias:\n  tool: RoB2\n  domains: {randomisation: yes}\n  overall: low\n  rater: SYNTHETIC\n",
     "risk_of_bias.domains.randomisation", 10, "True is not of type 'string'", "RoB 2 domain judgement"),
    ("risk_of_bias:\n  tool: ROBINS-I\n  domains: {confounding: some_concerns}\n  overall: high\n  rater: SYNTHETIC\n",
     "risk_of_bias.domains.confounding", 10, "'some_concerns' is not one of", "ROBINS-I domain judgement"),
    ("risk_of_bias:\n  tool: NOS\n  domains: {selection: 5}\n  overall: low\n  rater: SYNTHETIC\n",
     "risk_of_bias.domains.selection", 10, "greater than the maximum", "Newcastle-Ottawa stars"),
    ("risk_of_bias:\n  tool: Murad2018\n  domains: {selection: yes}\n  overall: low\n", "risk_of_bias", 8,
     "'rater' is a required property", "appraisal"),
]


@pytest.mark.parametrize(("extra", "key", "line", "problem", "expected"), APPRAISAL_ERRORS,
                         ids=["overall", "jbi-answer", "tool", "rob2-yes", "robins-moderate-scale", "nos-stars", "no-rater"])
def test_bad_judgement_names_file_key_line_and_scale(tmp_path, extra, key, line, problem, expected):
    message = load_error(tmp_path, "published: 2024\n" + extra)
    assert f"doe2024.yaml, line {line}, key '{key}'" in message, message
    assert problem in message and expected in message, message


# --------------------------------------------------------------------------- bundled studies


def _date_texts(published: PartialDate) -> list[str]:
    """How a citation may print the date: ISO, '14 May 2024', 'May 14, 2024', 'May 2024', '2024'."""
    if published.day:
        month = MONTHS[published.month - 1]
        return [str(published), f"{published.day} {month} {published.year}", f"{month} {published.day}, {published.year}"]
    if published.month:
        return [str(published), f"{MONTHS[published.month - 1]} {published.year}"]
    return [str(published.year)]


@pytest.mark.parametrize("path", BUNDLED, ids=[path.stem for path in BUNDLED])
def test_bundled_publication_date_is_the_one_its_citation_prints(path):
    study = load_study(path.relative_to(ROOT), ROOT)
    citation = study.data["citation"]
    if study.published is None:
        # not_reported only where the citation says the year was not seen
        assert "year not shown" in citation and not re.search(r"\b(19|20)\d\d\b", citation), citation
        return
    assert any(re.search(rf"(?<![\d-]){re.escape(text)}(?![\d-])", citation) for text in _date_texts(study.published)), (
        f"{path.name}: published {study.published} is not printed in its citation: {citation}")


@pytest.mark.parametrize("path", BUNDLED, ids=[path.stem for path in BUNDLED])
def test_bundled_study_was_added_when_its_file_entered_the_repository(path):
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    first = subprocess.run(["git", "log", "--diff-filter=A", "--format=%as", "--", str(path.relative_to(ROOT))],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    if not first:
        pytest.skip(f"{path.name} is not committed yet")
    assert load_study(path.relative_to(ROOT), ROOT).added.isoformat() == first[-1]


def test_no_bundled_study_carries_an_appraisal():
    """Nobody has appraised the bundled studies: a rating would be invented."""
    assert all("risk_of_bias" not in load_study(path.relative_to(ROOT), ROOT).data for path in BUNDLED)


# --------------------------------------------------------------------------- exclude_high_risk

ONLY_HIGH_RISK = {"activate": True, "leave_one_out": False, **{name: False for name in (
    "case_only", "summary_only", "tau_prior_half", "tau_prior_double", "sigma_prior_half", "sigma_prior_double",
    "student_t", "no_digitised", "corr_low", "corr_high", "baseline_adjusted")}}


def synthetic_rated_studies(tmp_path: Path) -> list:
    """Three SYNTHETIC studies; two carry a SYNTHETIC high rating written by this test."""
    ratings = {"a": "high", "b": "low", "c": "high", "d": None}
    return [load_study(write(tmp_path, "published: 2024\n" + (
        SYNTHETIC_APPRAISAL.format(overall=overall) if overall else ""), name), tmp_path)
        for name, overall in ratings.items()]


def test_exclude_high_risk_leaves_out_the_studies_rated_high(tmp_path):
    studies = synthetic_rated_studies(tmp_path)
    ids = [study.id for study in studies]
    base = ModelSettings(exclude_studies=("b",))
    analyses = analysis_settings(base, ONLY_HIGH_RISK, ids, high_risk=high_risk_study_ids(studies))
    assert set(analyses) == {MAIN, EXCLUDE_HIGH_RISK}
    assert analyses[EXCLUDE_HIGH_RISK].exclude_studies == ("a", "b", "c")
    assert analyses[EXCLUDE_HIGH_RISK].replace(exclude_studies=()) == base.replace(exclude_studies=())
    assert skipped_analyses(ONLY_HIGH_RISK, ids, high_risk_study_ids(studies)) == {}
    # two studies left out: sampled anew, not reweighted from the main fit
    assert reweighting_of(base, analyses[EXCLUDE_HIGH_RISK]) is None


def test_one_high_risk_study_is_reweighted_like_a_leave_one_out(tmp_path):
    base = ModelSettings()
    analyses = analysis_settings(base, ONLY_HIGH_RISK, ["a", "b"], high_risk=["a"])
    assert reweighting_of(base, analyses[EXCLUDE_HIGH_RISK]).left_out == "a"


def test_exclude_high_risk_is_skipped_with_its_reason_when_no_study_is_rated_high(tmp_path):
    studies = [study for study in synthetic_rated_studies(tmp_path) if study.overall_risk_of_bias != "high"]
    ids = [study.id for study in studies]
    analyses = analysis_settings(ModelSettings(), ONLY_HIGH_RISK, ids, high_risk=high_risk_study_ids(studies))
    assert set(analyses) == {MAIN}
    assert "no study is rated at high risk of bias" in skipped_analyses(ONLY_HIGH_RISK, ids, [])[EXCLUDE_HIGH_RISK]
    # a rating of a study that is not in the analysis' study list does not count
    assert set(analysis_settings(ModelSettings(), ONLY_HIGH_RISK, ids, high_risk=["elsewhere"])) == {MAIN}


def test_exclude_high_risk_switched_off_is_neither_run_nor_skipped():
    cfg = ONLY_HIGH_RISK | {EXCLUDE_HIGH_RISK: False}
    assert set(analysis_settings(ModelSettings(), cfg, ["a"], high_risk=["a"])) == {MAIN}
    assert skipped_analyses(cfg, ["a"], []) == {}
    assert skipped_analyses(cfg | {"activate": False, EXCLUDE_HIGH_RISK: True}, ["a"], []) == {}


def test_bundled_studies_run_no_exclude_high_risk_analysis():
    studies = [load_study(path.relative_to(ROOT), ROOT) for path in BUNDLED]
    assert high_risk_study_ids(studies) == []
    assert EXCLUDE_HIGH_RISK in skipped_analyses({}, [study.id for study in studies], [])


# --------------------------------------------------------------------------- report's study table


def _study_table(paths: list[Path]) -> pd.DataFrame:
    empty = pd.DataFrame(columns=["study_id", "patient_id", "status"])
    studies = report_tables.study_records(load_studies(paths, paths[0].parent))
    return report_tables.study_table(studies, empty, empty, empty).set_index("study_id")


def test_study_table_shows_dates_and_the_overall_judgement(tmp_path):
    paths = [write(tmp_path, "published: 2024-05\nadded: 2026-11-21\n" + SYNTHETIC_APPRAISAL.format(overall="some_concerns"), "a"),
             write(tmp_path, "published: not_reported\n", "b"),
             write(tmp_path, "published: 2024-05-14\n", "c")]
    table = _study_table(paths)
    assert table.loc["a", ["published", "added", "risk_of_bias"]].tolist() == ["2024-05", "2026-11-21", "some concerns"]
    assert table.loc["a", "risk_of_bias_detail"]["domains"][0] == {"domain": "clear inclusion criteria", "judgement": "yes"}
    assert table.loc["b", ["published", "added", "risk_of_bias"]].tolist() == ["not reported", "", "not appraised"]
    assert table.loc["c", "published"] == "2024-05-14" and table.loc["c", "risk_of_bias_detail"] is None


@pytest.fixture(scope="module")
def fixture_inputs(tmp_path_factory: pytest.TempPathFactory) -> ReportInputs:
    return ReportInputs.from_paths(**write_fixture_project(tmp_path_factory.mktemp("rob"), synthetic=True))


def _rendered(inputs: ReportInputs, tmp_path: Path, overall: str | None) -> BeautifulSoup:
    extra = "published: 2024\nsynthetic: true\n" + (SYNTHETIC_APPRAISAL.format(overall=overall) if overall else "")
    studies = [*inputs.studies, *report_tables.study_records(load_studies([write(tmp_path, extra)], tmp_path))]
    return BeautifulSoup(report_html(dataclasses.replace(inputs, studies=studies)), "html.parser")


def test_report_says_not_appraised_and_why_exclude_high_risk_did_not_run(fixture_inputs, tmp_path):
    soup = _rendered(fixture_inputs, tmp_path, None)
    headers = [th.get_text() for th in soup.select("#study-table thead th")]
    cells = [td.get_text(" ", strip=True) for td in soup.select("#study-doe2024 td")]
    assert cells[headers.index("Published")] == "2024" and cells[headers.index("Risk of bias")] == "not appraised"
    note = soup.select_one("#risk-of-bias-note").get_text(" ", strip=True)
    assert "0 of 4 studies appraised" in note and "exclude_high_risk) was not run" in note


def test_report_shows_a_high_rating_with_its_domains(fixture_inputs, tmp_path):
    soup = _rendered(fixture_inputs, tmp_path, "high")
    cell = soup.select_one("#study-doe2024 td.rob")
    assert cell.select_one("summary").get_text(strip=True) == "high"
    assert "complete inclusion: no" in cell.get_text(" ", strip=True) and "SYNTHETIC test rater" in cell.get_text()
    note = soup.select_one("#risk-of-bias-note").get_text(" ", strip=True)
    assert "1 of 4 studies appraised" in note and "1 rated high" in note
