"""Convergence diagnostics per parameter and per chain, and the gate that fails a bad fit."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd

from crsmeta.model.settings import ModelSettings

COLUMNS = ["analysis", "kind", "parameter", "chain", "r_hat", "ess_bulk", "ess_tail",
           "divergences", "bfmi"]


class ConvergenceError(RuntimeError):
    """The sampler's output fails the diagnostics gate; the message says what to change."""


def diagnostics_table(idata: az.InferenceData, analysis: str) -> pd.DataFrame:
    """One row per scalar parameter (R-hat, bulk/tail ESS) and one per chain (divergences, E-BFMI).

    ``kind`` is ``parameter`` or ``chain``; every variable of the posterior is included
    (free parameters and the derived θ, u, ...).
    """
    names = [name for name in idata.posterior.data_vars if not name.endswith("__")]  # no transformed copies
    summary = az.summary(idata, var_names=names, kind="diagnostics", round_to="none")
    parameters = pd.DataFrame({
        "analysis": analysis, "kind": "parameter", "parameter": summary.index,
        "chain": pd.NA, "r_hat": summary["r_hat"].to_numpy(),
        "ess_bulk": summary["ess_bulk"].to_numpy(), "ess_tail": summary["ess_tail"].to_numpy(),
        "divergences": pd.NA, "bfmi": np.nan,
    })
    diverging = idata.sample_stats["diverging"].sum(dim="draw").to_numpy()
    chains = pd.DataFrame({
        "analysis": analysis, "kind": "chain", "parameter": "sampler",
        "chain": np.arange(len(diverging)), "r_hat": np.nan, "ess_bulk": np.nan, "ess_tail": np.nan,
        "divergences": diverging.astype(int), "bfmi": az.bfmi(idata),
    })
    return pd.concat([parameters, chains], ignore_index=True)[COLUMNS]


def check_gate(diagnostics: pd.DataFrame, settings: ModelSettings) -> None:
    """Raise :class:`ConvergenceError` naming every failed threshold, unless the gate is off."""
    if not settings.gate:
        return
    problems = _failures(diagnostics, settings)
    if problems:
        analyses = ", ".join(sorted(set(diagnostics["analysis"].astype(str))))
        raise ConvergenceError(
            f"the fit of analysis '{analyses}' fails the diagnostics gate:\n  - "
            + "\n  - ".join(problems)
            + "\nWhat to change (config): more sampler.tune and sampler.draws for low ESS or high R-hat; "
            "a higher sampler.target_accept (e.g. 0.99) for divergences; tighter priors "
            "(model.priors.tau_sd, model.priors.interaction_sd) when the data are too thin to "
            "inform a variance; or switch the gate off knowingly with diagnostics.gate: false "
            "(the report then shows the failures)."
        )


def _failures(diagnostics: pd.DataFrame, settings: ModelSettings) -> list[str]:
    parameters = diagnostics[diagnostics["kind"] == "parameter"]
    chains = diagnostics[diagnostics["kind"] == "chain"]
    problems = []
    high = parameters[parameters["r_hat"].astype(float) > settings.rhat_max]
    if not high.empty:
        problems.append(f"R-hat > {settings.rhat_max} for {_names(high, 'r_hat')}")
    for column in ("ess_bulk", "ess_tail"):
        low = parameters[parameters[column].astype(float) < settings.ess_min]
        if not low.empty:
            problems.append(f"{column} < {settings.ess_min:g} for {_names(low, column)}")
    divergences = int(chains["divergences"].astype(float).sum())
    if divergences > settings.max_divergences:
        problems.append(f"{divergences} divergent transitions (allowed: {settings.max_divergences})")
    low_bfmi = chains[chains["bfmi"].astype(float) < settings.bfmi_min]
    if not low_bfmi.empty:
        problems.append(f"E-BFMI < {settings.bfmi_min} in chain(s) {', '.join(map(str, low_bfmi['chain']))}")
    return problems


def _names(rows: pd.DataFrame, column: str, limit: int = 8) -> str:
    shown = [f"{name} ({value:.3g})" for name, value in zip(rows["parameter"], rows[column].astype(float))]
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more
