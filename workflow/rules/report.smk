# The report: one self-contained HTML file, and forest plots declared for `snakemake --report`.


REPORT_INPUTS = {
    "cases": "results/harmonised/cases.tsv",
    "summaries": "results/harmonised/summaries.tsv",
    "rows": "results/audit/rows.tsv",
    "conversions": "results/audit/conversions.tsv",
    "pairing": "results/audit/pairing.tsv",
    "changes": "results/model/changes.tsv",
    "effects": "results/model/main/effects.tsv",
    # the rank, trace and predictive-check plots and the fit's stamps; its summaries are tables
    "posterior": "results/model/main/posterior.nc",
    "tau": "results/model/main/tau.tsv",
    "superiority": "results/model/main/superiority.tsv",
    "effects_all": "results/model/effects_all.tsv",
    "diagnostics": "results/model/diagnostics.tsv",
    "frequentist": "results/model/frequentist.tsv",
    "per_study": "results/model/study_estimates.tsv",
    "summary_pairing": "results/audit/summary_pairing.tsv",
    # history.smk: what changed since the snapshot before, and the inclusion flow per snapshot
    "history_changes": "results/history/changes.tsv",
    "history_comparison": "results/history/comparison.json",
    "history_inclusion": "results/history/inclusion.tsv",
}
if "synthetic" in config:
    REPORT_INPUTS["recovery"] = "results/model/recovery.tsv"
    REPORT_INPUTS["recovery_summary"] = "results/model/recovery_summary.tsv"
if CUMULATIVE:
    REPORT_INPUTS["cumulative"] = "results/model/cumulative.tsv"


rule render_report:
    input:
        **REPORT_INPUTS,
        **MARKERS_INPUT,
        studies=study_files(),
    output:
        report("results/report/report.html", caption="../report/report_html.rst", category="4. Report"),
    params:
        settings=ANALYSIS_SETTINGS,
        model_doc=project_path("docs/model.md"),
        project_dir=str(PROJECT_DIR),
    resources:
        runtime=15,
        mem_mb=1000,
    log:
        "logs/render_report/render_report.log",
    script:
        "../scripts/render_report.py"


rule plot_forest:
    input:
        per_study="results/model/study_estimates.tsv",
        effects="results/model/main/effects.tsv",
        **MARKERS_INPUT,
    output:
        report(
            directory("results/report/forest"),
            patterns=["{marker}.svg"],
            caption="../report/forest.rst",
            category="4. Report",
            subcategory="Forest plots",
            labels={"figure": "forest plot", "marker": "{marker}"},
        ),
    resources:
        runtime=10,
        mem_mb=1000,
    log:
        "logs/plot_forest/plot_forest.log",
    script:
        "../scripts/plot_forest.py"
