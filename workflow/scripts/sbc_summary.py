"""SYNTHETIC: the simulation-based calibration's replicates pooled (rule sbc_summary): every rank,
the uniformity and coverage checks per route and parameter and per route and kind, and one rank
plot per route."""

from crsmeta import calibration, tables
from crsmeta.logs import configure_logging

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

ranks = calibration.pool(tables.read(tables.SBC_RANKS, path) for path in snakemake.input.replicates)
summary = calibration.summarise(ranks)
tables.write(tables.SBC_RANKS, ranks, snakemake.output.ranks)
tables.write(tables.SBC_SUMMARY, summary, snakemake.output.summary)
tables.write(tables.SBC_ROUTE_SUMMARY, calibration.summarise_routes(ranks, summary), snakemake.output.routes)
for route, path in zip(snakemake.params.routes, snakemake.output.plots, strict=True):
    calibration.plot_ranks(ranks[ranks["route"] == route], path)
log.info("%s", calibration.markdown(summary, ranks, snakemake.params.header))
