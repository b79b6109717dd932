"""All analyses' diagnostics and effects in two tables, with an `analysis` column."""

import pandas as pd

from crsmeta import tables
from crsmeta.logs import configure_logging
from crsmeta.model.analyses import collect_analyses

configure_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)


def collected(table: tables.Table, paths: list[str]) -> pd.DataFrame:
    """Every analysis' table stacked, each cell parsed strictly by the collected table's contract."""
    return tables.parse(table, collect_analyses(paths))


def main(smk) -> None:
    tables.write(tables.DIAGNOSTICS, collected(tables.DIAGNOSTICS, smk.input.diagnostics), smk.output.diagnostics)
    tables.write(tables.EFFECTS_ALL, collected(tables.EFFECTS_ALL, smk.input.effects), smk.output.effects)


main(snakemake)  # noqa: F821
