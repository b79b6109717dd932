"""Combine every study's harmonised tables and audits into one of each (rule combine_studies)."""

from crsmeta.audit import check_audit_complete
from crsmeta.harmonise import HarmonisedStudy, combine
from crsmeta.io import read_tsv, write_tsv
from crsmeta.logs import configure_logging

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

parts = [
    HarmonisedStudy(read_tsv(cases), read_tsv(summaries), read_tsv(rows), read_tsv(conversions))
    for cases, summaries, rows, conversions in zip(
        snakemake.input.cases, snakemake.input.summaries, snakemake.input.rows, snakemake.input.conversions,
        strict=True,
    )
]
combined = combine(parts)
check_audit_complete(combined.rows, [read_tsv(path) for path in snakemake.input.extracted])
log.info("%d studies: %d case rows, %d summary rows", len(parts), len(combined.cases), len(combined.summaries))
write_tsv(combined.cases, snakemake.output.cases)
write_tsv(combined.summaries, snakemake.output.summaries)
write_tsv(combined.rows, snakemake.output.rows)
write_tsv(combined.conversions, snakemake.output.conversions)
