"""Per-patient changes and the pairing audit from the harmonised cases (rule derive_changes), on
the scales of the marker vocabulary the rule declares."""

from crsmeta import tables, vocabulary
from crsmeta.changes import derive_changes
from crsmeta.logs import configure_logging

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

cases = tables.read(tables.HARMONISED_CASES, snakemake.input.cases)
with vocabulary.files_in_use(markers=snakemake.input.markers):
    changes, pairing = derive_changes(
        cases,
        selection=snakemake.params.selection,
        window_hours=tuple(snakemake.params.window_hours),
        target_hours=snakemake.params.target_hours,
    )
log.info(
    "%d case rows: %d changes (%d censored), %d rows not paired",
    len(cases), len(changes), (changes["censoring"] != "none").sum(), len(pairing),
)
tables.write(tables.CHANGES, changes, snakemake.output.changes)
tables.write(tables.PAIRING, pairing, snakemake.output.pairing)
