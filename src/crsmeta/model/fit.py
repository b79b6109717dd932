"""One analysis end to end: it extends the draws of a fit short only of ESS
(``crsmeta.model.extend``) and records the gate's verdict in its tables; :func:`enforce_gate`
then stops the run when the main analysis fails."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging

import arviz as az
import numpy as np
import pandas as pd

from crsmeta.model.analyses import MAIN, reweighting_of
from crsmeta.model.build import build_model
from crsmeta.model.data import ModelData
from crsmeta.model.diagnostics import COLUMNS as DIAGNOSTIC_COLUMNS
from crsmeta.model.diagnostics import FAILED, OFF, PASSED, ConvergenceError, GateVerdict, judge, with_verdict
from crsmeta.model.effects import effects_table
from crsmeta.model.extend import sample_extending
from crsmeta.model.reweight import REWEIGHTED, SAMPLED, MainFit, ReweightedFit, add_study_log_likelihood, reweight_main
from crsmeta.model.sample import add_predictive, sample_model
from crsmeta.model.settings import ModelSettings

log = logging.getLogger(__name__)

VERSIONED_PACKAGES = ("crsmeta", "pymc", "pytensor", "arviz", "nutpie", "numpy", "pandas")


@dataclasses.dataclass
class FitResult:
    """One analysis' inference data, effects table, diagnostics table, model data and gate verdict.

    ``route`` is how its posterior was reached: ``sampled`` (NUTS) or ``reweighted`` (the main
    draws, crsmeta.model.reweight); ``pareto_k`` and ``route_note`` say why.
    """

    analysis: str
    idata: az.InferenceData
    effects: pd.DataFrame
    diagnostics: pd.DataFrame
    data: ModelData
    verdict: GateVerdict
    route: str = SAMPLED
    pareto_k: float = float("nan")
    route_note: str = ""


def fit_analysis(
    changes: pd.DataFrame, comparisons: pd.DataFrame, settings: ModelSettings, analysis: str = MAIN,
    main: MainFit | None = None, study_log_likelihood: bool = True,
) -> FitResult:
    """Build, sample (with more draws while only ESS falls short), diagnose, judge and summarise.

    With ``main`` (an analysis that only leaves a study out or changes the priors of τ and ρ),
    the main draws are reweighted instead where the weights allow (crsmeta.model.reweight). The
    main analysis' draws carry each study's log-likelihood for that (unless
    ``study_log_likelihood`` is false: nothing will be reweighted). The verdict is in the
    tables: ``gate`` and ``route`` on every effects row, and the diagnostics' row of kind ``fit``
    (draws per chain, gate, failures, what to change, route).
    """
    data = ModelData.from_tables(changes, comparisons, settings)
    reweighted = None
    if main is not None:
        reweighting = reweighting_of(main.settings, settings)
        if reweighting is not None:
            reweighted = reweight_main(main, data, settings, reweighting)
            if not reweighted.refit_reason:
                return _reweighted_result(analysis, reweighted, main, data, settings)
    model = build_model(data, settings)
    idata, diagnostics = sample_extending(lambda extended: sample_model(model, extended), settings, analysis)
    if analysis == MAIN:  # the report reads the main fit's predictive draws only
        add_predictive(idata, model, settings)
        if study_log_likelihood:
            add_study_log_likelihood(idata, model)
    idata.posterior.attrs["input_synthetic"] = int(data.is_synthetic())
    verdict = judge(diagnostics, settings, draws=idata.posterior.sizes["draw"])
    result = FitResult(analysis=analysis, idata=idata, effects=effects_table(idata, data, settings),
                       diagnostics=diagnostics, data=data, verdict=verdict)
    if reweighted is not None:
        result.pareto_k = reweighted.pareto_k
        result.route_note = f"sampled, not reweighted: {reweighted.refit_reason}"
    return _with_verdict_and_route(result)


def _reweighted_result(analysis: str, reweighted: ReweightedFit, main: MainFit, data: ModelData,
                       settings: ModelSettings) -> FitResult:
    """An analysis from the main draws: their diagnostics (they are the draws used) and a verdict
    that passes, as the weights were judged usable (k̂, effective draws) by reweight_main."""
    idata = reweighted.idata
    idata.posterior.attrs.update(input_synthetic=int(data.is_synthetic()), route=REWEIGHTED,
                                 pareto_k=reweighted.pareto_k,
                                 reweighted_from_config_hash=str(main.idata.posterior.attrs.get("config_hash", "")))
    main_rows = main.diagnostics[main.diagnostics["kind"] != "fit"][DIAGNOSTIC_COLUMNS]
    fit_row = main.diagnostics[main.diagnostics["kind"] == "fit"]
    verdict = GateVerdict(PASSED if settings.gate else OFF, int(float(fit_row["draws"].iloc[0])))
    k_text = (f"Pareto k {reweighted.pareto_k:.2f}" if np.isfinite(reweighted.pareto_k)
              else "constant weights (the main posterior itself)")
    note = f"reweighted main draws: {k_text}, {reweighted.effective_draws:.0f} effective draws"
    result = FitResult(analysis=analysis, idata=idata, effects=effects_table(idata, data, settings),
                       diagnostics=main_rows.assign(analysis=analysis), data=data, verdict=verdict,
                       route=REWEIGHTED, pareto_k=reweighted.pareto_k, route_note=note)
    return _with_verdict_and_route(result)


def _with_verdict_and_route(result: FitResult) -> FitResult:
    """The tables with the gate verdict and the route: on every effects row, and on the
    diagnostics' row of kind ``fit``."""
    route = {"route": result.route, "pareto_k": result.pareto_k}
    result.effects = result.effects.assign(synthetic=result.data.is_synthetic(), gate=result.verdict.status, **route)
    diagnostics = with_verdict(result.diagnostics, result.verdict)
    is_fit = diagnostics["kind"] == "fit"
    diagnostics = diagnostics.astype({"route": object, "route_note": object})
    diagnostics.loc[is_fit, ["route", "pareto_k", "route_note"]] = [result.route, result.pareto_k, result.route_note]
    result.diagnostics = diagnostics
    return result


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
