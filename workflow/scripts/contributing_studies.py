"""List the studies whose rows reach the main model (checkpoint: leave-one-out fits one per study)."""

from crsmeta.io import read_tsv, write_tsv
from crsmeta.logs import configure_logging
from crsmeta.model import ModelSettings
from crsmeta.model.data import contributing_studies

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

settings = ModelSettings.from_dict(snakemake.params.settings)
table = contributing_studies(read_tsv(snakemake.input.changes), read_tsv(snakemake.input.summaries), settings)
log.info("%d studies reach the model: %s", len(table), ", ".join(table["study_id"]))
write_tsv(table, snakemake.output.table)
