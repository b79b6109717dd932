"""Combine every study's harmonised tables and audits into one of each (rule combine_studies)."""

from crsmeta import tables
from crsmeta.audit import check_audit_complete
from crsmeta.harmonise import HarmonisedStudy, combine
from crsmeta.logs import configure_logging

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])
inputs, outputs = snakemake.input, snakemake.output

parts = [
    HarmonisedStudy(
        tables.read(tables.HARMONISED_CASES, cases),
        tables.read(tables.HARMONISED_SUMMARIES, summaries),
        tables.read(tables.AUDIT_ROWS, rows),
        tables.read(tables.CONVERSIONS, conversions),
    )
    for cases, summaries, rows, conversions in zip(
        inputs.cases, inputs.summaries, inputs.rows, inputs.conversions, strict=True
    )
]
combined = combine(parts)
extracted = [tables.read(tables.EXTRACTED_CASES, path) for path in inputs.extracted_cases] + [
    tables.read(tables.EXTRACTED_SUMMARIES, path) for path in inputs.extracted_summaries
]
check_audit_complete(combined.rows, extracted)
log.info("%d studies: %d case rows, %d summary rows", len(parts), len(combined.cases), len(combined.summaries))
tables.write(tables.HARMONISED_CASES, combined.cases, outputs.cases)
tables.write(tables.HARMONISED_SUMMARIES, combined.summaries, outputs.summaries)
tables.write(tables.AUDIT_ROWS, combined.rows, outputs.rows)
tables.write(tables.CONVERSIONS, combined.conversions, outputs.conversions)
