"""The SYNTHETIC demo's rules stay out of a normal run: parsing the workflow with the normal config
imports no simulator and writes no file; with the demo config the simulated studies are written
and are the whole study list, and the recovery check is planned.

Each test parses a copy of the project with a dry run under ``python -X importtime``, which lists
every module the Snakefile's parse imports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from conftest import copy_project, planned_jobs

SIMULATOR = "crsmeta.simulate"


def dry_run(project: Path, *arguments: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """A dry run in ``project`` and the modules its parse imported."""
    command = [sys.executable, "-X", "importtime", "-m", "snakemake", "--dry-run", "--cores", "1", *arguments]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, check=False)
    imported = {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:") and "|" in line}
    return result, imported


def files(project: Path) -> dict[str, tuple[int, int]]:
    """Every file of the project (Snakemake's own .snakemake/ aside) with its size and mtime."""
    return {path.relative_to(project).as_posix(): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in project.rglob("*") if path.is_file() and ".snakemake" not in path.parts}


def test_a_normal_run_neither_imports_the_simulator_nor_writes_a_file_at_parse_time(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    before = files(project)
    result, imported = dry_run(project, "results/harmonised/cases.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "crsmeta.studies" in imported  # the probe sees the workflow's own imports
    assert not {name for name in imported if name == SIMULATOR or name.startswith(f"{SIMULATOR}.")}
    assert files(project) == before


def test_the_demo_writes_its_studies_uses_only_them_and_plans_the_recovery_check(tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    result, imported = dry_run(project, "--configfile", "config/demo.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert SIMULATOR in imported
    studies = sorted((project / "demo/studies/studies").glob("*.yaml"))
    assert studies and (project / "demo/studies/truth.tsv").is_file()
    jobs = planned_jobs(result.stdout + result.stderr)
    assert jobs["extract_study"] == len(studies)  # the simulated studies only, no real one
    assert jobs["recover_truth"] == 1
