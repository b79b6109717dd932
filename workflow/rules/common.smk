# Config validation happens in the Snakefile; here: the study files and small input functions.
from pathlib import Path

from crsmeta.studies import load_studies

PROJECT_DIR = Path(workflow.basedir)
STUDIES = {study.id: study for study in load_studies(config["studies"], PROJECT_DIR)}


wildcard_constraints:
    study="[A-Za-z0-9_]+",


def study_ids():
    return sorted(STUDIES)


def study_files():
    return [str(STUDIES[study_id].path) for study_id in study_ids()]


def study_file(wildcards):
    return str(STUDIES[wildcards.study].path)


def study_tables(wildcards):
    study = STUDIES[wildcards.study]
    return [spec.relative_file for spec in (study.cases, study.summaries) if spec is not None]


def per_study(pattern):
    return expand(pattern, study=study_ids())


def final_outputs():
    return [
        "results/harmonised/cases.tsv",
        "results/harmonised/summaries.tsv",
        "results/audit/rows.tsv",
        "results/audit/conversions.tsv",
    ] + MODEL_TARGETS + ["results/model/frequentist.tsv", "results/report/report.html", "results/report/forest"]
