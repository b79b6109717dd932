"""Robust to the next study (issue 9): the bundled data plus one more study, of each kind a curator
is likely to add next, through every analysis at the default settings.

For each example below, in a fresh clone of HEAD: the study's table and file are written, listed
in config.yaml, and ``snakemake --cores N results/model/diagnostics.tsv`` runs every analysis; the
gate verdict of each, the draws each needed, and the main estimate of the cell the study informs
are read back. The examples are SYNTHETIC (``synthetic: true``: labelled so in every output, and
only ever written into the temporary clones, never into the project's config). Writes
docs/next_study.md.

    python benchmarks/next_study.py [--cores 2] [--cache DIR] [--only NAME ...] [--keep DIR]

``--cache`` seeds each clone's compile cache with a copy of DIR (e.g. a finished run's ``.cache``),
so the figures measure the fits rather than the first compile of each model structure.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as benchmark  # noqa: E402  (benchmarks/run.py: clone, environment, timing)

DOC = benchmark.ROOT / "docs" / "next_study.md"
TARGET = "results/model/diagnostics.tsv"


@dataclasses.dataclass(frozen=True)
class Example:
    """One study a curator might add: its file, its table, and the cell whose estimate to show."""

    name: str
    what: str
    study_yaml: str
    table_name: str
    table_csv: str
    cell: tuple[str, str]


def study_yaml(name: str, about: str, design: str, grading_scale: str, tables: str) -> str:
    """A SYNTHETIC study file: its header and ``tables`` (its cases: or summaries: block)."""
    return f"""id: {name}
citation: "SYNTHETIC example for benchmarks/next_study.py: {about}"
url: https://example.org/synthetic/{name}
synthetic: true
population: car_t_crs
design: {design}
grading_scale: {grading_scale}
{tables}"""


def wide_cases(name: str, measurements: dict[str, tuple[str, str, str, int]]) -> str:
    """The cases: block of a wide table with Patient, Salvage and Grade columns and one column
    per measurement (column: marker, timepoint, unit, hours)."""
    lines = [f"  {column}: {{marker: {marker}, timepoint: {timepoint}, unit: {unit}, hours: {hours}}}"
             for column, (marker, timepoint, unit, hours) in measurements.items()]
    return f"""cases:
  file: resources/literature/{name}/cases.csv
  layout: wide
  columns: {{patient: Patient, intervention: Salvage, crs_grade: Grade}}
  constants: {{locator: "SYNTHETIC", quote: "SYNTHETIC values written by benchmarks/next_study.py"}}
  measurements:
""" + "\n".join("  " + line for line in lines) + "\n"


def before_and_after(column: str, marker: str, unit: str) -> dict[str, tuple[str, str, str, int]]:
    """A marker measured at the salvage (0 h) and the next day (24 h)."""
    return {f"{column}_pre": (marker, "pre", unit, 0), f"{column}_post": (marker, "post", unit, 24)}


CASE_REPORT_RISE = Example(
    name="syn_next_rise",
    what="case report, tocilizumab: IL-6 rises (as it often does after IL-6 receptor blockade), temperature falls",
    study_yaml=study_yaml("syn_next_rise", "a case report whose IL-6 rises after tocilizumab", "case_report",
                          "ASTCT2019", wide_cases("syn_next_rise", before_and_after("IL6", "IL-6", "pg/mL")
                                                  | before_and_after("T", "temperature", "degC"))),
    table_name="cases.csv",
    table_csv="""Patient,Salvage,Grade,IL6_pre,IL6_post,T_pre,T_post
P1,tocilizumab,3,850,4200,39.8,37.2
""",
    cell=("tocilizumab", "IL-6"),
)

CASE_SERIES = Example(
    name="syn_next_series",
    what="case series of 4, plasma exchange (a new intervention here): IL-6 with one value below the LOD, ferritin",
    study_yaml=study_yaml("syn_next_series", "a case series treated with plasma exchange", "case_series", "Lee2014",
                          wide_cases("syn_next_series", before_and_after("IL6", "IL-6", "pg/mL")
                                     | before_and_after("Ferr", "ferritin", "ng/mL"))),
    table_name="cases.csv",
    table_csv="""Patient,Salvage,Grade,IL6_pre,IL6_post,Ferr_pre,Ferr_post
