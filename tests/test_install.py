"""A wheel of crsmeta, installed without -e in a fresh venv outside the clone, runs the workflow.

The package must carry every file it reads (study schema, vocabularies, grade mapping) as package
data: nothing may be read from the repository it was built in. The fresh venv borrows the test
environment's third-party packages through a .pth file (installing them again would take minutes)
but not its editable crsmeta, whose path hook lives in a .pth file that a .pth-added directory
does not run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a wheel is built from, and what a project needs to run (src/ is left out on purpose)
BUILD_PARTS = ["pyproject.toml", "README.md", "src"]
PROJECT_PARTS = ["Snakefile", "workflow", "resources", "config", "tests/config", "tests/data"]
HARMONISED = "results/harmonised/cases.tsv"
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info")

pytestmark = pytest.mark.slow


def copy_parts(parts: list[str], destination: Path) -> Path:
    for part in parts:
        source, target = ROOT / part, destination / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=IGNORED)
        else:
            shutil.copy2(source, target)
    return destination


def build_wheel(source: Path, out: Path) -> Path:
    """``pip wheel --no-deps`` of a copy of the sources (a build in the clone would write build/ there)."""
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = out.glob("crsmeta-*.whl")
    return wheel


def fresh_venv(path: Path, wheel: Path) -> Path:
    """A venv with only the wheel's crsmeta and, via a .pth file, this environment's other packages."""
    venv.EnvBuilder(with_pip=False).create(path)
    python = path / "bin" / "python"
    site_packages = Path(run_python(python, "import sysconfig; print(sysconfig.get_path('purelib'))").strip())
    (site_packages / "test_environment.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
               "--target", str(site_packages), str(wheel)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return python


def clean_environment(venv_dir: Path) -> dict[str, str]:
    """This process's environment without anything that could put the clone's src/ on the path."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    return env | {"PATH": os.pathsep.join([str(venv_dir / "bin"), env.get("PATH", "")]), "PYTHONNOUSERSITE": "1"}


def run_python(python: Path, code: str) -> str:
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False,
                            env=clean_environment(python.parents[1]))
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def snakemake(python: Path, project: Path, *arguments: str) -> subprocess.CompletedProcess:
    command = [str(python), "-m", "snakemake", *arguments, "--cores", "2",
               "--configfile", "tests/config/config.yaml"]
    return subprocess.run(command, cwd=project, capture_output=True, text=True, check=False,
                          env=clean_environment(python.parents[1]))


def test_a_wheel_installed_outside_the_clone_runs_the_workflow_to_the_harmonised_tables(tmp_path: Path) -> None:
    wheel = build_wheel(copy_parts(BUILD_PARTS, tmp_path / "source"), tmp_path / "dist")
    python = fresh_venv(tmp_path / "venv", wheel)
    installed = Path(run_python(python, "import crsmeta; print(crsmeta.__file__)").strip())
    assert installed.is_relative_to(tmp_path / "venv"), installed
    project = copy_parts(PROJECT_PARTS, tmp_path / "project")

    dry_run = snakemake(python, project, HARMONISED, "--dry-run")
    assert dry_run.returncode == 0, dry_run.stderr[-3000:]
    result = snakemake(python, project, HARMONISED)
    assert result.returncode == 0, result.stderr[-3000:]

    assert len((project / HARMONISED).read_text(encoding="utf-8").splitlines()) > 1
    # the harmonise jobs tracked the installed package's data files, the ones the library read
    assert str(installed.parent / "data" / "markers.yaml") in result.stderr
