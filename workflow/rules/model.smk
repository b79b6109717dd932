# Model stage: one fit per analysis (main, sensitivity, cumulative steps), collected tables.
# Needs `study_ids()`, `high_risk_studies()` and `publication_dates()` from common.smk.
# should request.
import re

from crsmeta import tables
from crsmeta.io import read_tsv
from snakemake.logging import logger

from crsmeta.model.analyses import (
    CUMULATIVE_PREFIX, LEAVE_ONE_OUT_PREFIX, MAIN, analyses_after_data, analysis_settings, cumulative_dates,
    cumulative_on, fit_priority, reweighting_of, settings_after_data, skipped_analyses,
)
from crsmeta.model.settings import ModelSettings

MODEL_SETTINGS = ModelSettings.from_config(config)
SENSITIVITY = config.get("sensitivity", {})
# With `leave_one_out: contributing` the leave-one-out fits, and the cumulative steps, are known
# only after the checkpoint `contributing_studies` has read the data; FIXED_ANALYSES are the ones
# known at parse time.
LOO_AFTER_DATA = analyses_after_data(SENSITIVITY)
FIXED_ANALYSES = analysis_settings(MODEL_SETTINGS, SENSITIVITY, study_ids(), high_risk=high_risk_studies())
if workflow.is_main_process:
    for name, reason in skipped_analyses(SENSITIVITY, study_ids(), high_risk_studies()).items():
        logger.info(f"sensitivity analysis {name} not run: {reason}")
MODEL_TARGETS = [
    "results/model/diagnostics.tsv",
    "results/model/effects_all.tsv",
]
# the cumulative steps (one analysis per publication date) and their table
CUMULATIVE = LOO_AFTER_DATA and cumulative_on(SENSITIVITY)
if CUMULATIVE:
    MODEL_TARGETS.append("results/model/cumulative.tsv")
if LOO_AFTER_DATA:
    # requested itself, so that a tree whose collected tables predate the checkpoint still
    # runs it and then sees every analysis' fit (and any of them whose settings changed)
    MODEL_TARGETS.append("results/model/contributing_studies.tsv")


def model_analyses():
    """Every analysis' name (after the checkpoint, when leave-one-out depends on the data)."""
    if not LOO_AFTER_DATA:
        return list(FIXED_ANALYSES)
    path = checkpoints.contributing_studies.get().output.table
    # the contract's columns only: a full tables.read imports pandera, which adds about 0.4 s
    # (some 10%) to every dry run of the bundled data, for a table the checkpoint's job checked
    table = read_tsv(path)
    tables.check_header(tables.CONTRIBUTING_STUDIES, list(table.columns), path)
    return list(analysis_settings(MODEL_SETTINGS, SENSITIVITY, study_ids(), list(table["study_id"]),
                                  high_risk=high_risk_studies(), published=publication_dates(),
                                  cumulative=cumulative_dates(publication_dates(), table)))


def settings_of(analysis):
    if analysis in FIXED_ANALYSES:
        return FIXED_ANALYSES[analysis]
    return settings_after_data(MODEL_SETTINGS, analysis, publication_dates())


ANALYSIS_PATTERN = "|".join(re.escape(name) for name in FIXED_ANALYSES)
if LOO_AFTER_DATA:
    ANALYSIS_PATTERN += "|" + re.escape(LEAVE_ONE_OUT_PREFIX) + "(?:" + "|".join(re.escape(s) for s in study_ids()) + ")"
    dates = sorted({str(date) for date in publication_dates().values() if date is not None})
    if dates:
        ANALYSIS_PATTERN += "|" + re.escape(CUMULATIVE_PREFIX) + "(?:" + "|".join(map(re.escape, dates)) + ")"


wildcard_constraints:
    analysis=ANALYSIS_PATTERN,


# the main fit keeps each study's log-likelihood when some analysis may be reweighted from it
KEEP_STUDY_LOG_LIKELIHOOD = LOO_AFTER_DATA or any(
    reweighting_of(MODEL_SETTINGS, settings) is not None for name, settings in FIXED_ANALYSES.items() if name != MAIN)


def main_fit_for(wildcards):
    """The main fit's draws and diagnostics, for an analysis that may be reweighted from them."""
    if wildcards.analysis == MAIN or reweighting_of(MODEL_SETTINGS, settings_of(wildcards.analysis)) is None:
        return {}
    return {"main_posterior": "results/model/main/posterior.nc",
            "main_diagnostics": "results/model/main/diagnostics.tsv"}


