# Config validation happens in the Snakefile; here: the study files and small input functions.
# Paths of project files (study files, their tables, resources) are taken from the project
# directory, so that a run with `--directory <dir>` (e.g. the SYNTHETIC demo) writes its
# results there without touching the project's own results/.
import os
from pathlib import Path

from snakemake.exceptions import WorkflowError

from crsmeta.compile_cache import compile_cache_environment

PROJECT_DIR = Path(workflow.basedir)
# PyTensor's compiledir and numba's cache in <project>/.cache (git-ignored), set before anything
# imports pytensor: every fit job and every rerun, also with --directory, reuses the compiled model
os.environ.update(compile_cache_environment(PROJECT_DIR / ".cache"))

from crsmeta.studies import high_risk_study_ids, load_studies
from crsmeta.vocabulary import INTERVENTIONS_FILE, MARKERS_FILE

# The vocabularies as named inputs (the package's own data files, src/crsmeta/data/ in this
# repository). A rule whose library code looks up intervention or marker names declares the ones
# it uses, and its script reads exactly these (crsmeta.vocabulary.files_in_use): the file the DAG
# tracks is the file read. Only harmonise_study resolves intervention names; the stages after it
# look up markers (their change scale and unit).
VOCABULARY_INPUTS = {"interventions": str(INTERVENTIONS_FILE), "markers": str(MARKERS_FILE)}
MARKERS_INPUT = {"markers": str(MARKERS_FILE)}

# In the SYNTHETIC demo, demo.smk (included before this file) has made the simulated study files
# the study list.
STUDIES = {study.id: study for study in load_studies(config["studies"], PROJECT_DIR)}
if not STUDIES:
    raise WorkflowError("config: `studies` lists no study file; list at least one under config/studies/")


wildcard_constraints:
    study="[A-Za-z0-9_]+",


def project_path(relative):
    return str(PROJECT_DIR / relative)


def study_ids():
    return sorted(STUDIES)


def high_risk_studies():
    """The studies whose study files rate them at high risk of bias (sensitivity exclude_high_risk)."""
    return high_risk_study_ids(STUDIES.values())


def publication_dates():
    """Each study's publication date (None: not reported), for the cumulative steps."""
    return {study_id: study.published for study_id, study in STUDIES.items()}


def study_files():
    return [str(STUDIES[study_id].file) for study_id in study_ids()]


def study_file(wildcards):
    return str(STUDIES[wildcards.study].file)


def study_path_as_configured(wildcards):
    return str(STUDIES[wildcards.study].path)


def study_tables(wildcards):
    study = STUDIES[wildcards.study]
    return [str(spec.file) for spec in (study.cases, study.summaries) if spec is not None]


def per_study(pattern):
    return expand(pattern, study=study_ids())


def final_outputs():
    return [
        "results/harmonised/cases.tsv",
        "results/harmonised/summaries.tsv",
        "results/audit/rows.tsv",
        "results/audit/conversions.tsv",
        "results/model/frequentist.tsv",
        "results/report/report.html",
        "results/report/forest",
    ] + MODEL_TARGETS
