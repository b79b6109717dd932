"""Speed and memory benchmarks (issue 9), all measured in one run and written to docs/benchmarks.md.

    python benchmarks/run.py                                   # the figures of docs/benchmarks.md
    python benchmarks/run.py --sizes 300 --chains 2 --draws 200 --tune 200 \\
        --skip workflow tests --out /tmp/benchmarks.md          # a quick run

Parts (each can be left out with ``--skip``):

- ``workflow``: a fresh ``git clone`` of this repository in a temporary directory, run with this
  Python environment (``PYTHONPATH=<clone>/src``, so the clone's own package is imported):
  the full bundled run with empty compile caches (``PYTENSOR_FLAGS=base_compiledir=…``,
  ``NUMBA_CACHE_DIR`` and ``CRSMETA_TABLE_CACHE`` pointed at an empty directory), the same run again with ``results/`` deleted
  and the caches kept (warm), a no-op rerun, ``snakemake -n``, the README's "Adding a study"
  example (doe2024) added and the run repeated (which jobs ran), and the SYNTHETIC demo
  (``--runs`` picks some of them);
- ``fit``: the main analysis' fit on the bundled data split into imports, model build, compile,
  tuning, draws and predictive draws (nutpie, the config's sampler settings, warm caches);
- ``grid``: ESS per second of the old (validation/legacy_build.py) and the new parameterisation
  with nutpie and with PyMC's NUTS on the same SYNTHETIC case series at each ``--sizes`` number
  of cases (one process per run, so its peak RSS is its own; a run is stopped after ``--timeout``
  seconds, which do not include simulating and tabulating its cases, and reported as such),
  and the log-log slope of fit time against cases;
- ``tests``: the README's test command (``pytest``) in the clone.

Targets are the issue's; each is reported as met or missed, with the margin.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crsmeta.simulate import SimulationSpec

ROOT = Path(__file__).resolve().parents[1]
VALIDATION = ROOT / "validation"
DOC = ROOT / "docs" / "benchmarks.md"
SHARED = ROOT.parent / "shared"  # the curated literature data, beside the clone as in CI
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
CORES = os.cpu_count() or 1
SIZES = (300, 3000, 30000)
PARTS = ("workflow", "fit", "grid", "tests")
WORKFLOW_RUNS = ("cold", "warm", "noop", "dry", "added", "demo")
BACKENDS = ("nutpie", "pymc")
JOB_LINE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
CASES_PER_SERIES = 30  # a simulated case series of 4-8 patients x 3-7 markers gives about 30 changes

# README "Adding a study": the worked example, written into the clone as a user would.
DOE2024_CSV = """Patient,Age,Salvage,Grade,IL6_pre,IL6_post,T_pre,T_post
P1,54,TPE,3,2.5,0.4,102.2,99.5
P2,61,plasmapheresis,4,12,<0.005,103.1,98.6
P3,47,TPE,3,1.8,0.9,101.3,
"""
DOE2024_YAML = """id: doe2024
citation: "Doe J, et al. Plasma exchange for refractory CRS. J Example. 2024;1:1-5."
doi: 10.1000/example
population: car_t_crs
design: case_series
grading_scale: Lee2014
published: 2024
caveats: ["Timing of the post values is 'next morning'; recorded as 24 h."]
cases:
  file: resources/literature/doe2024/cases.csv
  layout: wide
  columns: {patient: Patient, intervention: Salvage, crs_grade: Grade}
  constants: {locator: "Table 1", quote: "Table 1 (per-patient values)"}
  ignored_columns: [Age]
  measurements:
    IL6_pre:  {marker: IL-6, timepoint: pre,  unit: ng/mL, hours: 0}
    IL6_post: {marker: IL-6, timepoint: post, unit: ng/mL, hours: 24}
    T_pre:    {marker: temperature, timepoint: pre,  unit: degF, hours: 0}
    T_post:   {marker: temperature, timepoint: post, unit: degF, hours: 24}
