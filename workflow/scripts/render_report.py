"""Render results/report/report.html from the stage outputs (rule render_report), with the marker
vocabulary the rule declares."""

from pathlib import Path

from crsmeta import vocabulary
from crsmeta.logs import configure_logging
from crsmeta.report import ReportInputs, render_report

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

paths = {name: snakemake.input[name] for name in (
    "cases", "summaries", "rows", "conversions", "pairing", "changes", "effects", "posterior", "tau", "superiority",
    "effects_all", "diagnostics", "frequentist", "history_changes", "history_comparison", "history_inclusion",
    "per_study", "summary_pairing",
)}
with vocabulary.files_in_use(markers=snakemake.input.markers):
    inputs = ReportInputs.from_paths(
        **paths,
        recovery=getattr(snakemake.input, "recovery", None),  # SYNTHETIC demo runs only
        recovery_summary=getattr(snakemake.input, "recovery_summary", None),
        cumulative=getattr(snakemake.input, "cumulative", None),  # when the cumulative steps are fitted
        studies=list(snakemake.input.studies),
        settings=dict(snakemake.params.settings),
        model_doc=snakemake.params.model_doc,
        project_dir=snakemake.params.project_dir,
    )
    render_report(inputs, Path(snakemake.output[0]))
log.info("report of %d studies and %d pooled estimates written to %s",
         len(inputs.studies), len(inputs.effects), snakemake.output[0])
