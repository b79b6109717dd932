"""Identifiers as curators write them: PMID quoted or not, DOI bare, with doi: or as a URL, PMCID."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from crsmeta.errors import InputError
from crsmeta.extract import extract_cases, extract_summaries
from crsmeta.harmonise import harmonise_study
from crsmeta.studies import Study, load_study

CASES = textwrap.dedent(
    """\
    patient,intervention,marker,timepoint,hours,value,unit,locator,quote
    P1,tocilizumab,IL-6,pre,0,120,pg/mL,Table 1,IL-6 120 pg/mL before
    P1,tocilizumab,IL-6,post,24,40,pg/mL,Table 1,IL-6 40 pg/mL after
    """
)


def study_with(project: Path, identifiers: str) -> Path:
    """A case report's study file with the identifier lines as the curator typed them."""
    table = project / "resources" / "doe2024" / "cases.csv"
    table.parent.mkdir(parents=True)
    table.write_text(CASES, encoding="utf-8")
    study = project / "config" / "studies" / "doe2024.yaml"
    study.parent.mkdir(parents=True)
    study.write_text(
        'id: doe2024\ncitation: "SYNTHETIC Doe J. Tocilizumab for CRS. J Example. 2024."\n'
        + identifiers
        + textwrap.dedent(
            """\
            published: 2024
            population: car_t_crs
            design: case_report
            grading_scale: ASTCT2019
            cases:
              file: resources/doe2024/cases.csv
              layout: long
            """
        ),
        encoding="utf-8",
    )
    return study


def loaded(project: Path, identifiers: str) -> Study:
    return load_study(study_with(project, identifiers), project)


@pytest.mark.parametrize("pmid", ["31513353", "'31513353'", '"31513353"'], ids=["unquoted", "single", "double"])
def test_pmid_quoted_or_not(tmp_path: Path, pmid: str) -> None:
    study = loaded(tmp_path, f"pmid: {pmid}\n")
    assert study.data["pmid"] == "31513353"


@pytest.mark.parametrize(
    "written",
    [
        "10.1182/blood.2022017414",
        "doi:10.1182/blood.2022017414",
        "'DOI: 10.1182/blood.2022017414'",
        "https://doi.org/10.1182/blood.2022017414",
        "http://dx.doi.org/10.1182/blood.2022017414",
        "https://www.doi.org/10.1182/blood.2022017414",
        "https://doi.org/10.1182%2Fblood.2022017414",
    ],
    ids=["bare", "doi-prefix", "DOI-space", "https-resolver", "dx-resolver", "www-resolver", "encoded-slash"],
)
def test_doi_stored_bare_however_written(tmp_path: Path, written: str) -> None:
    study = loaded(tmp_path, f"doi: {written}\n")
    assert study.data["doi"] == "10.1182/blood.2022017414"


def test_doi_copied_from_the_browser_is_decoded(tmp_path: Path) -> None:
    study = loaded(tmp_path, "doi: https://doi.org/10.1002/%28SICI%291097-0142\n")
    assert study.data["doi"] == "10.1002/(SICI)1097-0142"


@pytest.mark.parametrize("pmcid", ["PMC10330552", "pmc10330552"])
def test_pmcid_accepted(tmp_path: Path, pmcid: str) -> None:
    study = loaded(tmp_path, f"doi: 10.1016/j.jtct.2023.04.001\npmid: 37031746\npmcid: {pmcid}\n")
    assert (study.data["pmid"], study.data["pmcid"]) == ("37031746", "PMC10330552")


def test_study_with_unquoted_pmid_runs_through_the_data_layer(tmp_path: Path) -> None:
    study = loaded(tmp_path, "pmid: 31513353\n")
    harmonised = harmonise_study(study, extract_cases(study), extract_summaries(study))
    assert list(harmonised.cases["value"]) == [120.0, 40.0]


@pytest.mark.parametrize(
    ("identifiers", "key", "line"),
    [
        ("pmid: PMID31513353\n", "pmid", 3),
        ("pmid: 0\n", "pmid", 3),
        ("doi: https://example.org/10.1182/blood.2022017414\n", "doi", 3),
        ("doi: 10.1182\n", "doi", 3),
        ("doi: 10.1182%2Fblood.2022017414\n", "doi", 3),
        ("doi: 10.1182/blood\npmcid: 10330552\n", "pmcid", 4),
    ],
    ids=["pmid-with-prefix", "pmid-zero", "doi-other-site", "doi-without-suffix", "doi-encoded-but-bare",
         "pmcid-without-PMC"],
)
def test_bad_identifier_names_key_and_line(tmp_path: Path, identifiers: str, key: str, line: int) -> None:
    with pytest.raises(InputError) as caught:
        loaded(tmp_path, identifiers)
    message = str(caught.value)
    assert "config/studies/doe2024.yaml" in message
    assert f"line {line}" in message and f"key '{key}'" in message, message
