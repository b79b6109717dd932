"""Each estimate after each publication date, from the cumulative steps' fits (rule cumulative_estimates)."""

from crsmeta import tables
from crsmeta.cumulative import cumulative_table
from crsmeta.logs import configure_logging
from crsmeta.studies import PartialDate

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

published = {study: None if date is None else PartialDate.parse(date)
             for study, date in snakemake.params.published.items()}
contributing = list(tables.read(tables.CONTRIBUTING_STUDIES, snakemake.input.contributing)["study_id"])
table = cumulative_table(tables.read(tables.EFFECTS_ALL, snakemake.input.effects), published, contributing)
log.info("%d steps, %d estimates of two or more studies", table["step"].nunique(),
         len(table.drop_duplicates(["intervention", "marker"])))
tables.write(tables.CUMULATIVE, table, snakemake.output.table)
