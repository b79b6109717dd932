"""Extract one study's source tables into the canonical long form (rule extract_study)."""

from crsmeta.extract import extract_cases, extract_summaries
from crsmeta import tables
from crsmeta.logs import configure_logging
from crsmeta.studies import load_study

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

study = load_study(snakemake.params.study, snakemake.params.project_dir)
cases = extract_cases(study)
summaries = extract_summaries(study)
log.info("%s: %d case measurements, %d summary rows extracted", study.id, len(cases), len(summaries))
tables.write(tables.EXTRACTED_CASES, cases, snakemake.output.cases)
tables.write(tables.EXTRACTED_SUMMARIES, summaries, snakemake.output.summaries)