"""


@dataclass
class Run:
    """One timed command: wall seconds, whether it succeeded, the jobs Snakemake ran (or, with -n,
    would run) as ``rule`` or ``rule[wildcards]``, and the end of its output when it failed."""

    name: str
    seconds: float
    ok: bool
    jobs: list[str] = field(default_factory=list)
    tail: str = ""


# --- workflow --------------------------------------------------------------------------------


def clone_repository(target: Path, uncommitted: bool) -> Path:
    """``git clone`` this repository (HEAD); with ``uncommitted``, also its uncommitted changes."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(target)], check=True)
    if uncommitted:
        diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=ROOT, check=True,
                              capture_output=True).stdout
        if diff:
            subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=target, input=diff, check=True)
        untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                                   check=True, capture_output=True, text=True).stdout.split("\0")
        for name in filter(None, untracked):
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def workflow_env(clone: Path, cache: Path) -> dict[str, str]:
    """This environment with the clone's package first on the path and the compile caches in ``cache``."""
    env = dict(os.environ)
    flags = [flag for flag in env.get("PYTENSOR_FLAGS", "").split(",") if flag and "base_compiledir" not in flag]
    env["PYTENSOR_FLAGS"] = ",".join([*flags, f"base_compiledir={cache / 'pytensor'}"])
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    env["CRSMETA_TABLE_CACHE"] = str(cache / "tables")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(clone / "src"), env.get("PYTHONPATH", "")]))
    return env


