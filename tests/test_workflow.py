"""End to end: Snakemake on the small test config: data layer, incremental reruns, the full run.

The fits in these runs are mocked (prior draws stand in for the posterior; see
tests/mock_sampler/sitecustomize.py): these tests check the workflow's wiring, reruns and report,
not the sampler. Snakemake runs that sample real chains, and their byte-identity across
processes, directories and compile caches, are tests/cluster/run_slurm.sh's.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import yaml

from conftest import copy_project, mocked_sampler_environment, planned_jobs
from crsmeta import tables
from mock_sampler.prior_draws import MOCK_LABEL

HARMONISED = "results/harmonised/cases.tsv"
FIXTURE_STUDIES = ["tests/config/studies/long_fixture.yaml", "tests/config/studies/summary_fixture.yaml",
                   "tests/config/studies/wide_fixture.yaml"]
# what the tests on the shared `harmonised` project read
SHARED_TABLES = [HARMONISED, "results/harmonised/summaries.tsv", "results/audit/rows.tsv"]
pytestmark = pytest.mark.slow


def write_config(project: Path, studies: list[str]) -> Path:
    config = yaml.safe_load((project / "tests/config/config.yaml").read_text(encoding="utf-8"))
    config["studies"] = studies
    path = project / "tests/config/run.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def snakemake(project: Path, config: Path, *arguments: str) -> subprocess.CompletedProcess:
    """Run Snakemake with the mocked sampler (fit_model jobs get prior draws; conftest.mocked_sampler_environment)."""
    command = [sys.executable, "-m", "snakemake", *arguments, "--cores", "2", "--configfile", str(config)]
    return subprocess.run(command, cwd=project, capture_output=True, text=True, check=False,
                          env=mocked_sampler_environment())


def assert_mocked(posterior: Path) -> None:
    """The fit took the mocked sampler's draws (if not, these tests sample and get slow)."""
    with xr.open_dataset(posterior, group="posterior") as dataset:
        assert dataset.attrs.get("sampler") == MOCK_LABEL, posterior


