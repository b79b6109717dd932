"""Harmonise one study's extracted tables (rule harmonise_study) with the vocabularies and grade
mapping the rule declares as inputs."""

from crsmeta import tables
from crsmeta.harmonise import harmonise_study
from crsmeta.logs import configure_logging
from crsmeta.studies import load_study

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

study = load_study(snakemake.params.study, snakemake.params.project_dir)
result = harmonise_study(
    study,
    tables.read(tables.EXTRACTED_CASES, snakemake.input.cases),
    tables.read(tables.EXTRACTED_SUMMARIES, snakemake.input.summaries),
    interventions=snakemake.input.interventions,
    markers=snakemake.input.markers,
    grade_mapping=snakemake.input.grade_mapping,
)
excluded = (result.rows["status"] == "excluded").sum()
log.info("%s: %d rows audited, %d excluded", study.id, len(result.rows), excluded)
tables.write(tables.HARMONISED_CASES, result.cases, snakemake.output.cases)
tables.write(tables.HARMONISED_SUMMARIES, result.summaries, snakemake.output.summaries)
tables.write(tables.AUDIT_ROWS, result.rows, snakemake.output.rows)
tables.write(tables.CONVERSIONS, result.conversions, snakemake.output.conversions)
