"""Two-stage REML and DerSimonian-Laird cross-check (rule cross_check_frequentist)."""

from crsmeta.io import read_tsv, write_tsv
from crsmeta.logs import configure_logging
from crsmeta.model.aggregate import aggregate_observations
from crsmeta.model.frequentist import per_study_estimates, random_effects

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

observations, _ = aggregate_observations(read_tsv(snakemake.input.summaries))
per_study = per_study_estimates(read_tsv(snakemake.input.changes), observations)
table = random_effects(per_study)
log.info(
    "%d study estimates (%d pooled) -> %d intervention-marker cells",
    len(per_study), per_study["pooled"].sum(), len(table),
)
write_tsv(per_study, snakemake.output.per_study)
write_tsv(table, snakemake.output.table)
