"""Shared fixtures: tiny hand-made harmonised tables in the design.md column layout, and the
mocked-sampler tier (``mock_sampling``) for tests that need only a posterior's shape."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest

from crsmeta import tables

if TYPE_CHECKING:
    from crsmeta.model import ModelData, ModelSettings

CHANGE_COLUMNS = tables.CHANGES.columns
SUMMARY_COLUMNS = tables.HARMONISED_SUMMARIES.columns
ROOT = Path(__file__).resolve().parents[1]
# what a copy of the project needs to run its workflow on the bundled or the tests' studies
PROJECT_PARTS = ["Snakefile", "workflow", "resources", "config", "tests/config", "tests/data"]


# The test files that take minutes (real chains, Snakemake end to end, a fresh venv), longest
# first. pytest-xdist hands whole files to its two workers in collection order (pyproject.toml:
# --dist loadfile --no-loadscope-reorder), so these start first and the many quick files fill in
# behind them, instead of the longest starting last with the run's end waiting on it alone.
# test_history_workflow.py starts from the session's fixture_run, which the first worker builds
# with test_workflow.py's first tests (about 30 s): it comes after test_cumulative_workflow.py, so
# the second worker starts on that instead of waiting on the fixture's lock (measured: 33 s idle).
LONGEST_FIRST = ("test_workflow.py", "test_cumulative_workflow.py", "test_history_workflow.py", "test_install.py",
                 "test_validation_recovery.py", "test_nutpie_model.py", "test_model_fit.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The files of LONGEST_FIRST first, in that order, and within each file the tests that use
    the session's fixture_run first, so that it is built at the start; every other file, and the
    other tests within each file, in the order pytest-randomly shuffled them into (its hook runs
    first), so that every run still tries a new order without starting the longest files last."""
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: (rank.get(item.path.name, len(LONGEST_FIRST)),
                                 "fixture_run" not in getattr(item, "fixturenames", ())))


def mocked_sampler_environment() -> dict[str, str]:
    """The environment of a Snakemake run whose fit jobs take the mocked sampler's draws
    (tests/mock_sampler on ``PYTHONPATH``; its sitecustomize replaces the NUTS call).

    PyTensor compiles no C there (``cxx=``) and skips most graph rewrites (``FAST_COMPILE``):
    with sampling mocked, each compiled function (prior draws, log-likelihoods, predictive
    draws) runs once on a few hundred draws, so a C compile, or the rewrites, cost more than
    they save (measured on the test config's run: its fit job 35 s → 25 s, its report 23 s →
    15 s); and a C compile waits on the compile cache's lock whenever another process holds it.
    """
    python_path = os.pathsep.join(filter(None, [str(ROOT / "tests/mock_sampler"), os.environ.get("PYTHONPATH")]))
    flags = ",".join(filter(None, [os.environ.get("PYTENSOR_FLAGS"), "cxx=", "mode=FAST_COMPILE"]))
    return os.environ | {"PYTHONPATH": python_path, "PYTENSOR_FLAGS": flags}


