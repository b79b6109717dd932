"""SYNTHETIC: one replicate of the robustness study (rule robustness_replicate): the SBC replicate's
dataset of one route's design simulated again under one misspecification scenario, its fit, and
the posterior median and SD, rank and coverage of every θ, τ and σ, with the marker vocabulary the
rule declares."""

from crsmeta import tables, vocabulary
from crsmeta.calibration import run_robustness_replicate
from crsmeta.logs import configure_logging
from crsmeta.model.settings import ModelSettings

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

wildcards = snakemake.wildcards
scenario, route, replicate = wildcards.scenario, wildcards.route, int(wildcards.replicate)
settings = ModelSettings.from_dict(snakemake.params.settings).replace(cores=snakemake.threads)
with vocabulary.files_in_use(markers=snakemake.input.markers):
    estimates = run_robustness_replicate(replicate, snakemake.params.seed, settings, route=route, scenario=scenario,
                                         thin_to=snakemake.params.thin_to)
log.info("SYNTHETIC robustness scenario %s route %s replicate %d (master seed %d): %d parameters, 90%% intervals "
         "cover %d, %d divergences", scenario, route, replicate, snakemake.params.seed, len(estimates),
         int(estimates["covered90"].sum()), int(estimates["divergences"].iloc[0]))
tables.write(tables.ROBUSTNESS_ESTIMATES, estimates, snakemake.output.table)
