"""Per-patient changes and the pairing audit from the harmonised cases (rule derive_changes)."""

from crsmeta.changes import derive_changes
from crsmeta.io import read_tsv, write_tsv
from crsmeta.logs import configure_logging

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

cases = read_tsv(snakemake.input.cases)
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
write_tsv(changes, snakemake.output.changes)
write_tsv(pairing, snakemake.output.pairing)
