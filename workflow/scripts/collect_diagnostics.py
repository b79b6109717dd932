"""All analyses' diagnostics and effects in two tables, with an `analysis` column."""

from pathlib import Path

import pandas as pd

from crsmeta.io import read_tsv, write_tsv
from crsmeta.logs import configure_logging

configure_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)


def collect(paths: list[str]) -> pd.DataFrame:
    """Stack the tables of results/model/<analysis>/*.tsv, naming each row's analysis."""
    frames = [read_tsv(path).assign(analysis=Path(path).parent.name) for path in paths]
    frame = pd.concat(frames, ignore_index=True)
    return frame[["analysis", *[c for c in frame.columns if c != "analysis"]]]


def main(smk) -> None:
    write_tsv(collect(list(smk.input.diagnostics)), smk.output.diagnostics)
    write_tsv(collect(list(smk.input.effects)), smk.output.effects)


main(snakemake)  # noqa: F821
