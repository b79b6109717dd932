"""The Bayesian hierarchical model of intervention effects: data → model → fit → tables.

``fit_analysis`` runs one analysis end to end (it does not apply the diagnostics gate: the
``fit_model`` script does, after the diagnostics are computed).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata

import arviz as az
import pandas as pd

from crsmeta.model.build import build_model
from crsmeta.model.data import ModelData
from crsmeta.model.diagnostics import ConvergenceError, check_gate, diagnostics_table
from crsmeta.model.effects import effects_table
from crsmeta.model.sample import sample_model
from crsmeta.model.settings import ModelSettings

__all__ = ["ConvergenceError", "FitResult", "ModelData", "ModelSettings", "build_model",
           "check_gate", "diagnostics_table", "effects_table", "fit_analysis", "sample_model", "stamp"]

VERSIONED_PACKAGES = ("crsmeta", "pymc", "pytensor", "arviz", "nutpie", "numpy", "pandas")


@dataclasses.dataclass
class FitResult:
    """One analysis' inference data, effects table, diagnostics table and model data."""

    idata: az.InferenceData
    effects: pd.DataFrame
    diagnostics: pd.DataFrame
    data: ModelData


def fit_analysis(
    changes: pd.DataFrame, summaries: pd.DataFrame, settings: ModelSettings, analysis: str = "main"
) -> FitResult:
    """Build, sample, diagnose and summarise one analysis."""
    data = ModelData.from_tables(changes, summaries, settings)
    idata = sample_model(build_model(data, settings), settings)
    idata.posterior.attrs["input_synthetic"] = int(data.is_synthetic())
    effects = effects_table(idata, data).assign(synthetic=data.is_synthetic())
    return FitResult(idata=idata, effects=effects, diagnostics=diagnostics_table(idata, analysis), data=data)


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
