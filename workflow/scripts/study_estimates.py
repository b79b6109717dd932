"""Each study's own estimate from the changes stage's tables (rule study_estimates)."""

from crsmeta import tables
from crsmeta.logs import configure_logging
from crsmeta.study_estimates import per_study_estimates

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

changes = tables.read(tables.CHANGES, snakemake.input.changes)
comparisons = tables.read(tables.OBSERVATIONS, snakemake.input.comparisons)
estimates = per_study_estimates(changes, comparisons)
log.info(
    "%d study estimates (%d with censored patients by maximum likelihood; %d ratios of means left unshifted)",
    len(estimates), (estimates["method"] == "cases_censored_ml").sum(), estimates["shift"].isna().sum(),
)
tables.write(tables.PER_STUDY, estimates, snakemake.output.table)
