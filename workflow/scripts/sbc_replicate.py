"""SYNTHETIC: one replicate of the simulation-based calibration (rule sbc_replicate): a dataset of
one route's design simulated from the model's prior, its fit, and the ranks and coverage of every
θ, τ and σ, with the marker vocabulary the rule declares."""

from crsmeta import tables, vocabulary
from crsmeta.calibration import run_replicate
from crsmeta.logs import configure_logging
from crsmeta.model.settings import ModelSettings

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

route, replicate = snakemake.wildcards.route, int(snakemake.wildcards.replicate)
settings = ModelSettings.from_dict(snakemake.params.settings).replace(cores=snakemake.threads)
with vocabulary.files_in_use(markers=snakemake.input.markers):
    ranks = run_replicate(replicate, snakemake.params.seed, settings, thin_to=snakemake.params.thin_to, route=route)
log.info("SYNTHETIC SBC route %s replicate %d (master seed %d): %d parameters, 90%% intervals cover %d, "
         "%d divergences", route, replicate, snakemake.params.seed, len(ranks), int(ranks["covered90"].sum()),
         int(ranks["divergences"].iloc[0]))
tables.write(tables.SBC_RANKS, ranks, snakemake.output.table)
