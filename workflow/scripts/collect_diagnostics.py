"""All analyses' diagnostics and effects in two tables, with an `analysis` column."""

import pandas as pd

from crsmeta.io import read_tsv, write_tsv
from crsmeta.logs import configure_logging

configure_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)


def collect(paths: list[str], analyses: list[str]) -> pd.DataFrame:
    frames = [read_tsv(path).assign(analysis=name) for path, name in zip(paths, analyses, strict=True)]
    frame = pd.concat(frames, ignore_index=True)
    return frame[["analysis", *[c for c in frame.columns if c != "analysis"]]]


def main(smk) -> None:
    analyses = list(smk.params.analyses)
    write_tsv(collect(list(smk.input.diagnostics), analyses), smk.output.diagnostics)
    write_tsv(collect(list(smk.input.effects), analyses), smk.output.effects)


main(snakemake)  # noqa: F821
