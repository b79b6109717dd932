"""All analyses' diagnostics and effects in two tables, with an `analysis` column."""

from crsmeta.io import write_tsv
from crsmeta.logs import configure_logging
from crsmeta.model.analyses import collect_analyses

configure_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)


def main(smk) -> None:
    write_tsv(collect_analyses(smk.input.diagnostics), smk.output.diagnostics)
    write_tsv(collect_analyses(smk.input.effects), smk.output.effects)


main(snakemake)  # noqa: F821
