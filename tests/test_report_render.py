"""The HTML report renders from SYNTHETIC fixtures: every section, DOIs, embedded figures, no
external resources, the watermark exactly when the data are synthetic, provenance one link away."""

from __future__ import annotations

import dataclasses
import re
import stat
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest
from bs4 import BeautifulSoup

from crsmeta import tables as tables_module
from crsmeta.errors import InputError
from crsmeta.report import ReportInputs, render_report, tables
from crsmeta.report.render import report_html
from crsmeta.studies import load_studies
from fixtures.report.build import STUDIES, write_fixture_project

# ArviZ 0.23 passes matplotlib 3.11 a deprecated alias mapping on every plot; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")

SECTION_IDS = [
    "summary", "not-an-effect", "summary-table", "inclusion", "studies", "harmonisation", "forest",
    "heterogeneity", "comparisons", "diagnostics", "predictive-checks", "prior-posterior",
    "sensitivity", "frequentist", "methods", "provenance",
]
RESOURCE_TAGS = ["img", "script", "iframe", "embed", "object", "source", "video", "audio", "image", "use"]


def _inputs(root: Path, synthetic: bool) -> ReportInputs:
    return ReportInputs.from_paths(**write_fixture_project(root, synthetic=synthetic))


@pytest.fixture(scope="module")
def synthetic_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportInputs, BeautifulSoup, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    inputs = _inputs(root, synthetic=True)
    out = root / "results/report/report.html"
    render_report(inputs, out)
    return inputs, BeautifulSoup(out.read_text(encoding="utf-8"), "html.parser"), out


@pytest.fixture(scope="module")
def real_report(tmp_path_factory: pytest.TempPathFactory) -> BeautifulSoup:
    inputs = _inputs(tmp_path_factory.mktemp("flagged_real"), synthetic=False)
    return BeautifulSoup(report_html(inputs), "html.parser")


def test_every_section_is_present(synthetic_report):
    _, soup, _ = synthetic_report
    for section in SECTION_IDS:
        assert soup.find(id=section) is not None, section


def test_every_study_doi_is_linked(synthetic_report):
    _, soup, _ = synthetic_report
    hrefs = {a["href"] for a in soup.find_all("a", href=True)}
    for study in STUDIES:
        assert f"https://doi.org/{study['doi']}" in hrefs


def test_figures_are_inline_svg(synthetic_report):
    inputs, soup, _ = synthetic_report
    n_markers = inputs.effects["marker"].nunique()
    assert len(soup.select("#forest svg")) == n_markers
    for section in ("heterogeneity", "diagnostics", "sensitivity"):
        assert soup.select(f"#{section} svg"), section


def test_no_external_resource_is_loaded(synthetic_report):
    _, soup, _ = synthetic_report
    for tag in soup.find_all(RESOURCE_TAGS):
        for attribute in ("src", "href", "xlink:href", "data"):
            value = tag.get(attribute, "")
            assert not re.match(r"\s*(https?:)?//", value), (tag.name, value)
    assert not soup.find_all("link"), "no <link>: styles are inline"
    for style in soup.find_all("style"):
        assert "@import" not in style.text and not re.search(r"url\(\s*['\"]?(https?:)?//", style.text)


def test_watermark_when_synthetic(synthetic_report):
    _, soup, _ = synthetic_report
    assert len(soup.select(".watermark")) == 1
    assert soup.find(id="synthetic-banner") is not None
    for svg in soup.find_all("svg"):
        assert "SYNTHETIC" in svg.get_text(), "every figure carries the watermark"


def test_no_watermark_when_not_synthetic(real_report):
    assert not real_report.select(".watermark")
    assert real_report.find(id="synthetic-banner") is None
    assert "SYNTHETIC" not in real_report.title.text
    for svg in real_report.find_all("svg"):
        assert "SYNTHETIC" not in svg.get_text()