def build_fixture_run(destination: Path) -> dict:
    """The session's shared project (conftest.fixture_run): the three fixture studies harmonised
    and audited, then the full run on top of them, then Snakemake's own report; the harmonised
    tables' mtimes before the full run, and each run's exit status and end of stderr."""
    project = copy_project(destination)
    config = write_config(project, FIXTURE_STUDIES)
    result = snakemake(project, config, HARMONISED, "results/audit/rows.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    before = {table: (project / table).stat().st_mtime_ns for table in SHARED_TABLES}
    full = snakemake(project, config)
    runs = {"full": full}
    if full.returncode == 0:
        runs["report_zip"] = snakemake(project, config, "--report", "results/report.zip")
    return {"project": str(project), "harmonised_mtimes": before,
            **{name: {"returncode": run.returncode, "stderr": run.stderr[-3000:]} for name, run in runs.items()}}


@pytest.fixture
def harmonised(fixture_run: dict) -> Path:
    """The shared project (conftest.fixture_run) with the three fixture studies harmonised and
    audited, for the tests that read those tables. Its full run leaves them as they are (checked
    there); tests that change a project take a copy of their own."""
    return Path(fixture_run["project"])


def test_adding_a_study_reruns_only_its_jobs_and_converts_its_values(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    first = write_config(project, FIXTURE_STUDIES[:2])
    result = snakemake(project, first, HARMONISED, "results/audit/rows.tsv")
    assert result.returncode == 0, result.stderr[-3000:]

    second = write_config(project, FIXTURE_STUDIES)
    dry_run = snakemake(project, second, "--dry-run", HARMONISED, "results/audit/rows.tsv")
    assert dry_run.returncode == 0, dry_run.stderr[-3000:]
    assert planned_jobs(dry_run.stdout + dry_run.stderr) == {
        "extract_study": 1, "harmonise_study": 1, "combine_studies": 1
    }

    result = snakemake(project, second, HARMONISED, "results/audit/rows.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    cases = tables.read(tables.HARMONISED_CASES, project / HARMONISED)
    wide = cases[cases["study_id"] == "wide_fixture"]
    il6 = wide[wide["marker"] == "IL-6"].set_index(["patient_id", "timepoint"])
    assert il6.loc[("P1", "pre"), "value"] == pytest.approx(2500.0)
    assert il6.loc[("P2", "post"), "censoring"] == "left"
    assert il6.loc[("P2", "post"), "value"] == pytest.approx(5.0)
    temperature = wide[wide["marker"] == "temperature"].set_index(["patient_id", "timepoint"])
    assert temperature.loc[("P1", "pre"), "value"] == pytest.approx(39.0)
    assert set(wide["intervention"]) == {"plasma_exchange", "emapalumab"}
    assert set(wide.loc[wide["patient_id"] == "P1", "astct_grades"]) == {"1|2|3|4"}
    assert wide["synthetic"].all()


def test_every_input_row_is_in_the_audit(harmonised: Path) -> None:
    rows = tables.read(tables.AUDIT_ROWS, harmonised / "results/audit/rows.tsv")
    wide = rows[rows["study_id"] == "wide_fixture"]
    assert len(wide) == 3 * 4  # three patients, four measurement columns
    empty = wide[(wide["source_row"] == 4) & (wide["source_column"] == "T_post")]
    assert list(empty["status"]) == ["excluded"]
    long = rows[rows["study_id"] == "long_fixture"].set_index("source_row")
    assert long.loc[5, "reason"].startswith("not a modelled marker")
    assert long.loc[6, "reason"].startswith("curator: two values")
    summary = rows[rows["study_id"] == "summary_fixture"]
    assert len(summary) == 8 and (summary["status"] == "excluded").sum() == 1


def test_summaries_and_changes_are_harmonised(harmonised: Path) -> None:
    summaries = tables.read(tables.HARMONISED_SUMMARIES, harmonised / "results/harmonised/summaries.tsv")
    summaries = summaries.set_index(["marker", "timepoint", "arm"])
    il6 = summaries.loc[("IL-6", "pre", "treatment")]
    assert il6["value"] == pytest.approx(2300.0)
    assert il6["spread_low"] == pytest.approx(900.0)
    control = summaries.loc[("IL-6", "change", "control")]
    assert control["intervention"] == "standard_care"
    assert control["estimate"] == pytest.approx(math.log(0.54))
    ifn = summaries.loc[("IFN-gamma", "pre", "treatment")]
    assert (ifn["p_value"], ifn["p_relation"]) == (0.001, "<")
    cases = tables.read(tables.HARMONISED_CASES, harmonised / HARMONISED)
    crp = cases[(cases["study_id"] == "long_fixture") & (cases["marker"] == "CRP")]
    assert crp["value"].iloc[0] == pytest.approx(math.log(1 - 0.915))
    assert crp["unit"].iloc[0] == "log_ratio"


def test_bad_study_fails_and_leaves_no_output(tmp_path: Path) -> None:
    # a project of its own: a failed job and a study file added to the shared one would stay
    # there for the tests that come after
    project = copy_project(tmp_path / "project")
    bad_table = project / "tests/data/bad/cases.csv"
    bad_table.parent.mkdir(parents=True, exist_ok=True)
    bad_table.write_text("patient,intervention,marker,timepoint,value,unit\nA,tocilizumab,IL-6,pre,n.d.,pg/mL\n")
    study = project / "tests/config/studies/bad.yaml"
    study.write_text(
        "id: bad\ncitation: SYNTHETIC bad study\nurl: https://example.org/bad\npopulation: car_t_crs\n"
        "design: case_report\ngrading_scale: not_reported\nsynthetic: true\n"
        "cases: {file: tests/data/bad/cases.csv, layout: long}\n"
    )
    config = write_config(project, ["tests/config/studies/bad.yaml"])
    result = snakemake(project, config, "results/harmonised/studies/bad/cases.tsv")
    assert result.returncode != 0
    log = (project / "logs/harmonise_study/bad.log").read_text(encoding="utf-8")
    assert "tests/data/bad/cases.csv, row 2, column 'value'" in log
    assert not (project / "results/harmonised/studies/bad/cases.tsv").exists()
    assert not (project / "results/harmonised/studies/bad/rows.tsv").exists()


def test_full_run_fits_and_renders_the_report(fixture_run: dict) -> None:
    """The whole workflow on the test config (mocked fit), run on the harmonised project
    (conftest.fixture_run): model tables, report, Snakemake's report."""
    project = Path(fixture_run["project"])
    full = fixture_run["full"]
    assert full["returncode"] == 0, full["stderr"]
    assert {table: (project / table).stat().st_mtime_ns for table in SHARED_TABLES} == fixture_run["harmonised_mtimes"], \
        "the full run redid the harmonisation it shares with the other tests"
    assert_mocked(project / "results/model/main/posterior.nc")
    effects = tables.read(tables.EFFECTS, project / "results/model/main/effects.tsv")
    assert {"plasma_exchange", "hemoadsorption", "standard_care"} <= set(effects["intervention"])
    html = (project / "results/report/report.html").read_text(encoding="utf-8")
    assert "SYNTHETIC" in html and "10.0000/synthetic.long" in html
    zipped = fixture_run["report_zip"]
    assert zipped["returncode"] == 0, zipped["stderr"]
    assert (project / "results/report.zip").stat().st_size > 0


def test_synthetic_demo_checks_its_truth_and_reports_it(tmp_path: Path) -> None:
    """A small SYNTHETIC demo: the simulator's truth is written, compared and shown in the report."""
    project = copy_project(tmp_path / "project")
    config = project / "tests/config/demo_run.yaml"
    config.write_text(yaml.safe_dump({
        "synthetic": {"seed": 3, "out_dir": "demo/studies", "n_case_reports": 1, "n_case_series": 1,
                      "n_cohorts_mean_sd": 1, "n_cohorts_mean_p": 1, "n_cohorts_median_iqr": 0,
                      "n_cohorts_pct_change": 0, "n_cohorts_effect_se": 0, "n_trials": 1},
        "studies": [], "seed": 1, "sampler": {"chains": 2, "draws": 100, "tune": 200},
        "diagnostics": {"gate": False}, "sensitivity": {"activate": False},
    }), encoding="utf-8")
    result = snakemake(project, config)
    assert result.returncode == 0, result.stderr[-3000:]
    assert_mocked(project / "results/model/main/posterior.nc")
    truth = tables.read(tables.TRUTH, project / "demo/studies/truth.tsv")
    recovery = tables.read(tables.RECOVERY, project / "results/model/recovery.tsv")
    assert len(recovery) == len(truth) and recovery["synthetic"].all()
    effects = tables.read(tables.EFFECTS, project / "results/model/main/effects.tsv")
    with_data = recovery[recovery["has_data"]]
    assert set(zip(with_data["intervention"], with_data["marker"])) == set(zip(effects["intervention"], effects["marker"]))
    html = (project / "results/report/report.html").read_text(encoding="utf-8")
    assert "Recovery of the simulator's truth (SYNTHETIC demo)" in html
    assert f"of {len(with_data)}</strong> cells with data" in html
    summary = tables.read(tables.RECOVERY_SUMMARY, project / "results/model/recovery_summary.tsv").iloc[0]
    assert summary["cells_with_data"] == len(with_data) and 0 <= summary["calibrated_p05"] <= 1
    assert "were the truth a draw from the posterior" in " ".join(html.split())
