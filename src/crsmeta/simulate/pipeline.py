"""A SYNTHETIC dataset through the package's own pipeline, in this process: its study files and
source tables are written to a temporary directory, then extract → harmonise → combine → changes
make the tables by the very library calls of the workflow's rule scripts (workflow/scripts/
extract_study.py, harmonise_study.py, combine_studies.py, derive_changes.py, compare_summaries.py).

Fits on simulated data (calibration, validation, benchmarks) take their tables from here, so they
exercise the data layer the workflow runs, not a copy of it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crsmeta import grading, vocabulary
from crsmeta.audit import check_audit_complete
from crsmeta.changes import derive_changes
from crsmeta.comparisons import summary_comparisons
from crsmeta.extract import extract_cases, extract_summaries
from crsmeta.harmonise import HarmonisedStudy, combine, harmonise_study
from crsmeta.simulate.files import write_study_files
from crsmeta.simulate.spec import SimulationSpec
from crsmeta.simulate.studies import SimulatedDataset, simulate_dataset
from crsmeta.studies import load_study

STUDY_DIR = "synthetic"
"""Where the study files go in the temporary project (the tables' ``source_file`` starts so)."""


@dataclass(frozen=True)
class PipelineTables:
    """What the workflow makes of the simulated studies: the harmonised cases and summaries and the
    row audit (results/harmonised, results/audit), the changes and comparisons the model takes
    (results/model), and the truth the studies were drawn from."""

    cases: pd.DataFrame
    summaries: pd.DataFrame
    rows: pd.DataFrame
    changes: pd.DataFrame
    comparisons: pd.DataFrame
    truth: pd.DataFrame


def run_pipeline(dataset: SimulatedDataset | SimulationSpec) -> PipelineTables:
    """Write the SYNTHETIC studies and run extract → harmonise → combine → changes on them, with the
    package's vocabularies and grade mapping and the config's default ``changes`` rule.

    The files go to a temporary directory of this call alone, removed on return, so that parallel
    calls never share a file.
    """
    dataset = dataset if isinstance(dataset, SimulatedDataset) else simulate_dataset(dataset)
    with tempfile.TemporaryDirectory(prefix="crsmeta-synthetic-") as temporary:
        harmonised = _harmonise_studies(dataset, Path(temporary))
    changes, _ = derive_changes(harmonised.cases)
    comparisons, _ = summary_comparisons(harmonised.summaries)
    return PipelineTables(cases=harmonised.cases, summaries=harmonised.summaries, rows=harmonised.rows,
                          changes=changes, comparisons=comparisons, truth=dataset.truth)


def _harmonise_studies(dataset: SimulatedDataset, project: Path) -> HarmonisedStudy:
    """Rules extract_study, harmonise_study and combine_studies on the studies written in ``project``."""
    paths = write_study_files(dataset, project / STUDY_DIR, project)
    # relative to the project, as a config lists them, in the workflow's order (study ids sorted)
    study_files = sorted((path.relative_to(project) for path in paths), key=lambda path: path.stem)
    parts, extracted = [], []
    for study_file in study_files:
        study = load_study(study_file, project)
        cases, summaries = extract_cases(study), extract_summaries(study)
        parts.append(harmonise_study(
            study, cases, summaries, interventions=vocabulary.INTERVENTIONS_FILE,
            markers=vocabulary.MARKERS_FILE, grade_mapping=grading.MAPPING_FILE))
        extracted += [cases, summaries]
    combined = combine(parts)
    check_audit_complete(combined.rows, extracted)
    return combined