def test_summary_links_reach_the_quotes(synthetic_report):
    _, soup, _ = synthetic_report
    links = soup.select("#summary-table a[href^='#prov-']")
    assert links
    for link in links:
        block = soup.find(id=link["href"][1:])
        assert block is not None, link["href"]
        assert block.find("blockquote") is not None and "SYNTHETIC quote" in block.text


def test_sparse_estimates_are_flagged(synthetic_report):
    inputs, soup, _ = synthetic_report
    single = inputs.effects[inputs.effects["n_studies"].astype(int) == 1]
    assert len(soup.select("#summary-table tr.warn")) >= len(single) > 0
    assert "rests on a single study" in soup.find(id="summary").text


def test_summary_leads_with_the_evidence_label(synthetic_report):
    """The label is the first column, before the estimate; prior → posterior SD beside it; the
    legend says what the labels mean and that a change is not an effect."""
    inputs, soup, _ = synthetic_report
    table = soup.find(id="summary-table")
    headers = [th.get_text(strip=True) for th in table.select("thead th")]
    assert headers[0] == "Evidence" and headers.index("Evidence") < headers.index("Change (median)")
    assert "SD of θ: prior → posterior" in headers
    body = table.select("tbody tr")
    labels = [tr.find("td").get_text(strip=True) for tr in body]
    assert sorted(labels) == sorted(inputs.effects["evidence"])
    assert labels[0] == "data-driven" and labels[-1] == "prior-driven"
    sds = [tr.find_all("td")[headers.index("SD of θ: prior → posterior")].get_text(strip=True) for tr in body]
    assert all(re.fullmatch(r"\d+\.\d\d( °C)? → \d+\.\d\d( °C)?", text) for text in sds), sds
    legend = soup.find(id="evidence-legend").get_text(" ", strip=True)
    for words in ("data-driven", "weakly informed", "prior-driven", "0.3", "0.7", "not its effect"):
        assert words in legend, words


def test_report_file_is_readable_by_others(synthetic_report):
    _, _, out = synthetic_report
    assert out.stat().st_mode & stat.S_IROTH
    assert not list(out.parent.glob(".*.tmp"))


def test_posterior_with_other_names_degrades_with_a_message(synthetic_report):
    inputs, _, _ = synthetic_report
    other = az.from_dict(posterior={"effect": np.zeros((2, 10, 3))})
    soup = BeautifulSoup(report_html(dataclasses.replace(inputs, idata=other, tau=None, superiority=None)),
                         "html.parser")
    assert "No τ table" in soup.find(id="heterogeneity").text
    assert "no superiority table" in soup.find(id="heterogeneity").text
    assert "no posterior predictive" in soup.find(id="diagnostics").text
    assert soup.find(id="summary-table") is not None


def test_recovery_section_only_for_a_synthetic_demo(synthetic_report):
    inputs, soup, _ = synthetic_report
    assert soup.find(id="recovery") is None
    cells = inputs.effects[["intervention", "marker"]]
    recovery = cells.assign(theta=-0.5, median=-0.4, lo=-0.6, hi=-0.2, covered=True, has_data=True, synthetic=True)
    recovery.loc[recovery.index[0], ["theta", "covered"]] = [0.5, False]
    recovery = tables_module.frame(tables_module.RECOVERY, recovery)
    summary = tables_module.frame(tables_module.RECOVERY_SUMMARY, [{
        "cells": len(cells), "covered": len(cells) - 1, "cells_with_data": len(cells),
        "covered_with_data": len(cells) - 1, "coverage_with_data": (len(cells) - 1) / len(cells),
        "calibrated_p05": 0.75, "p_as_low": 0.02, "synthetic": True}])
    html = report_html(dataclasses.replace(inputs, recovery=recovery, recovery_summary=summary))
    section = BeautifulSoup(html, "html.parser").find(id="diagnostics")
    assert f"{len(cells) - 1} of {len(cells)} cells with data" in section.text
    text = " ".join(section.text.split())
    assert "at least 75% of the cells with data in 95% of draws" in text
    assert "2% of draws fall in as few cells as the truth or fewer: fewer than the model itself expects" in text
    assert len(section.select("td.bad")) >= 1


