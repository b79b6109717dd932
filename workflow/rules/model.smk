# Model stage: per-patient changes, one fit per analysis (main + sensitivity), collected tables.
# Needs `study_ids()` from common.smk. MODEL_TARGETS lists what `rule all` should request.
import re

from crsmeta.model.analyses import analysis_settings
from crsmeta.model.settings import ModelSettings
from crsmeta.simulate import truth_path

MODEL_SETTINGS = ModelSettings.from_config(config)
MODEL_ANALYSES = analysis_settings(MODEL_SETTINGS, config.get("sensitivity", {}), study_ids())
MODEL_TARGETS = [
    "results/model/diagnostics.tsv",
    "results/model/effects_all.tsv",
    *expand("results/model/{analysis}/posterior.nc", analysis=MODEL_ANALYSES),
]


wildcard_constraints:
    analysis="|".join(re.escape(name) for name in MODEL_ANALYSES),


rule derive_changes:
    input:
        cases="results/harmonised/cases.tsv",
    output:
        changes=report("results/model/changes.tsv", caption="../report/changes.rst", category="2. Changes"),
        pairing=report("results/audit/pairing.tsv", caption="../report/pairing.rst", category="2. Changes"),
    params:
        selection=config["changes"]["selection"],
        window_hours=config["changes"]["window_hours"],
        target_hours=config["changes"]["target_hours"],
    log:
        "logs/derive_changes/derive_changes.log",
    script:
        "../scripts/derive_changes.py"


rule fit_model:
    input:
        changes="results/model/changes.tsv",
        summaries="results/harmonised/summaries.tsv",
    output:
        posterior="results/model/{analysis}/posterior.nc",
        effects=report(
            "results/model/{analysis}/effects.tsv",
            caption="../report/effects.rst",
            category="3. Model",
            subcategory="{analysis}",
        ),
        diagnostics="results/model/{analysis}/diagnostics.tsv",
        observations="results/model/{analysis}/observations.tsv",
        audit="results/model/{analysis}/audit.tsv",
    params:
        settings=lambda wildcards: MODEL_ANALYSES[wildcards.analysis].to_dict(),
        config_hash=lambda wildcards: MODEL_ANALYSES[wildcards.analysis].config_hash(),
    threads: MODEL_SETTINGS.chains
    resources:
        mem_mb=2000,
    log:
        "logs/fit_model/{analysis}.log",
    benchmark:
        "benchmarks/fit_model/{analysis}.tsv"
    script:
        "../scripts/fit_model.py"


rule collect_diagnostics:
    input:
        diagnostics=expand("results/model/{analysis}/diagnostics.tsv", analysis=MODEL_ANALYSES),
        effects=expand("results/model/{analysis}/effects.tsv", analysis=MODEL_ANALYSES),
    output:
        diagnostics=report("results/model/diagnostics.tsv", caption="../report/diagnostics.rst", category="3. Model"),
        effects=report("results/model/effects_all.tsv", caption="../report/effects_all.rst", category="3. Model"),
    params:
        analyses=list(MODEL_ANALYSES),
    log:
        "logs/collect_diagnostics/collect_diagnostics.log",
    script:
        "../scripts/collect_diagnostics.py"


rule cross_check_frequentist:
    input:
        changes="results/model/changes.tsv",
        summaries="results/harmonised/summaries.tsv",
    output:
        table=report("results/model/frequentist.tsv", caption="../report/frequentist.rst", category="3. Model"),
        per_study="results/model/frequentist_studies.tsv",
    log:
        "logs/cross_check_frequentist/cross_check_frequentist.log",
    script:
        "../scripts/cross_check_frequentist.py"


# SYNTHETIC demo only: the simulator wrote the true θ beside its study files, so the main fit's
# intervals can be checked against it (issue 3's recovery criterion, reported in the demo's report).
if "synthetic" in config:
    MODEL_TARGETS.append("results/model/recovery.tsv")

    rule recover_truth:
        input:
            posterior="results/model/main/posterior.nc",
            effects="results/model/main/effects.tsv",
            truth=project_path(truth_path(config["synthetic"]["out_dir"])),
        output:
            table=report("results/model/recovery.tsv", caption="../report/recovery.rst", category="3. Model"),
        log:
            "logs/recover_truth/recover_truth.log",
        script:
            "../scripts/recover_truth.py"
