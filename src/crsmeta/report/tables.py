"""Tidy tables for the report: every plot and section is drawn from one of these frames.

The functions read the stage outputs typed by their contracts (:mod:`crsmeta.tables`, as
:class:`crsmeta.report.render.ReportInputs` reads them: a frame of cell texts is not read);
of the main analysis' posterior InferenceData only its stamps and which variables it holds.
No statistic of the draws is computed here (the fit writes its tables: crsmeta.model); the
functions select, count, order and format what those tables hold.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from crsmeta.errors import InputError
from crsmeta.model.diagnostics import FAILED, FAILURE_SEPARATOR
from crsmeta.model.effects import DATA_DRIVEN, PRIOR_DRIVEN, WEAKLY_INFORMED
from crsmeta.model.posterior_summaries import TAU_INTERVAL
from crsmeta.studies import NOT_REPORTED, Study
from crsmeta.vocabulary import change_unit

HDI_PROB = TAU_INTERVAL
"""The one credible-interval mass of the report's intervals (the fit's tables give them)."""

POPULATION_LABELS = {
    "car_t_crs": "CAR-T CRS",
    "bispecific_crs": "bispecific CRS",
    "viral_cytokine_storm": "viral cytokine storm",
    "hlh_mas": "HLH/MAS",
}
FEW_PATIENTS = 5
SYNTHETIC_STAMP = {"SYNTHETIC": True, "no": False}
"""The posterior's ``synthetic`` attribute as :func:`crsmeta.model.fit.stamp` writes it."""
DOI_SAFE = "/:;()"
"""Characters a DOI keeps in its doi.org link; the rest (#, ?, %, <, >, ...) are percent-encoded."""


def number(value: Any) -> float:
    """A typed cell or value as a float to show: NaN where it is missing (None, NaN, pd.NA).
    Text is refused, not read: the tables are typed by their contracts."""
    if value is None or value is pd.NA:
        return math.nan
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"expected a number, not {value!r}")
    return float(value)


def _cell_text(value: Any) -> str:
    """A cell as the TSV shows it: empty for a missing number, the text of anything else."""
    return "" if pd.isna(value) else str(value).strip()


def _whole_text(value: Any) -> str:
    """A count as the report shows it: ``3`` (from 3 or 3.0), empty when missing."""
    return "" if pd.isna(value) else str(int(value))


def anchor_id(intervention: str, marker: str) -> str:
    """The HTML id of the provenance block of one pooled estimate."""
    return "prov-" + re.sub(r"[^A-Za-z0-9_-]+", "_", f"{intervention}-{marker}")


def population_label(populations: str) -> str:
    """``car_t_crs;hlh_mas`` → ``CAR-T CRS, HLH/MAS``."""
    names = [name for name in re.split(r"[;|,]", str(populations)) if name.strip()]
    return ", ".join(POPULATION_LABELS.get(name.strip(), name.strip()) for name in names) or "not stated"


def format_change(value: float, scale: str, *, signed: bool = True) -> str:
    """A change as a reader reads it: % for log ratios, °C for temperature differences."""
    if value is None or not np.isfinite(value):
        return "–"
    sign = "+" if signed else ""
    if scale == "degC_difference":
        return f"{round(value, 2) + 0.0:{sign}.2f} °C"
    return f"{round(value) + 0.0:{sign}.0f}%"


def percent(theta: float) -> float:
    """Log ratio → % change."""
    return 100.0 * math.expm1(theta)


# --------------------------------------------------------------------------- studies


def study_records(studies: Iterable[Study]) -> list[dict[str, Any]]:
    """The studies as loaded by the data layer (:func:`crsmeta.studies.load_studies`: validated,
    identifiers normalised, so that a DOI's link is made once), as the mappings the report reads."""
    return [dict(study.data) for study in studies]


def study_links(study: Mapping[str, Any]) -> list[dict[str, str]]:
    """Links (href, label) to the study: its DOI, else its PubMed record, else the URL the text was
    seen at; and its full text in PubMed Central when a PMCID is given."""
    links = []
    if study.get("doi"):
        links.append({"href": f"https://doi.org/{quote(study['doi'], safe=DOI_SAFE)}", "label": f"doi:{study['doi']}"})
    elif study.get("pmid"):
        links.append({"href": f"https://pubmed.ncbi.nlm.nih.gov/{study['pmid']}/", "label": f"PMID {study['pmid']}"})
    elif study.get("url"):
        links.append({"href": str(study["url"]), "label": str(study["url"])})
    if study.get("pmcid"):
        links.append({"href": f"https://www.ncbi.nlm.nih.gov/pmc/articles/{study['pmcid']}/", "label": study["pmcid"]})
    return links


