"""Two-stage REML and DerSimonian-Laird cross-check, like for like with the Bayesian model
(rule cross_check_frequentist): the changes stage's per-study estimates pooled, with
Knapp-Hartung intervals beside the Wald ones."""

from crsmeta import tables
from crsmeta.logs import configure_logging
from crsmeta.model.frequentist import random_effects

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

per_study = tables.read(tables.PER_STUDY, snakemake.input.study_estimates)
table = random_effects(per_study)
log.info("%d study estimates (%d pooled) -> %d intervention-marker cells", len(per_study), per_study["pooled"].sum(),
         len(table))
tables.write(tables.RANDOM_EFFECTS, table, snakemake.output.table)