def test_no_failed_analysis_alert_when_every_analysis_passed(synthetic_report):
    _, soup, _ = synthetic_report
    assert soup.find(id="failed-analyses") is None and soup.find(id="failed-sensitivity") is None
    assert "passed" in soup.find(id="diagnostics").text


def test_provenance_shows_a_reported_effect_as_printed(synthetic_report):
    _, soup, _ = synthetic_report
    block = soup.find(id=tables.anchor_id("hemoadsorption", "IL-6"))
    cells = [(row.select_one("td.printed").text, row.select_one("td.harmonised").text)
             for row in block.select("tbody tr") if "Abstract" in row.text]
    assert cells == [("-60 % (CI -80 to -20; percent change)", "-0.916 log ratio (CI -1.609 to -0.223; i.e. -60%)")]


def test_study_links_use_the_identifiers_as_normalised(synthetic_report, tmp_path):
    inputs, _, _ = synthetic_report
    written = tmp_path / "doe2024.yaml"
    written.write_text(
        'id: doe2024\ncitation: "SYNTHETIC Doe J. A made-up case report. J Example. 2024."\n'
        "doi: https://doi.org/10.9999/synthetic.doe\npmcid: PMC1234567\npopulation: car_t_crs\n"
        "design: case_report\ngrading_scale: ASTCT2019\nsynthetic: true\n",
        encoding="utf-8",
    )
    studies = [*inputs.studies, *tables.study_records(load_studies([written], tmp_path))]
    soup = BeautifulSoup(report_html(dataclasses.replace(inputs, studies=studies)), "html.parser")
    hrefs = [a["href"] for a in soup.select("#study-doe2024 a[href]")]
    assert hrefs == ["https://doi.org/10.9999/synthetic.doe", "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC1234567/"]
    assert not [a for a in soup.find_all("a", href=True) if a["href"].count("doi.org") > 1]


def test_an_input_that_breaks_its_contract_is_named_at_its_cell(tmp_path):
    paths = write_fixture_project(tmp_path)
    changes = pd.read_csv(paths["changes"], sep="\t", dtype=str, keep_default_na=False)
    changes.loc[0, "change_lower"] = "about -1"
    changes.to_csv(paths["changes"], sep="\t", index=False, lineterminator="\n")
    with pytest.raises(InputError, match=r"changes.tsv, row 2, column 'change_lower': .*'about -1'"):
        ReportInputs.from_paths(**paths)


def test_cumulative_estimates_are_drawn_step_by_step_or_said_to_be_none(synthetic_report):
    """Two steps: a figure and the table; the main analysis alone: a sentence, no figure."""
    inputs, soup, _ = synthetic_report
    assert soup.find(id="cumulative") is None  # no cumulative input: no section
    cell = inputs.effects.iloc[0]
    step = {"intervention": cell["intervention"], "marker": cell["marker"], "scale": cell["scale"], "n_patients": 20,
            "pct_median": -50.0, "pct_lo95": -70.0, "pct_hi95": -20.0, "p_reduction": 0.95, "gate": "passed"}
    rows = [step | {"analysis": "cumulative_2021", "up_to": "2021", "step": 1, "n_studies_in": 1, "n_studies": 1,
                    "theta_median": -0.6, "theta_lo95": -1.4, "theta_hi95": 0.1},
            step | {"analysis": "main", "up_to": "all", "step": 2, "n_studies_in": 2, "n_studies": 2,
                    "theta_median": -0.7, "theta_lo95": -1.1, "theta_hi95": -0.3}]
    cumulative = tables_module.frame(tables_module.CUMULATIVE, rows)
    section = BeautifulSoup(report_html(dataclasses.replace(inputs, cumulative=cumulative)), "html.parser")
    part = section.find(id="cumulative").find_parent("section")
    assert part.find("svg") is not None and "up to 2021" in part.text
    alone = BeautifulSoup(report_html(dataclasses.replace(inputs, cumulative=cumulative.iloc[1:])), "html.parser")
    assert "No accumulation to show" in alone.find(id="cumulative").find_parent("section").text
