"""Summary comparisons and their audit from the harmonised summaries (rule compare_summaries), on
the scales of the marker vocabulary the rule declares."""

from crsmeta import tables, vocabulary
from crsmeta.changes import post_rule
from crsmeta.comparisons import summary_comparisons
from crsmeta.logs import configure_logging

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

summaries = tables.read(tables.HARMONISED_SUMMARIES, snakemake.input.summaries)
rule = post_rule(snakemake.params.selection, tuple(snakemake.params.window_hours), snakemake.params.target_hours)
with vocabulary.files_in_use(markers=snakemake.input.markers):
    comparisons, audit = summary_comparisons(summaries, rule, snakemake.params.cohort_total_min_fraction)
log.info("%d summary rows: %d comparisons, %d rows not compared", len(summaries), len(comparisons), len(audit))
tables.write(tables.OBSERVATIONS, comparisons, snakemake.output.comparisons)
tables.write(tables.SUMMARY_AUDIT, audit, snakemake.output.audit)