# Threads of a fit: half the cores, at least one, at most one per chain. Much of a fit job is
# single-threaded (imports, loading its compiled code, summaries), so two fits side by side use
# the cores better than one with all of them: 2 cores, bundled data, warm cache, every fit job
# forced: 229 s with one thread each against ~14 s per fit one after the other (docs/benchmarks.md).
# The main fit too: it runs first (its priority), and the fits that compile a structure of their
# own (another likelihood, a covariate) run beside it. With every core it was 5 s faster warm
# but, cold, left all but one core idle for the ~3 min of its single-threaded compile while they
# could compile their own structures (fresh clone, 2 cores: 575 s against 526 s; docs/benchmarks.md).
FIT_THREADS = min(MODEL_SETTINGS.chains, max(1, workflow.cores // 2))


rule fit_model:
    input:
        unpack(main_fit_for),
        changes="results/model/changes.tsv",
        comparisons="results/model/comparisons.tsv",
        **MARKERS_INPUT,
    output:
        posterior="results/model/{analysis}/posterior.nc",
        effects=report(
            "results/model/{analysis}/effects.tsv",
            caption="../report/effects.rst",
            category="3. Model",
            subcategory="{analysis}",
        ),
        diagnostics="results/model/{analysis}/diagnostics.tsv",
        tau="results/model/{analysis}/tau.tsv",
        superiority="results/model/{analysis}/superiority.tsv",
        observations="results/model/{analysis}/observations.tsv",
        audit="results/model/{analysis}/audit.tsv",
    params:
        settings=lambda wildcards: settings_of(wildcards.analysis).to_dict(),
        config_hash=lambda wildcards: settings_of(wildcards.analysis).config_hash(),
        main_settings=MODEL_SETTINGS.to_dict(),
        study_log_likelihood=KEEP_STUDY_LOG_LIKELIHOOD,
    threads: FIT_THREADS
    # the main fit first, then the other structures, then the fits on its structure (crsmeta.model.analyses.fit_priority)
    priority: lambda wildcards: fit_priority(wildcards.analysis, MODEL_SETTINGS, settings_of(wildcards.analysis))
    # a second attempt (the profile's retries) asks for twice the time and memory: a fit that hit
    # its time limit or ran out of memory is then not killed the same way again
    resources:
        runtime=lambda wildcards, attempt: 60 * attempt,
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
    log:
        "logs/fit_model/{analysis}.log",
    benchmark:
        "benchmarks/fit_model/{analysis}.tsv"
    script:
        "../scripts/fit_model.py"


if LOO_AFTER_DATA:

    checkpoint contributing_studies:
        input:
            changes="results/model/changes.tsv",
            comparisons="results/model/comparisons.tsv",
            **MARKERS_INPUT,
        output:
            table="results/model/contributing_studies.tsv",
        params:
            settings=MODEL_SETTINGS.to_dict(),
        localrule: True
        log:
            "logs/contributing_studies/contributing_studies.log",
        script:
            "../scripts/contributing_studies.py"


rule collect_diagnostics:
    input:
        diagnostics=lambda wildcards: expand("results/model/{analysis}/diagnostics.tsv", analysis=model_analyses()),
        effects=lambda wildcards: expand("results/model/{analysis}/effects.tsv", analysis=model_analyses()),
    output:
        diagnostics=report("results/model/diagnostics.tsv", caption="../report/diagnostics.rst", category="3. Model"),
        effects=report("results/model/effects_all.tsv", caption="../report/effects_all.rst", category="3. Model"),
    localrule: True
    log:
        "logs/collect_diagnostics/collect_diagnostics.log",
    script:
        "../scripts/collect_diagnostics.py"


if CUMULATIVE:

    rule cumulative_estimates:
        input:
            effects="results/model/effects_all.tsv",
            contributing="results/model/contributing_studies.tsv",
        output:
            table=report("results/model/cumulative.tsv", caption="../report/cumulative.rst", category="3. Model"),
        params:
            published={study: None if date is None else str(date) for study, date in publication_dates().items()},
        localrule: True
        log:
            "logs/cumulative_estimates/cumulative_estimates.log",
        script:
            "../scripts/cumulative_estimates.py"


rule cross_check_frequentist:
    input:
        study_estimates="results/model/study_estimates.tsv",
    output:
        table=report("results/model/frequentist.tsv", caption="../report/frequentist.rst", category="3. Model"),
    resources:
        runtime=15,
        mem_mb=1000,
    log:
        "logs/cross_check_frequentist/cross_check_frequentist.log",
    script:
        "../scripts/cross_check_frequentist.py"
