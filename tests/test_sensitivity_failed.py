"""A sensitivity analysis that fails the gate does not stop the run: its tables say so, the
collected tables carry it, and the report shows it prominently and compares it with nothing.
SYNTHETIC report fixtures; no sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bs4 import BeautifulSoup

from crsmeta import tables as contracts
from crsmeta.io import write_tsv
from crsmeta.model.analyses import collect_analyses
from crsmeta.model.diagnostics import FAILED, PASSED, GateVerdict, with_verdict
from crsmeta.report import ReportInputs, tables
from crsmeta.report.render import report_html
from fixtures.report.build import write_fixture_project

# ArviZ 0.23 passes matplotlib 3.11 a deprecated alias mapping on every plot; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")

FAILED_ANALYSIS = "student_t"


def _diagnostics(analysis: str, verdict: GateVerdict) -> pd.DataFrame:
    table = pd.DataFrame({"analysis": analysis, "kind": ["parameter", "chain"], "parameter": ["mu", "sampler"],
                          "chain": [pd.NA, 0], "r_hat": [1.0, np.nan], "ess_bulk": [150, np.nan],
                          "ess_tail": [150, np.nan], "divergences": [pd.NA, 0], "bfmi": [np.nan, 1.0]})
    return with_verdict(table, verdict)


def test_collected_tables_carry_each_analysis_verdict(tmp_path: Path):
    verdicts = {"main": GateVerdict(PASSED, 1000),
                FAILED_ANALYSIS: GateVerdict(FAILED, 4000, ("ess_bulk < 400 for mu (150)",), "check the data")}
    for analysis, verdict in verdicts.items():
        write_tsv(_diagnostics(analysis, verdict), tmp_path / analysis / "diagnostics.tsv")
        write_tsv(pd.DataFrame({"intervention": ["tocilizumab"], "marker": ["IL-6"], "theta_median": [-1.0],
                                "gate": [verdict.status]}), tmp_path / analysis / "effects.tsv")
    # the collected table as the report reads it, typed by its contract
    diagnostics = contracts.parse(contracts.DIAGNOSTICS, collect_analyses([tmp_path / a / "diagnostics.tsv" for a in verdicts]))
    effects = collect_analyses([tmp_path / a / "effects.tsv" for a in verdicts])
    assert dict(zip(effects["analysis"], effects["gate"])) == {"main": PASSED, FAILED_ANALYSIS: FAILED}
    gates = tables.gate_verdicts(diagnostics).set_index("analysis")
    assert gates.loc[FAILED_ANALYSIS, "failures"] == ["ess_bulk < 400 for mu (150)"]
    assert gates.loc[FAILED_ANALYSIS, "draws"] == 4000 and gates.loc["main", "gate"] == PASSED


@pytest.fixture(scope="module")
def failed_inputs(tmp_path_factory: pytest.TempPathFactory) -> ReportInputs:
    root = tmp_path_factory.mktemp("failed")
    return ReportInputs.from_paths(**write_fixture_project(root, failed=(FAILED_ANALYSIS,)))


def test_failed_analysis_is_listed_and_left_out_of_the_comparison(failed_inputs):
    failed = tables.failed_analyses(failed_inputs.diagnostics)
    assert failed["analysis"].tolist() == [FAILED_ANALYSIS]
    assert failed.iloc[0]["divergences"] == 3 and "3 divergent transitions (allowed: 0)" in failed.iloc[0]["failures"]
    compared = tables.sensitivity_data(failed_inputs.effects_all)
    assert FAILED_ANALYSIS not in set(compared["analysis"]) and "main" in set(compared["analysis"])


def test_report_shows_the_failed_analysis_on_top_and_in_the_sensitivity_section(failed_inputs):
    soup = BeautifulSoup(report_html(failed_inputs), "html.parser")
    alert = soup.find(id="failed-analyses")
    assert alert is not None and FAILED_ANALYSIS in alert.text
    assert alert.find_next(id="summary") is not None, "the alert comes before the summary"
    box = soup.select_one(f"#sensitivity #failed-{FAILED_ANALYSIS}")
    assert box is not None
    assert "3 divergent transitions" in box.text and "What to change" in box.text and "SYNTHETIC advice" in box.text
    assert [td.text for td in box.select("td.n")][3] == "3", "its diagnostics: divergences"
    figure = soup.select_one("#sensitivity figure")
    assert "case_level_only" in figure.text and FAILED_ANALYSIS not in figure.text
    overview = next(tr for tr in soup.select("#diagnostics tr") if tr.td and tr.td.text == FAILED_ANALYSIS)
    assert overview.find("a", href=f"#failed-{FAILED_ANALYSIS}").text == "failed"