def timed(name: str, command: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Run a command, timing it; Snakemake's job list is read from its output."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    output = result.stdout + result.stderr
    tail = "\n".join(output.strip().splitlines()[-15:]) if result.returncode else ""
    print(f"{name}: {seconds:.1f} s, exit {result.returncode}", flush=True)
    return Run(name, seconds, result.returncode == 0, jobs_listed(output), tail)


def jobs_listed(output: str) -> list[str]:
    """Each job Snakemake's output announces (``rule x:``, ``localrule x:``, ``checkpoint x:``),
    with its wildcards when it has any, e.g. ``fit_model[analysis=main]``."""
    jobs: list[str] = []
    for line in output.splitlines():
        match = JOB_LINE.match(line)
        if match:
            jobs.append(match.group(1))
        elif jobs and line.strip().startswith("wildcards:") and "[" not in jobs[-1]:
            jobs[-1] += f"[{line.split(':', 1)[1].strip()}]"
    return jobs


def jobs_text(jobs: list[str]) -> str:
    """``rule × count`` per rule, with the wildcards of the jobs that have them."""
    by_rule: dict[str, list[str]] = {}
    for job in jobs:
        rule, _, wildcards = job.partition("[")
        by_rule.setdefault(rule, []).append(wildcards.rstrip("]"))
    parts = []
    for rule, wildcards in by_rule.items():
        listed = sorted(w.split("=", 1)[-1] for w in wildcards if w)
        parts.append(f"{rule} × {len(wildcards)}" + (f" ({', '.join(listed)})" if listed else ""))
    return "; ".join(parts) or "none"


def add_doe2024(clone: Path) -> None:
    """README "Adding a study", steps 1-3: the table, the study file and its line in config.yaml."""
    table = clone / "resources" / "literature" / "doe2024" / "cases.csv"
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(DOE2024_CSV)
    (clone / "config" / "studies" / "doe2024.yaml").write_text(DOE2024_YAML)
    config = clone / "config" / "config.yaml"
    lines = config.read_text().splitlines(keepends=True)
    last_study = max(i for i, line in enumerate(lines) if line.startswith("  - config/studies/"))
    lines.insert(last_study + 1, "  - config/studies/doe2024.yaml\n")
    config.write_text("".join(lines))


def fit_seconds(clone: Path, analysis: str = "main") -> float:
    """Wall seconds of a fit job from its Snakemake ``benchmark:`` file (NaN when absent)."""
    path = clone / "benchmarks" / "fit_model" / f"{analysis}.tsv"
    if not path.exists():
        return math.nan
    header, values = path.read_text().splitlines()[:2]
    return float(dict(zip(header.split("\t"), values.split("\t")))["s"])


def gate_summary(diagnostics: Path) -> str:
    """How many analyses passed the diagnostics gate, from a collected diagnostics.tsv."""
    if not diagnostics.exists():
        return "no diagnostics table"
    import pandas as pd

    table = pd.read_csv(diagnostics, sep="\t", dtype=str, keep_default_na=False)
    fits = table[table["kind"] == "fit"]
    passed = int((fits["gate"] == "passed").sum())
    failed = sorted(fits.loc[fits["gate"] == "failed", "analysis"])
    return f"{passed} of {len(fits)} analyses passed the gate" + (f" (failed: {', '.join(failed)})" if failed else "")


def clear_results(clone: Path) -> None:
    """Delete what a run wrote (results, logs, Snakemake benchmark files); keep caches and sources."""
    for path in [clone / "results", clone / "logs", clone / "demo", *(clone / "benchmarks").glob("*/")]:
        shutil.rmtree(path, ignore_errors=True)


def workflow_benchmarks(clone: Path, cache: Path, runs: tuple[str, ...] = WORKFLOW_RUNS) -> dict:
    """Cold, warm, no-op, dry-run, one added study and the SYNTHETIC demo, in one clone; ``runs``
    names the ones to time (in that order; the added study needs the runs before it)."""
    env = workflow_env(clone, cache)
    run = [str(SNAKEMAKE), "--cores", str(CORES)]
    timings: list[Run] = []
    result: dict = {"cold_fit": math.nan, "warm_fit": math.nan, "gate": "not run", "added_gate": "not run",
                    "demo_gate": "not run"}
    if "cold" in runs:
        timings.append(timed("cold full run", run, clone, env))
        result |= {"cold_fit": fit_seconds(clone), "gate": gate_summary(clone / "results" / "model" / "diagnostics.tsv")}
    if "warm" in runs:
        clear_results(clone)
        timings.append(timed("warm full run", run, clone, env))
        result["warm_fit"] = fit_seconds(clone)
    if "noop" in runs:
        timings.append(timed("no-op rerun", run, clone, env))
    if "dry" in runs:
        timings.append(timed("snakemake -n", [*run, "-n"], clone, env))
    if "added" in runs:
        add_doe2024(clone)
        timings.append(timed("one study added (doe2024)", run, clone, env))
        result["added_gate"] = gate_summary(clone / "results" / "model" / "diagnostics.tsv")
    if "demo" in runs:
        timings.append(timed("SYNTHETIC demo", [*run, "--configfile", "config/demo.yaml", "--directory", "demo"],
                             clone, env))
        result["demo_gate"] = gate_summary(clone / "demo" / "results" / "model" / "diagnostics.tsv")
    return {"runs": [asdict(r) for r in timings], **result}


# --- main fit split --------------------------------------------------------------------------


def seconds_text(seconds: float) -> str:
    return "not run" if math.isnan(seconds) else f"{seconds:.1f} s"


def main_fit_split(project: Path, sampler: dict) -> dict[str, dict[str, float]]:
    """Seconds per step of the main analysis' fit on the bundled data of ``project`` (run in a child).

    The model settings are the project config's, the sampler settings ``sampler``'s. Tuning is
    timed as a run with all tuning steps and one draw; the draws are the difference to a full run
    (both from the same compiled model).
    """
    start = time.perf_counter()
    import nutpie
    import pytensor

    from crsmeta import tables
    from crsmeta.io import load_yaml
    from crsmeta.model import ModelData, ModelSettings, build_model
    from crsmeta.model.nutpie_model import add_derived_draws, compile_nutpie_model
    from crsmeta.model.sample import DETERMINISTIC_COMPILATION, add_predictive

    steps = {"imports": time.perf_counter() - start}
    start = time.perf_counter()
    settings = ModelSettings.from_config(load_yaml(project / "config" / "config.yaml")).replace(
        **sampler, cores=min(CORES, sampler["chains"]))
    changes = tables.read(tables.CHANGES, project / "results" / "model" / "changes.tsv")
    comparisons = tables.read(tables.OBSERVATIONS, project / "results" / "model" / "comparisons.tsv")
    model = build_model(ModelData.from_tables(changes, comparisons, settings), settings)
    steps["data and model build"] = time.perf_counter() - start
    start = time.perf_counter()
    with pytensor.config.change_flags(**DETERMINISTIC_COMPILATION):
        compiled = compile_nutpie_model(model)
    steps["compile (rewritten functions and numba code from the cache when warm)"] = time.perf_counter() - start
    sample = dict(chains=settings.chains, cores=settings.cores, seed=settings.seed,
                  target_accept=settings.target_accept, progress_bar=False)
    start = time.perf_counter()
    nutpie.sample(compiled, tune=settings.tune, draws=1, **sample)
    tune_s = time.perf_counter() - start
    start = time.perf_counter()
    idata = nutpie.sample(compiled, tune=settings.tune, draws=settings.draws, **sample)
    steps[f"tuning ({settings.tune} steps x {settings.chains} chains)"] = tune_s
    steps[f"draws ({settings.draws} x {settings.chains} chains)"] = time.perf_counter() - start - tune_s
    start = time.perf_counter()
    idata.posterior = add_derived_draws(idata.posterior, model)
    steps["deterministics of the draws (numpy)"] = time.perf_counter() - start
    start = time.perf_counter()
    add_predictive(idata, model, settings)  # as the fit job draws them (crsmeta.model.fit)
    steps["prior and posterior predictive"] = time.perf_counter() - start
    return {"steps": steps}


# --- ESS/s grid ------------------------------------------------------------------------------


def grid_spec(n_cases: int) -> SimulationSpec:
    """SYNTHETIC case series only, one population, until about ``n_cases`` changes."""
    from crsmeta.simulate import SimulationSpec

    return SimulationSpec(n_case_reports=0, n_case_series=max(1, n_cases // CASES_PER_SERIES), n_cohorts_mean_sd=0,
                          n_cohorts_mean_p=0, n_cohorts_median_iqr=0, n_cohorts_pct_change=0, n_trials=0,
                          populations=("car_t_crs",), case_series_size=(4, 8), seed=42)


def grid_data(n_cases: int, path: Path) -> dict:
    """The grid's SYNTHETIC cases for one size, simulated and made into the workflow's tables
    (run in a child process), pickled to ``path`` for that size's fits."""
    import pandas as pd

    from crsmeta.simulate.pipeline import run_pipeline

    start = time.perf_counter()
    simulated = run_pipeline(grid_spec(n_cases))
    pd.to_pickle({"changes": simulated.changes, "comparisons": simulated.comparisons}, path)
    return {"data_s": time.perf_counter() - start}


def grid_run(data_path: Path, parameterisation: str, backend: str, sampler: dict) -> dict:
    """One fit of the grid (run in a child process) of the tables at ``data_path``: ESS,
    divergences, timings and peak RSS."""
    sys.path.insert(0, str(VALIDATION))
    import pandas as pd
    import reparameterisation as rp

    from crsmeta.model import ModelData

    settings = rp.sampler_settings(**sampler)
    tables = pd.read_pickle(data_path)
    data = ModelData.from_tables(tables["changes"], tables["comparisons"], settings)
    fit = rp.sample_timed(rp.PARAMETERISATIONS[parameterisation](data, settings), settings, backend)
    peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return {"cases": len(data.cases), **rp.fit_summary(fit), "peak_rss_mb": peak / 1024}


def grid(sizes: list[int], sampler: dict, timeout: float, env: dict[str, str], script: Path, folder: Path) -> list[dict]:
    """Every (size, parameterisation, backend) in its own process (``script``: the clone's copy of
    this file), stopped after ``timeout`` s (loading the tables and fitting). Each size's cases
    are simulated and made into the workflow's tables once (``data_s``, minutes at 30,000 cases),
    in a process of their own, and not timed against the target: it is of the fit."""
    rows = []
    for size in sizes:
        data_path = folder / f"grid_{size}.pkl"
        prepared = child_json([sys.executable, str(script), "--grid-data", str(size), str(data_path)], None, env)
        for backend in BACKENDS:
            for parameterisation in ("old", "new"):
                row = {"size": size, "parameterisation": parameterisation, "backend": backend,
                       "data_s": prepared.get("data_s")}
                if prepared["status"] != "done":
                    rows.append(row | {"status": "no data: " + prepared["status"]})
                    continue
                command = [sys.executable, str(script), "--grid-run", str(data_path), parameterisation, backend,
                           "--sampler", json.dumps(sampler)]
                row |= child_json(command, timeout, env)
                print(f"grid {row}", flush=True)
                rows.append(row)
    return rows


def child_json(command: list[str], timeout: float | None, env: dict[str, str]) -> dict:
    """Run a child that prints one JSON line last; kill its whole process group after ``timeout``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, env=env)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return {"status": f"stopped after {timeout:.0f} s", "wall_s": time.perf_counter() - start}
    if process.returncode:
        return {"status": "failed: " + (stderr.strip().splitlines() or ["no output"])[-1],
                "wall_s": time.perf_counter() - start}
    return {"status": "done", "wall_s": time.perf_counter() - start, **json.loads(stdout.strip().splitlines()[-1])}


def loglog_slopes(rows: list[dict]) -> list[dict]:
    """Slope of log(fit time) on log(cases) per parameterisation and backend (runs that finished)."""
    import numpy as np

    slopes = []
    for backend in BACKENDS:
        for parameterisation in ("old", "new"):
            done = [r for r in rows if r["status"] == "done" and r["backend"] == backend
                    and r["parameterisation"] == parameterisation]
            if len(done) < 2:
                continue
            cases = np.log([r["cases"] for r in done])
            total = np.polyfit(cases, np.log([r["compile_s"] + r["sample_s"] for r in done]), 1)[0]
            sampling = np.polyfit(cases, np.log([r["sample_s"] for r in done]), 1)[0]
            slopes.append({"backend": backend, "parameterisation": parameterisation, "runs": len(done),
                           "slope_fit": total, "slope_sampling": sampling})
    return slopes


# --- the document ----------------------------------------------------------------------------


def verdict(value: float, target: float, unit: str = " s", higher_is_better: bool = False) -> str:
    """``met`` or ``missed``, with the value and its ratio to the target."""
    if not math.isfinite(value):
        return "not measured"
    met = value >= target if higher_is_better else value <= target
    return f"**{'met' if met else 'missed'}** ({value:.3g}{unit}, {value / target:.2f}× the target)"


def workflow_section(result: dict) -> list[str]:
    lines = ["## Workflow runs (fresh clone)", "",
             "| run | wall (s) | succeeded | jobs run |", "|---|---|---|---|"]
    for run in result["runs"]:
        lines.append(f"| {run['name']} | {run['seconds']:.1f} | {'yes' if run['ok'] else 'no'} "
                     f"| {jobs_text(run['jobs'])} |")
    lines += ["", f"Main fit job (Snakemake `benchmark:` file): {seconds_text(result['cold_fit'])} cold, "
              f"{seconds_text(result['warm_fit'])} warm. Gate, bundled run: {result['gate']}; after adding doe2024: "
              f"{result['added_gate']}; SYNTHETIC demo: {result['demo_gate']}."]
    for run in result["runs"]:
        if not run["ok"]:
            lines += ["", f"`{run['name']}` failed; the end of its output:", "", "```", run["tail"], "```"]
    return lines


def fit_section(result: dict) -> list[str]:
    lines = ["## Where the main fit's time goes", "",
             "The main analysis on the bundled data, new parameterisation, nutpie, the sampler settings of the "
             "grid below, in one process, with the compile caches the workflow runs left (empty when they "
             "were skipped).", ""]
    if result["status"] != "done":
        return lines + [f"The measurement {result['status']}."]
    lines += ["| step | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.1f} |" for name, seconds in result["steps"].items()]
    lines.append(f"| total | {sum(result['steps'].values()):.1f} |")
    return lines


def grid_section(rows: list[dict], slopes: list[dict], sampler: dict, timeout: float) -> list[str]:
    lines = ["## ESS per second: old vs new parameterisation (SYNTHETIC case series)", "",
             f"{sampler['chains']} chains × {sampler['draws']} draws after {sampler['tune']} tuning steps, "
             f"target_accept {sampler['target_accept']}, seed {sampler['seed']}; each run in its own process, "
             f"stopped after {timeout:.0f} s (loading the data and fitting). Data = simulating the cases and making the workflow's "
             "tables of them, once per size (not timed against the target); ESS is the minimum over θ, τ and σ; ESS/s is bulk "
             "ESS per second of sampling (tuning included, compilation not); fit = compile + sampling.", "",
             "| cases | sampler | model | status | data (s) | compile (s) | sampling (s) | divergences | min bulk ESS "
             "| min tail ESS | max R-hat | bulk ESS/s | peak RSS (MB) |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        data = f"{r['data_s']:.1f}" if r.get("data_s") is not None else ""
        if r["status"] != "done":
            lines.append(f"| {r.get('cases', '~' + str(r['size']))} | {r['backend']} | {r['parameterisation']} "
                         f"| {r['status']} | {data} | | | | | | | | |")
            continue
        lines.append(f"| {r['cases']} | {r['backend']} | {r['parameterisation']} | done | {data} | {r['compile_s']:.1f} "
                     f"| {r['sample_s']:.1f} | {r['divergences']} | {r['min_ess_bulk']:.0f} | {r['min_ess_tail']:.0f} "
                     f"| {r['max_rhat']:.3f} | {r['ess_per_s']:.2f} | {r['peak_rss_mb']:.0f} |")
    lines += ["", "| sampler | model | runs | log-log slope, fit time | log-log slope, sampling time |",
              "|---|---|---|---|---|"]
    lines += [f"| {s['backend']} | {s['parameterisation']} | {s['runs']} | {s['slope_fit']:.2f} "
              f"| {s['slope_sampling']:.2f} |" for s in slopes]
    return lines


def ess_ratio_rows(rows: list[dict]) -> list[str]:
    """Target rows: new / old bulk ESS/s per size and backend, or which run did not finish."""
    lines = []
    for size in sorted({r["size"] for r in rows}):
        for backend in BACKENDS:
            pair = {r["parameterisation"]: r for r in rows if r["size"] == size and r["backend"] == backend}
            unfinished = [f"{label} {r['status']}" for label, r in pair.items() if r["status"] != "done"]
            if unfinished:
                lines.append(f"| new ESS/s ≥ 5× old (~{size} cases, {backend}) | no ratio: {'; '.join(unfinished)} |")
                continue
            ratio = pair["new"]["ess_per_s"] / pair["old"]["ess_per_s"]
            lines.append(f"| new ESS/s ≥ 5× old ({pair['new']['cases']} cases, {backend}) | "
                         f"{verdict(ratio, 5, '×', higher_is_better=True)} |")
    return lines


def targets_section(results: dict) -> list[str]:
    """Every target of the issue with its verdict, or why it was not measured in this run."""
    skipped = "not measured (part skipped in this run)"
    lines = ["## Targets (issue 9)", "", "| target | result |", "|---|---|"]
    workflow = results.get("workflow")
    runs = {run["name"]: run for run in workflow["runs"]} if workflow else {}

    def run_verdict(name: str, target: float) -> str:
        if name not in runs:
            return skipped
        return verdict(runs[name]["seconds"], target) + ("" if runs[name]["ok"] else ", run failed")

    lines += [
        f"| full bundled run, fresh clone, cold caches ≤ 180 s (stretch 60 s) | {run_verdict('cold full run', 180)} |",
        f"| adding one study and rerunning ≤ 90 s | {run_verdict('one study added (doe2024)', 90)} |",
        f"| no-op ≤ 3 s | {run_verdict('no-op rerun', 3)} |",
        f"| main fit ≤ 15 s with a warm cache | {verdict(workflow['warm_fit'], 15) if workflow else skipped} |",
        f"| SYNTHETIC demo ≤ 5 min | {run_verdict('SYNTHETIC demo', 300)} |",
        "| every analysis passes the gate at the default settings | " + (
            f"bundled: {workflow['gate']}; with doe2024: {workflow['added_gate']}; demo: {workflow['demo_gate']}"
            if workflow else skipped) + " |",
    ]
    grid_rows = results.get("grid", [])
    lines += ess_ratio_rows(grid_rows) or [f"| new ESS/s ≥ 5× old | {skipped} |"]
    largest = [r for r in grid_rows if r["parameterisation"] == "new" and r["backend"] == "nutpie"
               and r["size"] == max(row["size"] for row in grid_rows)]
    for r in largest:
        if r["status"] != "done":
            lines.append(f"| ~{r['size']} cases ≤ 3 min, 0 divergences, peak RSS ≤ 4 GB (new, nutpie) | "
                         f"**missed** ({r['status']}) |")
            continue
        lines.append(f"| {r['cases']} cases ≤ 3 min, 0 divergences, peak RSS ≤ 4 GB (new, nutpie) | fit "
                     f"{verdict(r['compile_s'] + r['sample_s'], 180)}; divergences {r['divergences']}; peak RSS "
                     f"{verdict(r['peak_rss_mb'], 4096, ' MB')} |")
    if not largest:
        lines.append(f"| 30,000 cases ≤ 3 min, 0 divergences, peak RSS ≤ 4 GB | {skipped} |")
    tests = results.get("tests")
    lines.append("| test suite ≤ 5 min | " + (
        verdict(tests["seconds"], 300) + ("" if tests["ok"] else ", tests failed") if tests else skipped) + " |")
    return lines + ["", *WHY_MISSED]


# Why the workflow targets are missed; the measured figures are in the tables above.
WHY_MISSED = [
    "## Why the workflow targets are missed",
    "",
    "- Every analysis is a `fit_model` job of its own (19 on the bundled data, 20 with doe2024); each "
    "takes half the cores, so on 2 cores two run side by side, one chain thread each. Only the analyses "
    "whose weights hold are reweighted from the main draws instead (docs/model.md, \"Reweighted instead "
    "of refitted\"; `no_digitised` is the main posterior itself): the bundled studies each inform some "
    "cell almost alone and τ, σ and ρ are prior-driven, so most leave-one-out and all prior analyses "
    "give Pareto k̂ > 0.7 or fewer than 400 effective draws and are sampled (the route and k̂ of each "
    "are in results/model/diagnostics.tsv and the report).",
    "- A warm fit: the main fit in one process (the table above) samples for well under half of its "
    "time; imports, building the model and loading its compiled code take about as long. As a job "
    "beside another fit it takes about twice that (the benchmark file's figure above): the two share "
    "the cores. A gradient of the bundled main model costs ~100 µs (wall at a fixed point, 549dbce, "
    "which removed PyTensor's runtime shape checks: 111 µs before) and a draw ~29 of them; the fused "
    "learned-SE integral is a quarter of it and the other ~450 nodes cost ~0.15 µs each, so a faster "
    "gradient needs fewer, larger nodes (each kind of row's log density and gradient as one fused "
    "loop: done for the learned-SE integral since f2a7f2b; the rows' means and se² prior means that "
    "feed it are next). A fit short only of ESS samples again with twice the draws.",
    "- Cold: each model structure compiles its log density and gradient once (PyTensor "
    "rewrites and numba/LLVM on one core: most of the main fit job's cold time above; the main fit's predictive "
    "draws compile nothing since 4f60ed1, numpy draws them); every later fit of the structure, in any job or rerun, "
    "loads it. JAX compiles the same log density and gradient in about 4 s, but each gradient "
    "then costs ~1.5x numba's, so warm runs would be slower (measured 2026-12-06: \"JAX instead of "
    "numba\" below). The bundled data had 6 "
    "structures at 01c387a (main; student_t; baseline_adjusted; case_only; two leave-one-outs) and "
    "have 4 since the analyses that leave rows out keep the main model's levels and terms (docs/model.md, "
    "\"One structure for the analyses that leave rows out\").",
    "- The test suite here runs in a clean clone with compile caches of its own, empty (PyTensor's C "
    "code and numba's), so every model structure a test fits compiles once per pytest worker; `bash "
    ".ci/run` uses PyTensor's default compile directory in the home directory, warm on this machine "
    "(its `pytest` took 461 s in a fresh clone of 9448620). The three mocked end-to-end "
    "Snakemake runs (history, demo, and cumulative with leave-one-out; one more for the shared fixture "
    "project) are about a third of the test time, mostly Python start-ups that import PyMC and small "
    "compiles (2026-12-06: below, \"The test suite at about 5 minutes\"). The cold-against-warm byte-identity "
    "check (two Snakemake processes, two directories) runs once, in tests/cluster/run_slurm.sh.",
    "- Adding a study changes the data of every analysis, so every fit reruns (the job list above). It "
    "compiles again only when it changes a model's structure: a new marker, a covariate switched on, "
    "or the first row of a kind the model had none of (a new intervention does not: its level is data).",
    "- A grid run's fit (compile and sampling) is timed apart from simulating its cases and making "
    "the workflow's tables of them, done once per size (the data column, minutes at ~30,000 cases: "
    "every simulated case series is written as a study and extracted, harmonised and paired as a "
    "user's would be). Until 2026-12-05 each run did that itself inside its timeout, so the "
    "~30,000-case runs stopped before their fit began.",
]


def document(results: dict, args: argparse.Namespace) -> str:
    """docs/benchmarks.md from one run's results."""
    command = "python benchmarks/run.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    lines = ["# Benchmarks", "",
             f"Written by `{command}` on {date.today().isoformat()} (commit {results['commit']}"
             f"{' plus uncommitted changes' if args.uncommitted else ''}); every figure below comes from that "
             f"one run. Machine: {CORES} cores ({platform.processor() or platform.machine()}), "
             f"{results['memory_gb']:.0f} GB RAM, Python {platform.python_version()}, load average "
             f"{results['load']} at the start (other jobs shared the cores: wall times are indicative; "
             "ratios and job lists should not depend on the machine).", "",
             "Workflow runs use this Python environment with the clone's own package "
             "(`PYTHONPATH=<clone>/src`) rather than a new venv, so \"after install\" excludes `pip install`."
             + (f" Parts left out of this run (`--skip`): {', '.join(args.skip)}." if args.skip else "")
             + (f" Workflow runs timed (`--runs`): {', '.join(args.runs)}." if tuple(args.runs) != WORKFLOW_RUNS else ""),
             ""]
    sections = []
    if "workflow" in results:
        sections.append(workflow_section(results["workflow"]))
    if "fit" in results:
        sections.append(fit_section(results["fit"]))
    if "grid" in results:
        sections.append(grid_section(results["grid"], loglog_slopes(results["grid"]), results["sampler"],
                                     args.timeout))
    if "tests" in results:
        tests = results["tests"]
        sections.append(["## Test suite", "", f"`pytest` in the clone: {tests['seconds']:.0f} s, "
                         f"{'passed' if tests['ok'] else 'failed'}."])
    sections.append(targets_section(results))
    return "\n".join(lines + [line for section in sections for line in [*section, ""]])


def machine_facts() -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return {"commit": commit, "memory_gb": memory, "load": load}


def default_sampler(project: Path) -> dict:
    """The project config's sampler settings (chains, draws, tune, target_accept) and seed 1."""
    from crsmeta.io import load_yaml
    from crsmeta.model import ModelSettings

    settings = ModelSettings.from_config(load_yaml(project / "config" / "config.yaml"))
    return {"chains": settings.chains, "draws": settings.draws, "tune": settings.tune,
            "target_accept": settings.target_accept, "seed": 1}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="cases per grid run")
    parser.add_argument("--chains", type=int, help="grid runs (default: config/config.yaml's sampler)")
    parser.add_argument("--draws", type=int)
    parser.add_argument("--tune", type=int)
    parser.add_argument("--target-accept", type=float)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a grid run is stopped")
    parser.add_argument("--skip", nargs="+", choices=PARTS, default=[], help="parts to leave out")
    parser.add_argument("--runs", nargs="+", choices=WORKFLOW_RUNS, default=list(WORKFLOW_RUNS),
                        help="which runs of the workflow part to time")
    parser.add_argument("--uncommitted", action="store_true",
                        help="benchmark the working tree: apply its uncommitted changes to the clone")
    parser.add_argument("--out", type=Path, default=DOC)
    parser.add_argument("--grid-data", nargs=2, metavar=("CASES", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--grid-run", nargs=3, metavar=("DATA", "MODEL", "BACKEND"), help=argparse.SUPPRESS)
    parser.add_argument("--sampler", type=json.loads, help=argparse.SUPPRESS)
    parser.add_argument("--fit-split", type=Path, metavar="PROJECT", help=argparse.SUPPRESS)
    return parser.parse_args()


def test_suite(folder: Path, uncommitted: bool) -> Run:
    """The README's test command in a clean clone of its own (the workflow runs above added a study
    to theirs) with ``../shared`` beside it, as CI runs it; its compile caches start empty."""
    clone = clone_repository(folder / "crsmeta", uncommitted)
    if SHARED.exists():
        (folder / "shared").symlink_to(SHARED)
    return timed("test suite", [str(Path(sys.executable).with_name("pytest"))], clone,
                 workflow_env(clone, folder / "cache"))


def main() -> None:
    args = parse_args()
    if args.grid_data:
        cases, path = args.grid_data
        print(json.dumps(grid_data(int(cases), Path(path))))
        return
    if args.grid_run:
        data_path, parameterisation, backend = args.grid_run
        print(json.dumps(grid_run(Path(data_path), parameterisation, backend, args.sampler)))
        return
    if args.fit_split:
        print(json.dumps(main_fit_split(args.fit_split, args.sampler)))
        return
    results: dict = machine_facts()
    with tempfile.TemporaryDirectory(prefix="crsmeta-bench-") as temporary:
        clone = clone_repository(Path(temporary) / "crsmeta", args.uncommitted)
        sampler = default_sampler(clone) | {key: value for key, value in (
            ("chains", args.chains), ("draws", args.draws), ("tune", args.tune),
            ("target_accept", args.target_accept)) if value is not None}
        results["sampler"] = sampler
        cache = Path(temporary) / "cache"
        env = workflow_env(clone, cache)
        # the children run the clone's copy of this script: they then read the clone's validation/
        # (the old parameterisation) as well as its package, never this checkout's working tree
        script = clone / "benchmarks" / "run.py"
        if "workflow" not in args.skip:
            results["workflow"] = workflow_benchmarks(clone, cache, tuple(args.runs))
        if "fit" not in args.skip:
            project = clone if (clone / "results" / "model" / "changes.tsv").exists() else ROOT
            results["fit"] = child_json([sys.executable, str(script), "--fit-split", str(project),
                                         "--sampler", json.dumps(sampler)], None, env)
        if "grid" not in args.skip:
            results["grid"] = grid(args.sizes, sampler, args.timeout, env, script, Path(temporary))
        if "tests" not in args.skip:
            results["tests"] = asdict(test_suite(Path(temporary) / "tests", args.uncommitted))
    args.out.write_text(document(results, args))
    print(json.dumps(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
