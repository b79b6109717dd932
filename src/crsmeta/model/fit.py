"""One analysis end to end: it extends the draws of a fit short only of ESS
(``crsmeta.model.extend``) and records the gate's verdict in its tables; :func:`enforce_gate`
then stops the run when the main analysis fails."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging

import arviz as az
import pandas as pd

from crsmeta.model.analyses import MAIN
from crsmeta.model.build import build_model
from crsmeta.model.data import ModelData
from crsmeta.model.diagnostics import FAILED, ConvergenceError, GateVerdict, diagnostics_table, judge, with_verdict
from crsmeta.model.effects import effects_table
from crsmeta.model.extend import sample_extending
from crsmeta.model.sample import sample_model
from crsmeta.model.settings import ModelSettings

log = logging.getLogger(__name__)

VERSIONED_PACKAGES = ("crsmeta", "pymc", "pytensor", "arviz", "nutpie", "numpy", "pandas")


@dataclasses.dataclass
class FitResult:
    """One analysis' inference data, effects table, diagnostics table, model data and gate verdict."""

    analysis: str
    idata: az.InferenceData
    effects: pd.DataFrame
    diagnostics: pd.DataFrame
    data: ModelData
    verdict: GateVerdict


def fit_analysis(
    changes: pd.DataFrame, summaries: pd.DataFrame, settings: ModelSettings, analysis: str = MAIN
) -> FitResult:
    """Build, sample (with more draws while only ESS falls short), diagnose, judge and summarise.

    The verdict is in the tables: ``gate`` on every effects row, and the diagnostics' row of kind
    ``fit`` (draws per chain, gate, failures, what to change).
    """
    data = ModelData.from_tables(changes, summaries, settings)
    model = build_model(data, settings)
    idata, diagnostics = sample_extending(lambda extended: sample_model(model, extended), settings, analysis)
    idata.posterior.attrs["input_synthetic"] = int(data.is_synthetic())
    verdict = judge(diagnostics, settings, draws=idata.posterior.sizes["draw"])
    effects = effects_table(idata, data).assign(synthetic=data.is_synthetic(), gate=verdict.status)
    return FitResult(analysis=analysis, idata=idata, effects=effects,
                     diagnostics=with_verdict(diagnostics, verdict), data=data, verdict=verdict)


def enforce_gate(result: FitResult) -> None:
    """The main analysis gates the report: raise :class:`ConvergenceError` when its fit failed.

    A sensitivity analysis that failed only logs a warning: its tables say ``gate = failed`` and
    the report shows it as failed, without its estimates in any comparison.
    """
    if result.verdict.status != FAILED:
        return
    message = result.verdict.message(result.analysis)
    if result.analysis == MAIN:
        raise ConvergenceError(message)
    log.warning("%s", message)


def stamp(idata: az.InferenceData, *, config_hash: str, data_hash: str, seed: int, analysis: str,
          synthetic: bool | None = None) -> None:
    """Attributes for provenance on every group: hashes, seed, analysis, package versions.

    ``synthetic`` defaults to what :func:`fit_analysis` recorded about its input rows.
    """
    if synthetic is None:
        synthetic = bool(idata.posterior.attrs.get("input_synthetic", 0))
    attrs = {"config_hash": config_hash, "data_hash": data_hash, "seed": int(seed), "analysis": analysis,
             "synthetic": "SYNTHETIC" if synthetic else "no"}
    attrs |= {f"version_{name}": _version(name) for name in VERSIONED_PACKAGES}
    for group in idata.groups():
        idata[group].attrs.update(attrs)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
