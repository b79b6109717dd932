"""Convergence diagnostics per parameter and per chain, and the gate that judges a fit."""

from __future__ import annotations

import dataclasses

import arviz as az
import numpy as np
import pandas as pd

from crsmeta import tables
from crsmeta.model.analyses import MAIN
from crsmeta.model.settings import ModelSettings

COLUMNS = tables.SAMPLER_DIAGNOSTICS.columns
# only on the one row of kind "fit"; route, pareto_k and route_note as in crsmeta.model.fit.FitResult
FIT_COLUMNS = [name for name in tables.DIAGNOSTICS.columns if name not in COLUMNS]
EMPTY_VERDICT_TEXT = {name: "" for name in FIT_COLUMNS if tables.DIAGNOSTICS.cells[name].dtype == "str"}
PASSED, FAILED, OFF = "passed", "failed", "off"
FAILURE_SEPARATOR = "; "
# Up to here a high R-hat is chains that have not yet mixed, which longer chains cure (1.05 was
# the customary limit before rank-normalised R-hat); above it the chains disagree, e.g. in modes.
EXTENDABLE_RHAT = 1.05
SAMPLING_CHECKS = {"r_hat", "ess_bulk", "ess_tail"}
SENSITIVITY_FAILED = (
    "A sensitivity analysis that fails the gate does not stop the run: its tables are written with "
    "gate = failed, and the report shows it as failed and leaves its estimates out of every comparison."
)
MAIN_FAILED = (
    "The main analysis gates the report, so the run stops here (nothing is written for it). "
    + SENSITIVITY_FAILED + " diagnostics.gate: false switches the gate off knowingly (the report "
    "then shows the failures)."
)
PRIOR_HINT = ("tighter priors on the scales the data hardly inform (model.priors.tau_sd, temp_tau_sd, "
              "sigma_sd, interaction_sd)")


class ConvergenceError(RuntimeError):
    """The main analysis fails the diagnostics gate; the message says what to change."""


@dataclasses.dataclass(frozen=True)
class GateVerdict:
    """What the gate decided about one fit: its status, the failed thresholds, what to change."""

    status: str  # PASSED, FAILED, or OFF (diagnostics.gate: false; failures are still listed)
    draws: int  # draws per chain the fit ended with, after any extension
    failures: tuple[str, ...] = ()
    advice: str = ""

    def message(self, analysis: str) -> str:
        """The failures, what to change, and what the run does about it (stop only for main)."""
        return (
            f"the fit of analysis '{analysis}' fails the diagnostics gate ({self.draws} draws per chain):\n  - "
            + "\n  - ".join(self.failures)
            + f"\nWhat to change: {self.advice}\n"
            + (MAIN_FAILED if analysis == MAIN else SENSITIVITY_FAILED)
        )

    def row(self, analysis: str) -> pd.DataFrame:
        """The diagnostics table's one row of kind ``fit``: draws, gate status, failures, advice."""
        return pd.DataFrame([{
            "analysis": analysis, "kind": "fit", "parameter": "fit", "draws": self.draws,
            "gate": self.status, "gate_failures": FAILURE_SEPARATOR.join(self.failures),
            "gate_advice": self.advice,
        }])


def diagnostics_table(idata: az.InferenceData, analysis: str) -> pd.DataFrame:
    """One row per scalar parameter (R-hat, bulk/tail ESS) and one per chain (divergences, E-BFMI).

    ``kind`` is ``parameter`` or ``chain``; every variable of the posterior is included
    (free parameters and the derived θ, u, ...). :func:`with_verdict` adds the ``fit`` row.
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
    return tables.frame(tables.SAMPLER_DIAGNOSTICS, pd.concat([parameters, chains], ignore_index=True))


def with_verdict(diagnostics: pd.DataFrame, verdict: GateVerdict) -> pd.DataFrame:
    """The diagnostics table with the verdict's ``fit`` row appended (tables.DIAGNOSTICS): the
    verdict's text columns are empty on the other rows."""
    analysis = str(diagnostics["analysis"].iloc[0])
    table = pd.concat([diagnostics, verdict.row(analysis)], ignore_index=True).reindex(columns=tables.DIAGNOSTICS.columns)
    # a text column empty on every row came out of the concat as floats: text before filling
    table = table.astype(dict.fromkeys(EMPTY_VERDICT_TEXT, object)).fillna(EMPTY_VERDICT_TEXT)
    return tables.frame(tables.DIAGNOSTICS, table)


def judge(diagnostics: pd.DataFrame, settings: ModelSettings, draws: int) -> GateVerdict:
    """Apply the gate to a fit that ended with ``draws`` draws per chain
    (``diagnostics``: :data:`crsmeta.tables.SAMPLER_DIAGNOSTICS`, typed)."""
    tables.check(tables.SAMPLER_DIAGNOSTICS, diagnostics)
    failures = _failures(diagnostics, settings)
    if not failures:
        return GateVerdict(PASSED if settings.gate else OFF, draws)
    return GateVerdict(FAILED if settings.gate else OFF, draws, tuple(failures.values()),
                       _advice(set(failures), _max_rhat(diagnostics), settings, draws))


