"""Fit one analysis; fail (writing nothing) when the diagnostics gate fails."""

import sys

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821 - first, so every error is logged

import hashlib
import logging
import os
from pathlib import Path

from crsmeta.io import read_tsv, write_tsv
from crsmeta.model import ModelSettings, check_gate, fit_analysis, stamp

logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
log = logging.getLogger("fit_model")


def data_hash(paths: list[str]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def write_netcdf(idata, path: str) -> None:
    temporary = f"{path}.tmp.nc"
    idata.to_netcdf(temporary)
    os.replace(temporary, path)


def main(smk) -> None:
    analysis = smk.wildcards.analysis
    settings = ModelSettings.from_dict(smk.params.settings).replace(cores=smk.threads)
    changes, summaries = read_tsv(smk.input.changes), read_tsv(smk.input.summaries)
    log.info("analysis %s: %d changes, %d summary rows", analysis, len(changes), len(summaries))
    result = fit_analysis(changes, summaries, settings, analysis=analysis)
    log.info("diagnostics:\n%s", result.diagnostics.to_string())
    check_gate(result.diagnostics, settings)
    stamp(result.idata, config_hash=smk.params.config_hash,
          data_hash=data_hash([smk.input.changes, smk.input.summaries]), seed=settings.seed, analysis=analysis)
    write_tsv(result.effects, smk.output.effects)
    write_tsv(result.diagnostics, smk.output.diagnostics)
    write_tsv(result.data.observations, smk.output.observations)
    write_tsv(result.data.audit, smk.output.audit)
    write_netcdf(result.idata, smk.output.posterior)


main(snakemake)  # noqa: F821
