"""SYNTHETIC: the simulation-based calibration's replicates pooled (rule sbc_summary): every rank,
the uniformity and coverage checks per parameter, and the rank plot."""

from crsmeta import calibration, tables
from crsmeta.logs import configure_logging

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

ranks = calibration.pool(tables.read(tables.SBC_RANKS, path) for path in snakemake.input.replicates)
summary = calibration.summarise(ranks)
tables.write(tables.SBC_RANKS, ranks, snakemake.output.ranks)
tables.write(tables.SBC_SUMMARY, summary, snakemake.output.summary)
calibration.plot_ranks(ranks, snakemake.output.plot)
log.info("%s", calibration.markdown(summary, ranks, snakemake.params.header))
