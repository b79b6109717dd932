# The living review's history (crsmeta.history): a run that changed the data or the settings adds a
# snapshot under results/history/snapshots/, and the latest is compared with the one before.
# The snapshots are not declared outputs: Snakemake never deletes them, and each is written whole
# or not at all. The job reruns when the estimates, the audit, the fits or a study's files change;
# a rerun whose data and config hashes equal the latest snapshot's adds none. Needs common.smk.

# What the analysis' settings hash covers (the report prints the same settings).
ANALYSIS_SETTINGS = {
    key: config[key] for key in ("seed", "changes", "model", "sampler", "diagnostics", "sensitivity") if key in config
}


def study_files_by_id():
    """Each study's files, its study file first, then its source tables: what its hash covers."""
    return {
        study_id: [str(STUDIES[study_id].file)]
        + [str(spec.file) for spec in (STUDIES[study_id].cases, STUDIES[study_id].summaries) if spec is not None]
        for study_id in study_ids()
    }


rule snapshot_history:
    input:
        effects="results/model/main/effects.tsv",
        rows="results/audit/rows.tsv",
        diagnostics="results/model/diagnostics.tsv",
        studies=[path for paths in study_files_by_id().values() for path in paths],
    output:
        changes=report("results/history/changes.tsv", caption="../report/history_changes.rst", category="4. Report"),
        comparison="results/history/comparison.json",
        inclusion="results/history/inclusion.tsv",
    params:
        snapshots="results/history/snapshots",
        study_files=study_files_by_id(),
        settings=ANALYSIS_SETTINGS,
    localrule: True
    log:
        "logs/snapshot_history/snapshot_history.log",
    script:
        "../scripts/snapshot_history.py"
