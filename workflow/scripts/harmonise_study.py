"""Harmonise one study's extracted tables (rule harmonise_study)."""

from crsmeta.harmonise import harmonise_study
from crsmeta.io import read_tsv, write_tsv
from crsmeta.logs import configure_logging
from crsmeta.studies import load_study

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

study = load_study(snakemake.params.study, snakemake.params.project_dir)
result = harmonise_study(study, read_tsv(snakemake.input.cases), read_tsv(snakemake.input.summaries))
excluded = (result.rows["status"] == "excluded").sum()
log.info("%s: %d rows audited, %d excluded", study.id, len(result.rows), excluded)
write_tsv(result.cases, snakemake.output.cases)
write_tsv(result.summaries, snakemake.output.summaries)
write_tsv(result.rows, snakemake.output.rows)
write_tsv(result.conversions, snakemake.output.conversions)
