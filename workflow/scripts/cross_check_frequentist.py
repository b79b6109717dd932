"""Two-stage REML and DerSimonian-Laird cross-check, like for like with the Bayesian model
(rule cross_check_frequentist): censored patients by censored-normal maximum likelihood, the σ²/2
shift of ratios of means, Knapp-Hartung intervals beside the Wald ones."""

from crsmeta import tables
from crsmeta.logs import configure_logging
from crsmeta.model.frequentist import per_study_estimates, random_effects

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

observations = tables.read(tables.OBSERVATIONS, snakemake.input.comparisons)
per_study = per_study_estimates(tables.read(tables.CHANGES, snakemake.input.changes), observations)
table = random_effects(per_study)
log.info(
    "%d study estimates (%d pooled; %d with censored patients by maximum likelihood; %d ratios of "
    "means left unshifted) -> %d intervention-marker cells",
    len(per_study), per_study["pooled"].sum(), (per_study["method"] == "cases_censored_ml").sum(),
    per_study["shift"].isna().sum(), len(table),
)
tables.write(tables.PER_STUDY, per_study, snakemake.output.per_study)
tables.write(tables.RANDOM_EFFECTS, table, snakemake.output.table)