def extendable(diagnostics: pd.DataFrame, settings: ModelSettings) -> bool:
    """Whether more draws may pass the gate: it fails on bulk or tail ESS, or on an R-hat no
    higher than EXTENDABLE_RHAT, and on nothing else. Divergences are never answered by more
    draws (any divergence, even one the gate allows, rules extension out)."""
    tables.check(tables.SAMPLER_DIAGNOSTICS, diagnostics)
    failures = set(_failures(diagnostics, settings))
    chains = diagnostics[diagnostics["kind"] == "chain"]
    return (bool(failures) and failures <= SAMPLING_CHECKS
            and _max_rhat(diagnostics) <= EXTENDABLE_RHAT
            and chains["divergences"].sum() == 0)


def _failures(diagnostics: pd.DataFrame, settings: ModelSettings) -> dict[str, str]:
    """Each failed check (r_hat, ess_bulk, ess_tail, divergences, bfmi) with its description."""
    parameters = diagnostics[diagnostics["kind"] == "parameter"]
    chains = diagnostics[diagnostics["kind"] == "chain"]
    problems = {}
    high = parameters[parameters["r_hat"] > settings.rhat_max]
    if not high.empty:
        problems["r_hat"] = f"R-hat > {settings.rhat_max} for {_names(high, 'r_hat')}"
    for column in ("ess_bulk", "ess_tail"):
        low = parameters[parameters[column] < settings.ess_min]
        if not low.empty:
            problems[column] = f"{column} < {settings.ess_min:g} for {_names(low, column)}"
    divergences = int(chains["divergences"].sum())
    if divergences > settings.max_divergences:
        problems["divergences"] = f"{divergences} divergent transitions (allowed: {settings.max_divergences})"
    low_bfmi = chains[chains["bfmi"] < settings.bfmi_min]
    if not low_bfmi.empty:
        problems["bfmi"] = f"E-BFMI < {settings.bfmi_min} in chain(s) {', '.join(map(str, low_bfmi['chain']))}"
    return problems


def _advice(checks: set[str], max_rhat: float, settings: ModelSettings, draws: int) -> str:
    """What to change, honestly: by the time the gate fails, more draws have been tried where
    they could help, so the advice points at the data and the priors."""
    advice = []
    if checks & SAMPLING_CHECKS:
        if draws > settings.draws:
            advice.append(
                f"Low ESS or high R-hat remain after the fit extended its draws from {settings.draws} "
                f"to {draws} per chain, its tuning steps alike (the cap is sampler.max_draws_factor = {settings.max_draws_factor} "
                "times sampler.draws): the posterior is hard to explore, usually because a "
                "between-study or within-study SD rests on very few rows. Check this analysis' data "
                f"(a marker or intervention resting on one study, a value read wrongly) and consider {PRIOR_HINT}; "
                "a higher max_draws_factor only buys time."
            )
        elif max_rhat > EXTENDABLE_RHAT:
            advice.append(
                f"R-hat above {EXTENDABLE_RHAT}: the chains disagree (e.g. each found its own mode), "
                "which more draws do not cure, so none were added. Check this analysis' data for a "
                f"study that contradicts the rest and consider {PRIOR_HINT}."
            )
        elif checks & {"divergences", "bfmi"}:
            advice.append("Low ESS or high R-hat: no draws were added, since more draws cure neither "
                          "divergences nor a low E-BFMI.")
        else:
            advice.append(
                f"Low ESS or high R-hat with {draws} draws per chain, not extended (the gate is off, "
                "sampler.max_draws_factor is 1, or a divergence the gate allows ruled it out): more "
                f"sampler.draws may help, and so may {PRIOR_HINT}."
            )
    if "divergences" in checks:
        advice.append(
            "Divergent transitions mean the sampler could not follow the posterior's curvature "
            "(typically a funnel where a between-study SD nears zero), so the draws may be biased; "
            "more draws never cure that. Check this analysis' data (a value read wrongly, a study "
            f"that contradicts the rest) and consider {PRIOR_HINT}; a higher sampler.target_accept "
            "hides mild cases at the cost of slower fits."
        )
    if "bfmi" in checks:
        advice.append(
            "Low E-BFMI means the chains explore the energy distribution poorly (heavy tails in a "
            f"variance parameter): check the data and consider {PRIOR_HINT}."
        )
    return " ".join(advice)


def _max_rhat(diagnostics: pd.DataFrame) -> float:
    parameters = diagnostics[diagnostics["kind"] == "parameter"]
    return float(parameters["r_hat"].max())


def _names(rows: pd.DataFrame, column: str, limit: int = 8) -> str:
    shown = [f"{name} ({value:.3g})" for name, value in zip(rows["parameter"], rows[column])]
    more = f" and {len(shown) - limit} more" if len(shown) > limit else ""
    return ", ".join(shown[:limit]) + more