def copy_project(destination: Path) -> Path:
    """A copy of the project's workflow, configs and data at ``destination`` (for Snakemake runs
    that must not touch the project's own results)."""
    for part in PROJECT_PARTS:
        source, target = ROOT / part, destination / part
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="session")
def fixture_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The test config's three fixture studies harmonised, then the whole workflow run on them
    (mocked fits) and ``snakemake --report`` after it: one project for the tests that read its
    tables, the full run's test (tests/test_workflow.py) and the first run of the history test
    (tests/test_history_workflow.py), which each ran this same workflow.

    Made once per session: under pytest-xdist the first worker to ask makes it, under a lock in
    the session's shared temporary directory, and the others read its record. Nobody changes the
    project afterwards; a test that runs Snakemake on it takes a copy. The record holds the
    project's path, the harmonised tables' mtimes before the full run, and each run's exit
    status and end of stderr (see test_workflow.build_fixture_run).
    """
    from test_workflow import build_fixture_run

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    record = shared / "fixture_run.json"
    with open(shared / "fixture_run.lock", "w", encoding="utf-8") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            record.write_text(json.dumps(build_fixture_run(shared / "fixture_run")), encoding="utf-8")
    return json.loads(record.read_text(encoding="utf-8"))


def planned_jobs(output: str) -> dict[str, int]:
    """Rule → job count from the 'Job stats' table of a dry run."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("job ") and "count" in line)
    jobs = {}
    for line in lines[start + 2:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit() or parts[0] == "total":
            break
        jobs[parts[0]] = int(parts[1])
    return jobs


def change_row(study_id, patient_id, intervention, marker, change, *, population="car_t_crs",
               lower=None, upper=None, censoring="none", **extra) -> dict:
    """One changes.tsv row as strings; ``lower``/``upper`` only for censored changes."""
    row = dict.fromkeys(CHANGE_COLUMNS, "")
    row.update(study_id=study_id, patient_id=str(patient_id), population=population,
               intervention=intervention, marker=marker, censoring=censoring,
               change="" if change is None else repr(float(change)),
               change_lower="" if lower is None else repr(float(lower)),
               change_upper="" if upper is None else repr(float(upper)),
               digitised="False", synthetic="True", source_rows=f"{study_id}.csv:{patient_id}")
    row.update({key: str(value) for key, value in extra.items()})
    return row


def summary_row(study_id, intervention, marker, timepoint, *, n="20", value="", statistic="mean",
                population="car_t_crs", arm="", source_row="2", **extra) -> dict:
    """One harmonised summaries.tsv row as strings."""
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row.update(study_id=study_id, population=population, design="cohort", arm=arm,
               intervention=intervention, marker=marker, timepoint=timepoint, n=str(n),
               statistic=statistic, value=str(value), spread_type="none", digitised="False",
               synthetic="True", source_file=f"{study_id}.csv", source_row=str(source_row))
    row.update({key: str(value) for key, value in extra.items()})
    return row


def model_data(changes: pd.DataFrame, summaries: pd.DataFrame, settings: ModelSettings) -> ModelData:
    """The model's data from changes and harmonised summaries, the summaries compared as the
    changes stage compares them (its default rule): the model itself pairs nothing."""
    from crsmeta.comparisons import summary_comparisons
    from crsmeta.model import ModelData

    return ModelData.from_tables(changes, summary_comparisons(summaries)[0], settings)


@pytest.fixture
def tiny_changes() -> pd.DataFrame:
    """SYNTHETIC: two case series (tocilizumab, plasma exchange), one censored change each."""
    rng = np.random.default_rng(1)
    rows = []
    for study, intervention, effect in (("s1", "tocilizumab", -1.0), ("s2", "plasma_exchange", -0.7)):
        for patient in range(6):
            for marker, shift in (("IL-6", 0.0), ("ferritin", 0.5)):
                rows.append(change_row(study, patient, intervention, marker,
                                       effect + shift + 0.4 * rng.standard_normal()))
        rows.append(change_row(study, 9, intervention, "IL-6", None, lower=-np.inf, upper=-1.5,
                               censoring="left"))
    rows.append(change_row("s1", 10, "tocilizumab", "temperature", -1.2))
    rows.append(change_row("s1", 11, "tocilizumab", "temperature", -0.8))
    return pd.DataFrame(rows, columns=CHANGE_COLUMNS)


@pytest.fixture
def tiny_summaries() -> pd.DataFrame:
    """SYNTHETIC: a cohort with means and P values, and a two-arm trial with medians and IQRs."""
    rows = [
        summary_row("c1", "emapalumab", "IL-6", "pre", value=200, p_value=0.018, p_relation="=", n=30),
        summary_row("c1", "emapalumab", "IL-6", "post", value=80, p_value=0.018, p_relation="=", n=30),
        summary_row("c1", "emapalumab", "temperature", "pre", value=39.6, p_value=0.001, p_relation="<", n=30),
        summary_row("c1", "emapalumab", "temperature", "post", value=38.4, p_value=0.001, p_relation="<", n=30),
        summary_row("t1", "hemoadsorption", "IL-6", "pre", value=2000, statistic="median", arm="device",
                    population="viral_cytokine_storm", spread_type="iqr", spread_low=900, spread_high=3600, n=12),
        summary_row("t1", "hemoadsorption", "IL-6", "post", value=500, statistic="median", arm="device",
                    population="viral_cytokine_storm", spread_type="iqr", spread_low=200, spread_high=1100, n=12),
        summary_row("t1", "standard_care", "IL-6", "pre", value=3000, statistic="median", arm="control",
                    population="viral_cytokine_storm", n=12),
        summary_row("t1", "standard_care", "IL-6", "post", value=1500, statistic="median", arm="control",
                    population="viral_cytokine_storm", n=12),
    ]
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


# --------------------------------------------------------------------------- mocked-sampler tier


@pytest.fixture
def mock_sampling(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Mocked-sampler tier (as CausalPy's tests use ``pymc.testing.mock_sample``): the package's
    one sampling call, ``crsmeta.model.sample.sample_posterior``, returns the model's prior draws
    shaped like a posterior, with ``sample_stats`` (see tests/mock_sampler/prior_draws.py), so a
    test that needs only a posterior's shape (tables, stamping, netCDF, report, glue) runs in
    seconds, without compiling the model. Not for tests of estimates, convergence or the sampler's
    reproducibility: those sample real chains.

    Yields the draws and seed of each call; the test fails if nothing sampled (the mock no longer
    reaches the package's sampler).
    """
    from crsmeta.model import sample
    from mock_sampler.prior_draws import prior_draws_for_settings

    calls: list[dict] = []

    def fake_sample_posterior(model, settings):
        calls.append({"draws": settings.draws, "random_seed": settings.seed})
        return prior_draws_for_settings(model, settings)

    monkeypatch.setattr(sample, "sample_posterior", fake_sample_posterior)
    yield calls
    assert calls, "mock_sampling: nothing was sampled; does crsmeta.model.sample still call sample_posterior?"