P1,TPE,3,1250,310,18500,9100
P2,plasmapheresis,4,640,<5,24000,15200
P3,TPE,3,2100,880,9800,7600
P4,TPE,4,3900,1500,31000,22400
""",
    cell=("plasma_exchange", "IL-6"),
)

COHORT_MEAN_SD = Example(
    name="syn_next_cohort",
    what="cohort of 12, emapalumab: IFN-γ as mean ± SD before and after",
    study_yaml=study_yaml("syn_next_cohort", "a cohort reporting IFN-gamma as mean and SD", "cohort", "ASTCT2019",
                          "summaries:\n  file: resources/literature/syn_next_cohort/summaries.csv\n"),
    table_name="summaries.csv",
    table_csv="""arm,intervention,co_interventions,marker,timepoint,hours,n,statistic,value,unit,spread_type,spread,spread_low,spread_high,p_value,effect_type,estimate,ci_low,ci_high,se,locator,quote,digitised,flags,exclude
,emapalumab,,IFN-gamma,pre,0,12,mean,950,pg/mL,sd,400,,,,,,,,,SYNTHETIC,SYNTHETIC values written by benchmarks/next_study.py,false,,
,emapalumab,,IFN-gamma,post,48,12,mean,310,pg/mL,sd,260,,,,,,,,,SYNTHETIC,SYNTHETIC values written by benchmarks/next_study.py,false,,
""",
    cell=("emapalumab", "IFN-gamma"),
)

EXAMPLES = (CASE_REPORT_RISE, CASE_SERIES, COHORT_MEAN_SD)


def add_study(clone: Path, example: Example) -> None:
    """The example's table and study file, and its line in config.yaml (README "Adding a study")."""
    table = clone / "resources" / "literature" / example.name / example.table_name
    table.parent.mkdir(parents=True, exist_ok=True)
    table.write_text(example.table_csv)
    (clone / "config" / "studies" / f"{example.name}.yaml").write_text(example.study_yaml)
    config = clone / "config" / "config.yaml"
    lines = config.read_text().splitlines(keepends=True)
    last_study = max(i for i, line in enumerate(lines) if line.startswith("  - config/studies/"))
    lines.insert(last_study + 1, f"  - config/studies/{example.name}.yaml\n")
    config.write_text("".join(lines))


def fits_read_back(clone: Path, example: Example) -> dict:
    """Gate verdicts, the analyses that needed more draws, the main fit's worst R-hat and ESS, and
    the main estimate of the example's cell."""
    import pandas as pd

    diagnostics = pd.read_csv(clone / TARGET, sep="\t", keep_default_na=False)
    fits = diagnostics[diagnostics["kind"] == "fit"]
    sampled = fits[fits["route"] != "reweighted"]
    default_draws = pd.to_numeric(sampled["draws"], errors="coerce").min()
    extended = sorted(sampled.loc[pd.to_numeric(sampled["draws"], errors="coerce") > default_draws, "analysis"])
    main = diagnostics[(diagnostics["analysis"] == "main") & (diagnostics["kind"] == "parameter")]
    effects = pd.read_csv(clone / "results" / "model" / "main" / "effects.tsv", sep="\t", keep_default_na=False)
    cell = effects[(effects["intervention"] == example.cell[0]) & (effects["marker"] == example.cell[1])].iloc[0]
    return {
        "gate": benchmark.gate_summary(clone / TARGET),
        "failed": sorted(fits.loc[fits["gate"] != "passed", "analysis"]),
        "extended": extended,
        "main_r_hat": pd.to_numeric(main["r_hat"]).max(),
        "main_ess": (pd.to_numeric(main["ess_bulk"]).min(), pd.to_numeric(main["ess_tail"]).min()),
        "main_divergences": int(pd.to_numeric(diagnostics.loc[diagnostics["analysis"] == "main", "divergences"],
                                              errors="coerce").fillna(0).sum()),
        "cell": f"{float(cell['pct_median']):+.0f}% ({float(cell['pct_lo95']):+.0f} to {float(cell['pct_hi95']):+.0f}), "
                f"{cell['evidence']}",
        "synthetic": str(cell["synthetic"]),
    }


