# Changes stage: each patient's change (case rows) and each arm's summary comparison (summary
# rows), both chosen by the config's `changes` rule, with an audit of every row left out, and each
# study's own estimate from them. The model, the frequentist cross-check, the forest plots and the
# report read these tables; none pairs rows or estimates a study's change again.

rule derive_changes:
    input:
        cases="results/harmonised/cases.tsv",
        **MARKERS_INPUT,
    output:
        changes=report("results/model/changes.tsv", caption="../report/changes.rst", category="2. Changes"),
        pairing=report("results/audit/pairing.tsv", caption="../report/pairing.rst", category="2. Changes"),
    params:
        selection=config["changes"]["selection"],
        window_hours=config["changes"]["window_hours"],
        target_hours=config["changes"]["target_hours"],
    localrule: True
    log:
        "logs/derive_changes/derive_changes.log",
    script:
        "../scripts/derive_changes.py"


rule compare_summaries:
    input:
        summaries="results/harmonised/summaries.tsv",
        **MARKERS_INPUT,
    output:
        comparisons=report("results/model/comparisons.tsv", caption="../report/comparisons.rst", category="2. Changes"),
        audit=report("results/audit/summary_pairing.tsv", caption="../report/summary_pairing.rst", category="2. Changes"),
    params:
        selection=config["changes"]["selection"],
        window_hours=config["changes"]["window_hours"],
        target_hours=config["changes"]["target_hours"],
        cohort_total_min_fraction=config["changes"]["cohort_total_min_fraction"],
    localrule: True
    log:
        "logs/compare_summaries/compare_summaries.log",
    script:
        "../scripts/compare_summaries.py"


rule study_estimates:
    input:
        changes="results/model/changes.tsv",
        comparisons="results/model/comparisons.tsv",
    output:
        table=report("results/model/study_estimates.tsv", caption="../report/study_estimates.rst", category="2. Changes"),
    resources:
        runtime=10,
        mem_mb=1000,
    log:
        "logs/study_estimates/study_estimates.log",
    script:
        "../scripts/study_estimates.py"
