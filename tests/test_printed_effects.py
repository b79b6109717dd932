"""Reported effects keep the numbers as printed: a "83% reduction", a log ratio with its CI or a
temperature difference in °F stays beside its harmonised value, through the harmonised summaries
table into the report's provenance (issue 11, point 7)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from crsmeta.errors import InputError
from crsmeta.extract import extract_cases, extract_summaries
from crsmeta.harmonise import HarmonisedStudy, combine, harmonise_study
from crsmeta.report import tables
from crsmeta.tables import CHANGES, HARMONISED_CASES, HARMONISED_SUMMARIES, frame, read, write
from crsmeta.studies import load_study

HEADER = "arm,intervention,marker,timepoint,hours,n,statistic,value,unit,effect_type,estimate,ci_low,ci_high,se,locator,quote"
PERCENT = (
    'device,CytoSorb,IL-6,change,24,12,not_stated,,%,percent_change,-83,-95,-40,,Abstract,'
    '"SYNTHETIC: IL-6 fell by 83% (95% CI 40 to 95%) in the first 24 h."'
)
LOG_RATIO = (
    'device,CytoSorb,ferritin,change,24,12,mean,,,log_ratio,-0.36,-0.62,-0.10,,Table 2,'
    '"SYNTHETIC: mean log ratio of ferritin -0.36 (95% CI -0.62 to -0.10)."'
)
FAHRENHEIT = (
    'device,CytoSorb,temperature,change,24,12,mean,,°F,difference,-1.8,,,0.9,Table 2,'
    '"SYNTHETIC: temperature fell by 1.8 °F (SE 0.9)."'
)


def curated_study(project: Path, *rows: str) -> Path:
    """A study file and its summary table as a curator writes them, in a scratch project."""
    table = project / "resources" / "doe2024" / "summaries.csv"
    table.parent.mkdir(parents=True)
    table.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    study = project / "config" / "studies" / "doe2024.yaml"
    study.parent.mkdir(parents=True)
    study.write_text(
        textwrap.dedent(
            """\
            id: doe2024
            citation: "SYNTHETIC Doe J. Hemoadsorption for cytokine storm. J Example. 2024."
            doi: 10.9999/synthetic.doe2024
            published: 2024
            population: viral_cytokine_storm
            design: cohort
            grading_scale: not_reported
            summaries:
              file: resources/doe2024/summaries.csv
            """
        ),
        encoding="utf-8",
    )
    return study


def harmonised(project: Path, *rows: str) -> HarmonisedStudy:
    study = load_study(curated_study(project, *rows), project)
    return harmonise_study(study, extract_cases(study), extract_summaries(study))


def by_marker(summaries: pd.DataFrame) -> dict[str, pd.Series]:
    return {row["marker"]: row for _, row in summaries.iterrows()}


def test_a_percent_change_keeps_its_printed_estimate_interval_and_unit(tmp_path: Path) -> None:
    row = by_marker(harmonised(tmp_path, PERCENT).summaries)["IL-6"]
    assert (row["source_estimate"], row["source_ci_low"], row["source_ci_high"], row["source_unit"]) == (
        "-83", "-95", "-40", "%")
    assert row["source_effect_type"] == "percent_change"
    assert row["estimate"] == pytest.approx(math.log(0.17))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((math.log(0.05), math.log(0.60)))


def test_a_log_ratio_keeps_its_printed_numbers_unchanged_beside_the_harmonised_ones(tmp_path: Path) -> None:
    row = by_marker(harmonised(tmp_path, LOG_RATIO).summaries)["ferritin"]
    assert (row["source_estimate"], row["source_ci_low"], row["source_ci_high"]) == ("-0.36", "-0.62", "-0.10")
    assert (row["estimate"], row["ci_low"], row["ci_high"]) == pytest.approx((-0.36, -0.62, -0.10))


def test_a_temperature_difference_in_fahrenheit_is_converted_and_kept_as_printed(tmp_path: Path) -> None:
    result = harmonised(tmp_path, FAHRENHEIT)
    row = by_marker(result.summaries)["temperature"]
    assert (row["estimate"], row["se"]) == pytest.approx((-1.0, 0.5))
    assert (row["unit"], row["source_estimate"], row["source_unit"]) == ("degC_difference", "-1.8", "°F")
    logged = result.conversions[result.conversions["subject"] == "temperature"]
    assert list(logged["target"]) == ["degC_difference"] and "5/9" in logged["factor"].iloc[0]


def test_a_summary_statistic_has_no_printed_effect(tmp_path: Path) -> None:
    level = "device,CytoSorb,IL-6,pre,0,12,median,2269,pg/mL,,,,,,Table 1,SYNTHETIC: median IL-6 2269 pg/mL"
    row = harmonised(tmp_path, level).summaries.iloc[0]
    assert (row["value"], row["source_value"]) == (2269.0, "2269")
    assert row["source_estimate"] == row["source_ci_low"] == row["source_ci_high"] == ""


def test_the_printed_numbers_survive_the_summaries_table(tmp_path: Path) -> None:
    combined = combine([harmonised(tmp_path, PERCENT, LOG_RATIO, FAHRENHEIT)]).summaries
    write(HARMONISED_SUMMARIES, combined, tmp_path / "summaries.tsv")
    table = read(HARMONISED_SUMMARIES, tmp_path / "summaries.tsv")
    assert list(table["source_estimate"]) == ["-83", "-0.36", "-1.8"]
    assert list(table["source_ci_low"]) == ["-95", "-0.62", ""]
    assert list(table["source_unit"]) == ["%", "", "°F"]


@pytest.mark.parametrize(
    ("row", "column", "problem"),
    [
        (PERCENT.replace(",%,", ",fold,"), "unit", "does not fit a percent change"),
        (PERCENT.replace(",-95,", ",-100,"), "ci_low", "non-positive ratio"),
        (FAHRENHEIT.replace(",°F,", ",,"), "unit", "no unit given"),
    ],
    ids=["percent-with-another-unit", "percent-bound-at-minus-100", "difference-without-unit"],
)
def test_a_reported_effect_that_cannot_be_read_names_its_cell(tmp_path: Path, row: str, column: str, problem: str) -> None:
    with pytest.raises(InputError) as caught:
        harmonised(tmp_path, row)
    message = str(caught.value)
    for part in ("doe2024.yaml", "resources/doe2024/summaries.csv", "row 2", f"column '{column}'", problem):
        assert part in message, f"{part!r} not in {message!r}"


def test_the_report_provenance_shows_the_printed_effect_beside_the_harmonised_one(tmp_path: Path) -> None:
    write(HARMONISED_SUMMARIES, harmonised(tmp_path, PERCENT).summaries, tmp_path / "summaries.tsv")
    summaries = read(HARMONISED_SUMMARIES, tmp_path / "summaries.tsv")
    effects = pd.DataFrame({"intervention": ["hemoadsorption"], "marker": ["IL-6"],
                            "populations": ["viral_cytokine_storm"]})
    no_changes, no_cases = frame(CHANGES), frame(HARMONISED_CASES)
    [block] = tables.provenance(effects, no_changes, no_cases, summaries)
    [row] = block["rows"].to_dict("records")
    assert row["printed"] == "-83 % (CI -95 to -40; percent change)"
    assert row["harmonised"] == "-1.772 log ratio (CI -2.996 to -0.511; i.e. -83%)"
    assert "83%" in row["quote"]
