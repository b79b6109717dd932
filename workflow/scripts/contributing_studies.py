"""List the studies whose rows reach the main model (checkpoint: leave-one-out fits one per study)."""

from crsmeta import tables, vocabulary
from crsmeta.logs import configure_logging
from crsmeta.model import ModelSettings
from crsmeta.model.data import contributing_studies

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

settings = ModelSettings.from_dict(snakemake.params.settings)
changes = tables.read(tables.CHANGES, snakemake.input.changes)
comparisons = tables.read(tables.OBSERVATIONS, snakemake.input.comparisons)
with vocabulary.files_in_use(markers=snakemake.input.markers):  # the rule's declared vocabulary
    table = contributing_studies(changes, comparisons, settings)
log.info("%d studies reach the model: %s", len(table), ", ".join(table["study_id"]))
tables.write(tables.CONTRIBUTING_STUDIES, table, snakemake.output.table)