def run_example(example: Example, folder: Path, cores: int, cache: Path | None) -> dict:
    """A fresh clone with the example added, every analysis run; what :func:`fits_read_back` reads."""
    clone = benchmark.clone_repository(folder / example.name, uncommitted=False)
    if cache is not None:
        shutil.copytree(cache, clone / ".cache")
    add_study(clone, example)
    env = benchmark.workflow_env(clone, clone / ".cache")
    run = benchmark.timed(example.name, [str(benchmark.SNAKEMAKE), "--cores", str(cores), TARGET], clone, env)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True,
                            check=True).stdout.strip()
    result = {"example": example, "commit": commit, "seconds": run.seconds, "ok": run.ok, "tail": run.tail}
    if run.ok:
        result |= fits_read_back(clone, example)
    else:
        result["gate_failures"] = gate_failures(clone)
    return result


def gate_failures(clone: Path) -> list[str]:
    """Each fit log's gate failure, as the fit job wrote it (its first line and the failures listed)."""
    failures = []
    for log in sorted((clone / "logs" / "fit_model").glob("*.log")):
        lines = log.read_text().splitlines()
        for index, line in enumerate(lines):
            if "fails the diagnostics gate" in line and "ERROR" in line:
                listed = [item.strip() for item in lines[index + 1:index + 6] if item.strip().startswith("- ")]
                failures.append(line.split("job failed: ", 1)[-1] + " " + "; ".join(listed))
                break
    return failures


def document(results: list[dict], cores: int, cache: Path | None) -> str:
    # the clones' commit: the repository may have moved on while they ran
    commit = ", ".join(sorted({result["commit"] for result in results}))
    lines = [
        "# Robust to the next study",
        "",
        f"Written by `python benchmarks/next_study.py --cores {cores}` on {datetime.date.today()} (commit {commit}); "
        f"{benchmark.CORES} cores. Each row: a fresh clone with the bundled studies and one more, SYNTHETIC "
        "(labelled so in every output; never part of the real analysis), run through every analysis at the "
        f"default settings (`snakemake --cores {cores} {TARGET}`). "
        + ("Each clone's compile cache was seeded with a warm one (the bundled data's model structures), so the "
           "times are of the fits and of compiling only the structures the added study changes. "
           if cache is not None else "Each clone started with an empty compile cache. ")
        + "The cell column is the main analysis' % change (95% interval) of the cell the study informs, with its "
        "evidence label: a change after a salvage treatment, not its effect.",
        "",
        "| added study | wall (s) | gate | more draws | main: max R-hat, min bulk/tail ESS, divergences | cell |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        example = result["example"]
        if not result["ok"]:
            lines.append(f"| `{example.name}`: {example.what} | {result['seconds']:.0f} | **run failed** | | | |")
            continue
        bulk, tail = result["main_ess"]
        lines.append(
            f"| `{example.name}`: {example.what} | {result['seconds']:.0f} | {result['gate']} | "
            f"{', '.join(result['extended']) or 'none'} | {result['main_r_hat']:.3f}, {bulk:.0f}/{tail:.0f}, "
            f"{result['main_divergences']} | {example.cell[0]} × {example.cell[1]}: {result['cell']} |")
    for result in results:
        if not result["ok"]:
            lines += ["", f"`{result['example'].name}` failed.",
                      *(f"- {failure}" for failure in result["gate_failures"]),
                      "", "The end of its output:", "", "```", result["tail"], "```"]
    return "\n".join(lines) + "\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cores", type=int, default=benchmark.CORES)
    parser.add_argument("--cache", type=Path, help="a compile cache to copy into each clone")
    parser.add_argument("--only", nargs="+", choices=[example.name for example in EXAMPLES])
    parser.add_argument("--keep", type=Path, help="run in this folder and keep the clones")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    examples = [example for example in EXAMPLES if not args.only or example.name in args.only]
    with tempfile.TemporaryDirectory(prefix="crsmeta-next-") as scratch:
        folder = args.keep or Path(scratch) / "clones"
        folder.mkdir(parents=True, exist_ok=True)
        results = [run_example(example, folder, args.cores, args.cache) for example in examples]
    DOC.write_text(document(results, args.cores, args.cache))
    print(DOC.read_text())


if __name__ == "__main__":
    main()