NOT_APPRAISED = "not appraised"
RISK_OF_BIAS_LABELS = {"low": "low", "some_concerns": "some concerns", "high": "high"}


def publication_date_text(study: Mapping[str, Any]) -> str:
    """``published`` as written (2024, 2024-05, 2024-05-14), "not reported", or "" (none given)."""
    published = study.get("published")
    if published is None:
        return ""
    return "not reported" if published == NOT_REPORTED else str(published)


def risk_of_bias_cells(study: Mapping[str, Any]) -> dict[str, Any]:
    """The overall judgement ("not appraised" without an appraisal) and what lies behind it."""
    appraisal = study.get("risk_of_bias")
    if not appraisal:
        return {"risk_of_bias": NOT_APPRAISED, "risk_of_bias_detail": None}
    domains = [{"domain": str(domain), "judgement": _judgement_label(judgement)}
               for domain, judgement in (appraisal.get("domains") or {}).items()]
    detail = {"tool": str(appraisal.get("tool", "")).replace("_", " "), "domains": domains,
              "rater": appraisal.get("rater", ""), "note": appraisal.get("note", "")}
    overall = appraisal.get("overall", "")
    return {"risk_of_bias": RISK_OF_BIAS_LABELS.get(overall, overall), "risk_of_bias_detail": detail}


def _judgement_label(judgement: Any) -> str:
    if isinstance(judgement, bool):  # YAML's unquoted yes/no
        return "yes" if judgement else "no"
    return str(judgement).replace("_", " ")


def study_table(
    studies: list[dict[str, Any]], cases: pd.DataFrame, summaries: pd.DataFrame, rows: pd.DataFrame
) -> pd.DataFrame:
    """One row per study: citation, link, design, population, scale, peer review, publication date,
    date added, risk of bias, counts, caveats."""
    n_cases = cases.groupby("study_id")["patient_id"].nunique() if len(cases) else pd.Series(dtype=int)
    n_summaries = summaries.groupby("study_id").size() if len(summaries) else pd.Series(dtype=int)
    included = rows[rows["status"] == "included"].groupby("study_id").size() if len(rows) else pd.Series(dtype=int)
    records = []
    for study in studies:
        sid = study["id"]
        records.append(
            {
                "study_id": sid,
                "citation": study.get("citation", ""),
                "links": study_links(study),
                "design": study.get("design", ""),
                "population": POPULATION_LABELS.get(study.get("population", ""), study.get("population", "")),
                "grading_scale": study.get("grading_scale", ""),
                "peer_reviewed": "yes" if study.get("peer_reviewed", True) else "no",
                "published": publication_date_text(study),
                "added": str(study.get("added", "")),
                **risk_of_bias_cells(study),
                "n_cases": int(n_cases.get(sid, 0)),
                "n_summary_rows": int(n_summaries.get(sid, 0)),
                "n_included_rows": int(included.get(sid, 0)),
                "caveats": list(study.get("caveats") or []),
                "synthetic": bool(study.get("synthetic", False)),
            }
        )
    return pd.DataFrame.from_records(records)


# --------------------------------------------------------------------------- audit


def inclusion_flow(rows: pd.DataFrame) -> dict[str, Any]:
    """PRISMA-style counts from the row audit: rows in, included, excluded by reason, per study."""
    excluded = rows[rows["status"] == "excluded"]
    reasons = (
        excluded.assign(reason=excluded["reason"].replace("", "no reason given"))
        .groupby("reason")
        .size()
        .sort_values(ascending=False)
        .rename("n")
        .reset_index()
    )
    per_study = (
        pd.crosstab(rows["study_id"], rows["status"])
        .reindex(columns=["included", "excluded"], fill_value=0)
        .reset_index()
    )
    return {
        "n_in": len(rows),
        "n_included": int((rows["status"] == "included").sum()),
        "n_excluded": len(excluded),
        "n_studies": rows["study_id"].nunique(),
        "reasons": reasons,
        "per_study": per_study,
    }


def conversion_log(conversions: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The conversion log split by kind (unit, grade, censoring, vocabulary), biggest counts first."""
    log = {}
    for kind, group in conversions.groupby("kind", sort=True):
        log[str(kind)] = group.sort_values(["subject", "count"], ascending=[True, False]).drop(columns="kind")
    return log


def censored_values(cases: pd.DataFrame) -> pd.DataFrame:
    """Every harmonised case value that is censored, with the cell text it came from."""
    censored = cases[~cases["censoring"].isin(["", "none"])]
    columns = ["study_id", "patient_id", "intervention", "marker", "timepoint", "source_value",
               "source_unit", "value", "unit", "censoring"]
    return censored[columns].reset_index(drop=True)


# --------------------------------------------------------------------------- effects


CONTRAST_COLUMNS = ["contrast_median", "contrast_lo95", "contrast_hi95", "p_better_than_standard_care"]
CONTRAST_BASIS_TEXT = {
    "within_study": " — within study (both arms in the same study)",
    "indirect": " — ⚠ indirect: no study holds both arms; compares different studies, not randomised",
}


EVIDENCE_ORDER = (DATA_DRIVEN, WEAKLY_INFORMED, PRIOR_DRIVEN)
"""The summary's row order: what the data can support first (labels of crsmeta.model.effects)."""
EVIDENCE_TEXT = {
    DATA_DRIVEN: "the data narrowed the prior's SD from {prior} to {posterior}",
    WEAKLY_INFORMED: "the data narrowed the prior's SD only from {prior} to {posterior}; the prior still shapes it",
    PRIOR_DRIVEN: "the data barely narrowed the prior's SD ({prior} to {posterior}): it mostly repeats the prior",
}


def summary_rows(effects: pd.DataFrame) -> pd.DataFrame:
    """The summary table: one row per intervention × marker with words, warnings and anchors.

    Rows lead with what the data can support: data-driven estimates first, then weakly informed,
    then prior-driven ones (effects.tsv's ``evidence``), each group by marker and intervention.
    The contrast columns are optional: without them every row says there is no contrast.
    """
    effects = effects.copy()
    for column in [*CONTRAST_COLUMNS, "contrast_basis", "contrast_note", "populations", "scale"]:
        if column not in effects.columns:
            effects[column] = ""
    unknown = sorted(set(effects["evidence"].astype(str)) - set(EVIDENCE_ORDER))
    if unknown:
        raise InputError(f"evidence label {unknown[0]!r}", data_file="effects.tsv", column="evidence",
                         expected=f"one of {', '.join(EVIDENCE_ORDER)}")
    effects["evidence_rank"] = effects["evidence"].map(EVIDENCE_ORDER.index)
    records = []
    for row in effects.sort_values(["evidence_rank", "marker", "intervention"]).to_dict("records"):
        scale = row.get("scale") or change_unit(row["marker"])
        records.append({**row, "scale": scale, **_summary_text(row, scale)})
    return pd.DataFrame.from_records(records)


def _summary_text(row: Mapping[str, Any], scale: str) -> dict[str, str]:
    if scale == "degC_difference":
        centre, low, high = row["theta_median"], row["theta_lo95"], row["theta_hi95"]
    else:
        centre, low, high = row["pct_median"], row["pct_lo95"], row["pct_hi95"]
    change = format_change(centre, scale)
    interval = f"{format_change(low, scale)} to {format_change(high, scale)}"
    populations = population_label(row.get("populations", ""))
    n_studies, n_patients = int(row["n_studies"]), int(row["n_patients"])
    prior_sd, posterior_sd = _sd_text(row["prior_sd"], scale), _sd_text(row["posterior_sd"], scale)
    evidence = str(row["evidence"])
    words = (
        f"After {row['intervention'].replace('_', ' ')}, {row['marker']} changed by {change} "
        f"(95% CrI {interval}); the probability that it fell is {row['p_reduction']:.2f}. "
        f"Based on {n_studies} stud{'y' if n_studies == 1 else 'ies'} and {n_patients} "
        f"patient{'' if n_patients == 1 else 's'} ({populations}). "
        f"{evidence.capitalize()}: {EVIDENCE_TEXT[evidence].format(prior=prior_sd, posterior=posterior_sd)}."
    )
    warnings, tags = [], []
    if n_studies <= 1:
        warnings.append("rests on a single study")
        tags.append("1 study")
    if n_patients < FEW_PATIENTS:
        warnings.append(f"rests on fewer than {FEW_PATIENTS} patients")
        tags.append(f"< {FEW_PATIENTS} patients")
    return {
        "evidence_text": evidence,
        "prior_sd_text": prior_sd,
        "posterior_sd_text": posterior_sd,
        "sd_ratio_text": f"{row['sd_ratio']:.2f}",
        "change_text": change,
        "interval_text": interval,
        "populations_text": populations,
        "words": words,
        "warning": " and ".join(warnings),
        "warning_short": ", ".join(tags),
        "contrast_text": _contrast_text(row, scale),
        "anchor": anchor_id(row["intervention"], row["marker"]),
    }


def _sd_text(value: float, scale: str) -> str:
    """An SD of θ as printed: on the log-ratio scale for markers, in °C for temperature."""
    return f"{value:.2f} °C" if scale == "degC_difference" else f"{value:.2f}"


def _contrast_text(row: Mapping[str, Any], scale: str) -> str:
    median = row.get("contrast_median", float("nan"))
    if median is None or not np.isfinite(median):
        return str(row.get("contrast_note") or "no standard-care arm in the data")
    values = [row["contrast_median"], row["contrast_lo95"], row["contrast_hi95"]]
    if scale == "log_ratio":
        values = [percent(v) for v in values]
    text = f"{format_change(values[0], scale)} ({format_change(values[1], scale)} to {format_change(values[2], scale)})"
    probability = row.get("p_better_than_standard_care")
    if probability is not None and np.isfinite(probability):
        text += f"; P(better) = {probability:.2f}"
    return text + CONTRAST_BASIS_TEXT.get(str(row.get("contrast_basis") or ""), "")


def study_estimates(per_study: pd.DataFrame) -> pd.DataFrame:
    """Each study's own estimate of the change as the changes stage made it
    (results/model/study_estimates.tsv, :data:`crsmeta.tables.PER_STUDY`), named for the forest
    plot: the mean change of a study's patients (censored ones by their bounds), or its summary
    comparison (shifted as the model shifts it), with its 95% interval where it has one."""
    columns = ["study_id", "population", "intervention", "marker", "estimate", "lo", "hi", "n", "source"]
    if not len(per_study):
        return pd.DataFrame(columns=columns)
    cases = per_study["source"] == "cases"
    source = np.where(cases, "case-level changes", "summary: " + per_study["method"].str.replace("_", " "))
    return per_study.rename(columns={"yi": "estimate", "lo95": "lo", "hi95": "hi"}).assign(source=source)[columns]


def forest_data(effects: pd.DataFrame, estimates: pd.DataFrame, marker: str) -> pd.DataFrame:
    """Rows of one marker's forest plot: per intervention, the studies' own estimates then the pooled one.

    ``effects`` are the main analysis's effects (θ on the model scale); ``estimates`` come from
    :func:`study_estimates`. Columns: label, intervention, kind (study|pooled), estimate, lo, hi,
    pred_lo, pred_hi.
    """
    effects = effects[effects["marker"] == marker]
    records = []
    for row in effects.sort_values("intervention").to_dict("records"):
        populations = set(re.split(r"[;|,]", str(row.get("populations", "")))) - {""}
        own = estimates[(estimates["marker"] == marker) & (estimates["intervention"] == row["intervention"])]
        if populations:
            own = own[own["population"].isin(populations)]
        for study in own.sort_values("study_id").to_dict("records"):
            records.append(
                {"label": f"{study['study_id']} ({study['source']}, n={_count(study['n'])})",
                 "intervention": row["intervention"], "kind": "study", "estimate": study["estimate"],
                 "lo": study["lo"], "hi": study["hi"], "pred_lo": np.nan, "pred_hi": np.nan}
            )
        records.append(
            {"label": f"{row['intervention'].replace('_', ' ')}: pooled", "intervention": row["intervention"],
             "kind": "pooled", "estimate": row["theta_median"], "lo": row["theta_lo95"],
             "hi": row["theta_hi95"], "pred_lo": row["pred_lo95"], "pred_hi": row["pred_hi95"]}
        )
    return pd.DataFrame.from_records(
        records, columns=["label", "intervention", "kind", "estimate", "lo", "hi", "pred_lo", "pred_hi"]
    )


def cumulative_forest_data(cumulative: pd.DataFrame) -> pd.DataFrame:
    """Rows of the cumulative plot (:func:`crsmeta.report.plots.forest_plot`'s columns): per
    estimate, each step's θ with its 95% CrI in publication order, the main analysis (all
    studies) last and drawn as the pooled estimate."""
    records = []
    for _, steps in cumulative.sort_values(["marker", "intervention", "step"]).groupby(
            ["marker", "intervention"], sort=False):
        last = steps["step"].max()
        for row in steps.to_dict("records"):
            final = row["step"] == last
            label = (f"{row['intervention'].replace('_', ' ')} × {row['marker']}: all studies" if final
                     else f"up to {row['up_to']} ({_count(row['n_studies'])} studies)")
            records.append({"label": label, "intervention": row["intervention"], "kind": "pooled" if final else "study",
                            "estimate": row["theta_median"], "lo": row["theta_lo95"], "hi": row["theta_hi95"],
                            "pred_lo": np.nan, "pred_hi": np.nan})
    return pd.DataFrame.from_records(
        records, columns=["label", "intervention", "kind", "estimate", "lo", "hi", "pred_lo", "pred_hi"])


def _count(value: Any) -> str:
    return str(int(value))


# --------------------------------------------------------------------------- posterior


def superiority_matrix(superiority: pd.DataFrame | None, marker: str) -> pd.DataFrame | None:
    """One marker's rows of the fit's superiority table (:data:`crsmeta.tables.SUPERIORITY`) as a
    matrix: P(θ[row] < θ[column]), the probability that the row's intervention lowers the marker
    more than the column's; the diagonal empty. None without the table or a pair for the marker."""
    if superiority is None:
        return None
    rows = superiority[superiority["marker"] == marker]
    if rows.empty:
        return None
    names = sorted(set(rows["intervention"]))
    return rows.pivot(index="intervention", columns="comparator", values="p_lower").reindex(index=names, columns=names)


def tau_rows(tau: pd.DataFrame | None, group: str = "posterior") -> pd.DataFrame | None:
    """τ per marker (median, lo, hi) from one group of the fit's τ table
    (:data:`crsmeta.tables.TAU_SUMMARIES`); None without the table or the group's rows."""
    if tau is None or not (tau["group"] == group).any():
        return None
    return tau.loc[tau["group"] == group, ["marker", "lo", "median", "hi"]].reset_index(drop=True)


def tau_prior_posterior(tau: pd.DataFrame | None) -> pd.DataFrame | None:
    """The prior and posterior rows of the fit's τ table, for the prior-vs-posterior plot; None
    unless both are there."""
    posterior, prior = tau_rows(tau, "posterior"), tau_rows(tau, "prior")
    if posterior is None or prior is None:
        return None
    return pd.concat([prior.assign(group="prior"), posterior.assign(group="posterior")], ignore_index=True)


def posterior_attrs(idata: Any) -> dict[str, str]:
    """The stamps of the fit (config hash, data hash, seed, versions, ...) as text.

    Read from the InferenceData's own attributes and its posterior group's, the former winning.
    """
    if idata is None:
        return {}
    attrs = dict(getattr(idata, "attrs", {}) or {})
    if "posterior" in idata.groups():
        attrs = {**idata.posterior.attrs, **attrs}
    return {str(key): str(value) for key, value in sorted(attrs.items())}


# --------------------------------------------------------------------------- checks


def diagnostics_overview(diagnostics: pd.DataFrame) -> pd.DataFrame:
    """Per analysis: worst R-hat, lowest bulk and tail ESS, total divergences and lowest E-BFMI,
    and, where the table has them, the draws per chain and the gate's verdict.

    Rows of ``kind`` ``parameter`` hold R-hat and ESS, rows of ``kind`` ``chain`` divergences and
    E-BFMI (issue 3), the row of ``kind`` ``fit`` the verdict; without a ``kind`` column every row
    is read as a parameter row.
    """
    kind = diagnostics["kind"] if "kind" in diagnostics else pd.Series("parameter", index=diagnostics.index)
    parameters, chains = diagnostics[kind == "parameter"], diagnostics[kind == "chain"]
    if not len(chains):
        chains = diagnostics
    overview = parameters.groupby("analysis").agg(
        n_parameters=("parameter", "size"), r_hat=("r_hat", "max"), ess_bulk=("ess_bulk", "min"),
        ess_tail=("ess_tail", "min"),
    )
    if "divergences" in chains:
        # a count summed; as a float, so that an analysis without chain rows shows NaN, not pd.NA
        overview["divergences"] = chains.groupby("analysis")["divergences"].sum(min_count=1).astype(float)
    if "bfmi" in chains:
        overview["bfmi"] = chains.groupby("analysis")["bfmi"].min()
    verdicts = gate_verdicts(diagnostics)
    if len(verdicts):
        overview = overview.join(verdicts.set_index("analysis").drop(columns=["failures", "advice"]))
    return overview.reset_index()


def gate_verdicts(diagnostics: pd.DataFrame) -> pd.DataFrame:
    """Each analysis' gate verdict from its row of ``kind`` ``fit``: draws per chain, ``gate``
    (passed, failed or off), ``failures`` (a list) and ``advice`` (what to change).

    Empty when the table has no such rows (written before fits recorded their verdict).
    """
    columns = ["analysis", "draws", "gate", "failures", "advice"]
    if "gate" not in diagnostics or "kind" not in diagnostics:
        return pd.DataFrame(columns=columns)
    fits = diagnostics[diagnostics["kind"] == "fit"].reset_index(drop=True)
    failures = [[text for text in str(cell).split(FAILURE_SEPARATOR) if text] for cell in fits["gate_failures"]]
    verdicts = pd.DataFrame({"analysis": fits["analysis"], "draws": fits["draws"], "gate": fits["gate"],
                             "failures": failures, "advice": fits["gate_advice"]}, columns=columns)
    route = [c for c in ("route", "pareto_k", "route_note") if c in fits]  # tables written since the routes
    return pd.concat([verdicts, fits[route].replace("", None)], axis=1)


def failed_analyses(diagnostics: pd.DataFrame | None) -> pd.DataFrame:
    """The analyses whose fit failed the gate, with their diagnostics overview and what to change."""
    if diagnostics is None:
        return pd.DataFrame(columns=["analysis"])
    verdicts = gate_verdicts(diagnostics)
    failed = verdicts.loc[verdicts["gate"] == FAILED, ["analysis", "failures", "advice"]]
    return failed.merge(diagnostics_overview(diagnostics), on="analysis").sort_values("analysis")


def parameter_diagnostics(diagnostics: pd.DataFrame, analysis: str = "main") -> pd.DataFrame:
    """R-hat and ESS of every parameter of one analysis."""
    rows = diagnostics[diagnostics["analysis"] == analysis]
    if "kind" in rows:
        rows = rows[rows["kind"] == "parameter"]
    return rows[["parameter", "r_hat", "ess_bulk", "ess_tail"]]


def sensitivity_data(effects_all: pd.DataFrame) -> pd.DataFrame:
    """θ median and 95% CrI of every analysis per intervention × marker (tidy, for one plot).

    Analyses whose fit failed the gate (``gate`` = failed) are left out: their estimates are
    not compared with anything.
    """
    if "gate" in effects_all:
        effects_all = effects_all[effects_all["gate"] != FAILED]
    frame = effects_all.assign(
        cell=effects_all["intervention"] + " · " + effects_all["marker"],
        scale=[row.get("scale") or change_unit(row["marker"]) for row in effects_all.to_dict("records")],
    )
    return frame[["analysis", "cell", "intervention", "marker", "scale", "theta_median", "theta_lo95", "theta_hi95"]]


def frequentist_comparison(effects: pd.DataFrame, frequentist: pd.DataFrame) -> pd.DataFrame:
    """Bayesian θ beside the REML and DerSimonian–Laird estimates on the same scale; the note
    leads with REML's Hartung–Knapp–Sidik–Jonkman 95% interval (t, k − 1 df) where there is one."""
    bayes = effects[["intervention", "marker", "n_studies", "theta_median", "theta_lo95", "theta_hi95"]]
    merged = bayes.merge(frequentist, on=["intervention", "marker"], how="outer")
    merged = merged.assign(note=merged["note"].fillna(""))  # a cell the check does not pool has no note
    notes = [_hksj_note(row) for row in merged.to_dict("records")] if "reml_hksj_lo95" in merged else merged["note"]
    reasons = [_why_they_differ(row) for row in merged.to_dict("records")]
    merged = merged.assign(k=merged["k"].map(_whole_text), note=notes, why=reasons)
    return merged.sort_values(["marker", "intervention"]).reset_index(drop=True)


def _why_they_differ(row: Mapping[str, Any]) -> str:
    """One sentence on why the Bayesian and the REML estimate of a cell differ by design, or ""
    where they agree (REML within half the Bayesian 95% CrI's half-width of its median)."""
    k, n = row["k"], row["n_studies"]
    if not np.isfinite(row["reml_estimate"]):
        return ("No study of this cell gives a known SE (a P value bound, no spread, or an SE that depends on the "
                "pre/post correlation): only the Bayesian model, which learns it, can weight its rows.")
    if np.isfinite(n) and k < n:
        return (f"The check pools {k:.0f} of the {n:.0f} studies: the others' SEs are learned by the Bayesian "
                "model only.")
    half_width = (row["theta_hi95"] - row["theta_lo95"]) / 2
    if abs(row["theta_median"] - row["reml_estimate"]) <= half_width / 2:
        return ""
    if k == 1:
        return ("One study: the check is that study's own estimate; the Bayesian one is pulled toward the other "
                "cells by partial pooling and widened by the between-study τ.")
    return ("Partial pooling across interventions and markers, and τ's prior with few studies, move the Bayesian "
            "estimate away from the study-by-study pool.")


def _hksj_note(row: Mapping[str, Any]) -> str:
    low, high = row["reml_hksj_lo95"], row["reml_hksj_hi95"]
    if not (np.isfinite(low) and np.isfinite(high)):
        return str(row.get("note") or "")
    scale = change_unit(row["marker"])
    if scale == "log_ratio":
        low, high = percent(low), percent(high)
    interval = f"REML with Knapp–Hartung 95% CI {format_change(low, scale)} to {format_change(high, scale)}"
    return "; ".join(filter(None, [interval, str(row.get("note") or "")]))


# --------------------------------------------------------------------------- provenance


EFFECT_NUMBERS = ["estimate", "ci_low", "ci_high", "se"]
PROVENANCE_COLUMNS = ["study_id", "kind", "who", "timepoint", "locator", "quote", "printed", "harmonised", "flags"]


def provenance(
    effects: pd.DataFrame, changes: pd.DataFrame, cases: pd.DataFrame, summaries: pd.DataFrame
) -> list[dict[str, Any]]:
    """For each pooled estimate, the source numbers behind it, from the quotes to the harmonised values.

    Case values are those of the patients whose changes entered the estimate; summary values are the
    summary rows of the same intervention, marker and populations. ``printed`` is the number as the
    publication printed it (a reported effect with its interval and unit), ``harmonised`` the value
    the model reads.
    """
    blocks = []
    for row in effects.sort_values(["marker", "intervention"]).to_dict("records"):
        populations = set(re.split(r"[;|,]", str(row.get("populations", "")))) - {""}
        sources = pd.concat(
            [_case_sources(row, changes, cases, populations), _summary_sources(row, summaries, populations)],
            ignore_index=True,
        )
        blocks.append(
            {"anchor": anchor_id(row["intervention"], row["marker"]), "intervention": row["intervention"],
             "marker": row["marker"], "populations_text": population_label(row.get("populations", "")),
             "rows": sources.reindex(columns=PROVENANCE_COLUMNS).fillna("")}
        )
    return blocks


def _case_sources(row: Mapping[str, Any], changes: pd.DataFrame, cases: pd.DataFrame, populations: set[str]) -> pd.DataFrame:
    keys = ["study_id", "patient_id", "intervention", "marker"]
    used = changes[(changes["intervention"] == row["intervention"]) & (changes["marker"] == row["marker"])]
    if populations:
        used = used[used["population"].isin(populations)]
    values = cases.merge(used[keys].drop_duplicates(), on=keys)
    return _with_texts(values, _value_texts).assign(
        kind="case", who="patient " + values["patient_id"].astype(str)
    ).sort_values(["study_id", "patient_id", "timepoint"])


def _summary_sources(row: Mapping[str, Any], summaries: pd.DataFrame, populations: set[str]) -> pd.DataFrame:
    values = summaries[(summaries["intervention"] == row["intervention"]) & (summaries["marker"] == row["marker"])]
    if populations:
        values = values[values["population"].isin(populations)]
    return _with_texts(values, _summary_texts).assign(
        kind="summary",
        who=values["arm"] + " (" + values["statistic"] + ", n=" + values["n"].map(_cell_text).astype(str) + ")",
    ).sort_values(["study_id", "arm", "timepoint"])


def _with_texts(values: pd.DataFrame, texts: Callable[[Mapping[str, Any]], tuple[str, str]]) -> pd.DataFrame:
    """``values`` with the ``printed`` and ``harmonised`` text of each row, from ``texts(row)``."""
    pairs = [texts(record) for record in values.to_dict("records")]
    return values.assign(printed=[p for p, _ in pairs], harmonised=[h for _, h in pairs])


def _summary_texts(row: Mapping[str, Any]) -> tuple[str, str]:
    return _effect_texts(row) if np.isfinite(row["estimate"]) else _value_texts(row)


def _value_texts(row: Mapping[str, Any]) -> tuple[str, str]:
    """A measured value: the cell as printed, and the value in the canonical unit (censoring noted)."""
    harmonised = _joined(row["value"], row["unit"])
    censoring = str(row.get("censoring", "")).strip()
    if censoring not in ("", "none"):
        harmonised += f" ({censoring}-censored)"
    return _joined(row["source_value"], row["source_unit"]), harmonised


def _effect_texts(row: Mapping[str, Any]) -> tuple[str, str]:
    """A reported effect: estimate, interval and unit as printed, and on the model's scale
    (``row`` has the harmonised numbers as floats)."""
    kind = str(row["source_effect_type"]).replace("_", " ")
    printed = _joined(row["source_estimate"], row["source_unit"])
    printed += _details(_interval_text(row["source_ci_low"], row["source_ci_high"]), kind)
    scale = str(row["effect_type"])
    harmonised = f"{_number(row['estimate'])} {scale.replace('_', ' ')}"
    harmonised += _details(
        _interval_text(_number(row["ci_low"]), _number(row["ci_high"])),
        f"SE {_number(row['se'])}" if np.isfinite(row["se"]) else "",
        f"i.e. {format_change(percent(row['estimate']), scale)}" if scale == "log_ratio" else "",
    )
    return printed, harmonised


def _details(*parts: str) -> str:
    """`` (a; b)`` of the parts that are not empty, or nothing."""
    given = [part for part in parts if part]
    return f" ({'; '.join(given)})" if given else ""


def _joined(number: Any, unit: Any) -> str:
    return " ".join(text for text in (_cell_text(number), _cell_text(unit)) if text)


def _interval_text(low: Any, high: Any) -> str:
    """``CI low to high`` (a bound not given shown as –), or nothing when neither is given."""
    low, high = _cell_text(low), _cell_text(high)
    return f"CI {low or '–'} to {high or '–'}" if low or high else ""


def _number(value: float) -> str:
    """A harmonised number at the precision a reader compares with the printed one."""
    return f"{value:.3f}" if np.isfinite(value) else ""


def synthetic_flags(frames: Iterable[pd.DataFrame], studies: Iterable[Mapping[str, Any]], attrs: Mapping[str, str]) -> bool:
    """True when any row (a typed ``synthetic`` flag), study or the posterior's stamp is marked synthetic."""
    if any(frame["synthetic"].any() for frame in frames if "synthetic" in frame.columns):
        return True
    if any(study.get("synthetic", False) for study in studies):
        return True
    return synthetic_stamp(attrs.get("synthetic"))


def synthetic_stamp(text: str | None) -> bool:
    """The posterior's ``synthetic`` stamp (text, as netCDF keeps it) read strictly; False without one."""
    if text is None:
        return False
    if text not in SYNTHETIC_STAMP:
        raise InputError(f"posterior attribute synthetic = {text!r}",
                         expected=" or ".join(repr(key) for key in SYNTHETIC_STAMP))
    return SYNTHETIC_STAMP[text]
