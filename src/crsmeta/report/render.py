"""Render the one self-contained HTML report from the stage outputs.

Figures are inline SVG, the stylesheet is inline, nothing is fetched when the page opens; the only
URLs are links to the publications. A missing optional input or a posterior without the expected
variables gives a visible note in its section rather than a failure.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from crsmeta import __version__, history
from crsmeta import tables as contracts
from crsmeta.io import write_text
from crsmeta.model.analyses import PARETO_K_MAX
from crsmeta.model.effects import DATA_DRIVEN_MAX_RATIO, WEAKLY_INFORMED_MAX_RATIO
from crsmeta.model.posterior_summaries import posterior_variable
from crsmeta.report import plots, tables
from crsmeta.studies import load_studies
from crsmeta.vocabulary import ChangeScale, change_scale, change_unit

TEMPLATES = Path(__file__).parent / "templates"
KEY_PARAMETERS = ["tau", "sigma"]
MAX_PPC_VARIABLES = 4
RHAT_LIMIT = 1.01
ESS_LIMIT = 400


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report shows, already loaded. Optional parts may be None."""

    cases: pd.DataFrame
    summaries: pd.DataFrame
    rows: pd.DataFrame
    conversions: pd.DataFrame
    pairing: pd.DataFrame
    changes: pd.DataFrame
    effects: pd.DataFrame
    studies: list[dict[str, Any]]
    effects_all: pd.DataFrame | None = None
    diagnostics: pd.DataFrame | None = None
    frequentist: pd.DataFrame | None = None
    recovery: pd.DataFrame | None = None
    recovery_summary: pd.DataFrame | None = None
    idata: az.InferenceData | None = None
    tau: pd.DataFrame | None = None
    superiority: pd.DataFrame | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    model_doc: str | None = None
    history_changes: pd.DataFrame | None = None
    history_comparison: dict[str, Any] | None = None
    history_inclusion: pd.DataFrame | None = None
    per_study: pd.DataFrame | None = None
    summary_pairing: pd.DataFrame | None = None
    cumulative: pd.DataFrame | None = None

    @classmethod
    def from_paths(
        cls,
        *,
        cases: str | Path,
        summaries: str | Path,
        rows: str | Path,
        conversions: str | Path,
        pairing: str | Path,
        changes: str | Path,
        effects: str | Path,
        studies: list[str | Path],
        posterior: str | Path | None = None,
        tau: str | Path | None = None,
        superiority: str | Path | None = None,
        effects_all: str | Path | None = None,
        diagnostics: str | Path | None = None,
        frequentist: str | Path | None = None,
        recovery: str | Path | None = None,
        recovery_summary: str | Path | None = None,
        model_doc: str | Path | None = None,
        settings: dict[str, Any] | None = None,
        history_changes: str | Path | None = None,
        history_comparison: str | Path | None = None,
        history_inclusion: str | Path | None = None,
        per_study: str | Path | None = None,
        summary_pairing: str | Path | None = None,
        cumulative: str | Path | None = None,
        project_dir: str | Path = ".",
    ) -> ReportInputs:
        """Load the inputs from the paths of the stage outputs, each through its contract
        (:mod:`crsmeta.tables`): a table that breaks it stops the report at its file, row and column.
        The study files are loaded as every stage loads them (:func:`crsmeta.studies.load_studies`,
        their tables' paths taken from ``project_dir``), in the order of their paths."""
        return cls(
            cases=contracts.read(contracts.HARMONISED_CASES, cases),
            summaries=contracts.read(contracts.HARMONISED_SUMMARIES, summaries),
            rows=contracts.read(contracts.AUDIT_ROWS, rows),
            conversions=contracts.read(contracts.CONVERSIONS, conversions),
            pairing=contracts.read(contracts.PAIRING, pairing),
            changes=contracts.read(contracts.CHANGES, changes),
            effects=contracts.read(contracts.EFFECTS, effects),
            studies=tables.study_records(load_studies(sorted(Path(path) for path in studies), project_dir)),
            effects_all=_optional(contracts.EFFECTS_ALL, effects_all),
            diagnostics=_optional(contracts.DIAGNOSTICS, diagnostics),
            frequentist=_optional(contracts.RANDOM_EFFECTS, frequentist),
            recovery=_optional(contracts.RECOVERY, recovery),
            recovery_summary=_optional(contracts.RECOVERY_SUMMARY, recovery_summary),
            idata=az.from_netcdf(str(posterior)) if _given(posterior) else None,
            tau=_optional(contracts.TAU_SUMMARIES, tau),
            superiority=_optional(contracts.SUPERIORITY, superiority),
            settings=dict(settings or {}),
            model_doc=Path(model_doc).read_text(encoding="utf-8") if _given(model_doc) else None,
            history_changes=_optional(contracts.HISTORY_CHANGES, history_changes),
            history_comparison=(
                json.loads(Path(history_comparison).read_text(encoding="utf-8")) if _given(history_comparison) else None
            ),
            history_inclusion=_optional(contracts.INCLUSION_HISTORY, history_inclusion),
            per_study=_optional(contracts.PER_STUDY, per_study),
            summary_pairing=_optional(contracts.SUMMARY_AUDIT, summary_pairing),
            cumulative=_optional(contracts.CUMULATIVE, cumulative),
        )


def _given(path: str | Path | None) -> bool:
    """An optional input was given and exists."""
    return bool(path) and Path(path).exists()


def _optional(contract: contracts.Table, path: str | Path | None) -> pd.DataFrame | None:
    return contracts.read(contract, path) if _given(path) else None


def render_report(inputs: ReportInputs, out_path: Path) -> None:
    """Write the HTML report to ``out_path`` (atomically: a failure leaves no partial file)."""
    write_text(report_html(inputs), out_path)


def report_html(inputs: ReportInputs) -> str:
    """The report as one HTML string."""
    attrs = tables.posterior_attrs(inputs.idata)
    synthetic = tables.synthetic_flags(
        [inputs.cases, inputs.summaries, inputs.changes, inputs.effects], inputs.studies, attrs
    )
    context = {
        "synthetic": synthetic,
        "today": date.today().isoformat(),
        "version": __version__,
        "failed_analyses": tables.failed_analyses(inputs.diagnostics).to_dict("records"),
        **_history_section(inputs),
        **_inclusion_history_section(inputs, synthetic),
        **_summary_section(inputs),
        **_data_sections(inputs),
        **_forest_section(inputs, synthetic),
        **_heterogeneity_section(inputs, synthetic),
        **_diagnostics_section(inputs, synthetic),
        **_sensitivity_section(inputs, synthetic),
        "frequentist": _frequentist_rows(inputs),
        **_recovery_section(inputs),
        **_cumulative_section(inputs, synthetic),
        **_methods_section(inputs, attrs),
        "provenance": tables.provenance(inputs.effects, inputs.changes, inputs.cases, inputs.summaries),
    }
    return _environment().get_template("report.html.j2").render(**context)


def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    environment.filters["change"] = _format_theta
    environment.filters["num"] = _format_number
    environment.globals["interval"] = _format_interval
    return environment


def _format_interval(centre: Any, low: Any, high: Any, marker: str) -> str:
    """``-45% (-70% to -5%)``, or ``–`` when there is no estimate."""
    if not np.isfinite(tables.number(centre)):
        return "–"
    return f"{_format_theta(centre, marker)} ({_format_theta(low, marker)} to {_format_theta(high, marker)})"


def _format_theta(theta: Any, marker: str) -> str:
    """θ on the model scale → the change a reader reads (% or °C)."""
    value = tables.number(theta)
    if not np.isfinite(value):
        return "–"
    difference = change_scale(marker) is ChangeScale.DIFFERENCE
    return tables.format_change(value if difference else tables.percent(value), change_unit(marker))


def _format_number(value: Any, digits: int = 2) -> str:
    number = tables.number(value)
    return "–" if not np.isfinite(number) else f"{number:.{digits}f}"


def _svg(figure: plt.Figure, name: str, synthetic: bool) -> Markup:
    return Markup(plots.figure_svg(figure, name=name, synthetic=synthetic))


# --------------------------------------------------------------------------- sections


def _history_section(inputs: ReportInputs) -> dict[str, Any]:
    """What changed since the snapshot before (crsmeta.history); None when no history was given."""
    comparison, changes = inputs.history_comparison, inputs.history_changes
    if comparison is None or changes is None:
        return {"history": None}
    estimates = changes[changes["item"] == "estimate"]
    return {"history": {
        "previous": comparison["previous"],
        "current": comparison["current"],
        "lines": history.summary_lines(comparison, changes),
        "moved": history.moved_estimates(changes).to_dict("records"),
        "n_unchanged": int((estimates["change"] == "unchanged").sum()),
    }}


def _inclusion_history_section(inputs: ReportInputs, synthetic: bool) -> dict[str, Any]:
    """The living inclusion flow: counts per snapshot as a table and a figure, exclusions by reason."""
    if inputs.history_inclusion is None:
        return {"inclusion_history": None}
    overview = history.inclusion_overview(inputs.history_inclusion)
    overview = overview.assign(label=[f"#{number}\n{date[:10]}" for number, date in zip(overview["number"], overview["date"])])
    figure, ax = plt.subplots(figsize=(min(10.0, 2.5 + 0.8 * len(overview)), 3))
    plots.inclusion_history_plot(overview, ax=ax)
    reasons = history.exclusion_reasons(inputs.history_inclusion)
    return {"inclusion_history": {
        "svg": _svg(figure, "inclusion-history", synthetic),
        "rows": overview.to_dict("records"),
        "snapshots": list(overview["snapshot"]),
        "numbers": list(overview["number"]),
        "reasons": reasons.to_dict("records"),
    }}


def _summary_section(inputs: ReportInputs) -> dict[str, Any]:
    summary = tables.summary_rows(inputs.effects)
    has_contrast = bool(np.isfinite(summary.get("contrast_median", pd.Series(dtype=float))).any()) if len(summary) else False
    thresholds = {"data_driven_max": DATA_DRIVEN_MAX_RATIO, "weakly_informed_max": WEAKLY_INFORMED_MAX_RATIO}
    return {"summary": summary.to_dict("records"), "has_contrast": has_contrast, "evidence_thresholds": thresholds}


def _data_sections(inputs: ReportInputs) -> dict[str, Any]:
    flow = tables.inclusion_flow(inputs.rows)
    pairing_reasons = (
        inputs.pairing.groupby("reason").size().rename("n").reset_index().to_dict("records")
        if len(inputs.pairing) and "reason" in inputs.pairing else []
    )
    return {
        "flow": {**flow, "reasons": flow["reasons"].to_dict("records"), "per_study": flow["per_study"].to_dict("records")},
        "pairing_reasons": pairing_reasons,
        "summary_pairing_reasons": _reason_counts(inputs.summary_pairing),
        "n_changes": len(inputs.changes),
        "studies": tables.study_table(inputs.studies, inputs.cases, inputs.summaries, inputs.rows).to_dict("records"),
        "conversions": {kind: frame.to_dict("records") for kind, frame in tables.conversion_log(inputs.conversions).items()},
        "censored": tables.censored_values(inputs.cases).to_dict("records"),
    }


def forest_figures(effects: pd.DataFrame, per_study: pd.DataFrame | None, *, synthetic: bool) -> dict[str, str]:
    """One forest plot per marker (log-ratio markers first, then temperature's difference) as
    inline SVG text; the studies' own estimates from ``per_study`` (:data:`crsmeta.tables.PER_STUDY`)."""
    estimates = tables.study_estimates(per_study if per_study is not None else contracts.frame(contracts.PER_STUDY))
    markers = sorted(effects["marker"].unique(), key=lambda m: (change_scale(m) is ChangeScale.DIFFERENCE, m))
    figures = {}
    for marker in markers:
        data = tables.forest_data(effects, estimates, marker)
        figure, ax = plt.subplots(figsize=(8, 0.3 * len(data) + 1.3))
        plots.forest_plot(data, scale=change_unit(marker), ax=ax)
        ax.set_title(marker)
        figures[marker] = plots.figure_svg(figure, name=f"forest-{marker}", synthetic=synthetic)
    return figures


def _forest_section(inputs: ReportInputs, synthetic: bool) -> dict[str, Any]:
    figures = forest_figures(inputs.effects, inputs.per_study, synthetic=synthetic)
    forests = []
    for marker, svg in figures.items():
        interventions = sorted(inputs.effects.loc[inputs.effects["marker"] == marker, "intervention"])
        anchors = [{"anchor": tables.anchor_id(i, marker), "intervention": i} for i in interventions]
        forests.append({"marker": marker, "svg": Markup(svg), "anchors": anchors})
    return {"forests": forests}


def _heterogeneity_section(inputs: ReportInputs, synthetic: bool) -> dict[str, Any]:
    notes = []
    tau = tables.tau_rows(inputs.tau)
    if tau is None:
        notes.append("No τ table with posterior rows; τ is shown from effects.tsv only.")
        tau_rows = inputs.effects.groupby("marker")["tau_median"].first().reset_index().rename(columns={"tau_median": "median"})
        tau_rows = tau_rows.assign(lo=math.nan, hi=math.nan)
    else:
        tau_rows = tau
    comparisons = []
    for marker in sorted(inputs.effects["marker"].unique()):
        matrix = tables.superiority_matrix(inputs.superiority, marker)
        if matrix is None:
            continue
        figure, ax = plt.subplots(figsize=(1.1 * len(matrix) + 2.5, 0.8 * len(matrix) + 1.5))
        plots.superiority_heatmap(matrix, ax=ax)
        ax.set_title(marker)
        comparisons.append({"marker": marker, "svg": _svg(figure, f"compare-{marker}", synthetic)})
    if not comparisons:
        notes.append("No between-intervention comparison: no superiority table, or no marker has two "
                      "interventions.")
    return {"tau": tau_rows.to_dict("records"), "comparisons": comparisons, "heterogeneity_notes": notes}


def _diagnostics_section(inputs: ReportInputs, synthetic: bool) -> dict[str, Any]:
    context: dict[str, Any] = {"diagnostic_notes": [], "rank_svg": None, "trace_svg": None,
                               "ppc_svgs": [], "tau_prior_svg": None, "rhat_limit": RHAT_LIMIT, "ess_limit": ESS_LIMIT,
                               "pareto_k_max": PARETO_K_MAX}
    if inputs.diagnostics is not None:
        context["diagnostics_overview"] = tables.diagnostics_overview(inputs.diagnostics).to_dict("records")
        context["diagnostics_main"] = tables.parameter_diagnostics(inputs.diagnostics).to_dict("records")
    else:
        context["diagnostics_overview"], context["diagnostics_main"] = [], []
        context["diagnostic_notes"].append("results/model/diagnostics.tsv was not given.")
    idata = inputs.idata
    key = [name for name in KEY_PARAMETERS if posterior_variable(idata, name) is not None]
    if not key:
        context["diagnostic_notes"].append(
            f"The posterior has none of {', '.join(KEY_PARAMETERS)}: no rank or trace plots."
        )
    else:
        axes = plots.rank_plots(idata, key[:1])
        context["rank_svg"] = _svg(axes.flat[0].figure, "rank", synthetic)
        axes = plots.trace_plots(idata, key)
        axes.flat[0].figure.tight_layout()
        context["trace_svg"] = _svg(axes.flat[0].figure, "trace", synthetic)
    context["ppc_svgs"] = _ppc_figures(idata, synthetic, context["diagnostic_notes"])
    prior_posterior = tables.tau_prior_posterior(inputs.tau)
    if prior_posterior is None:
        context["diagnostic_notes"].append("No prior and posterior rows in the fit's τ table: no prior-vs-posterior plot.")
    else:
        figure, ax = plt.subplots(figsize=(7, 0.45 * prior_posterior["marker"].nunique() + 1.2))
        plots.tau_prior_posterior_plot(prior_posterior, ax=ax)
        context["tau_prior_svg"] = _svg(figure, "tau-prior", synthetic)
    return context


def _ppc_figures(idata: Any, synthetic: bool, notes: list[str]) -> list[Markup]:
    if idata is None or not {"posterior_predictive", "observed_data"} <= set(idata.groups()):
        notes.append("The posterior file has no posterior predictive draws with observed data: no predictive checks.")
        return []
    names = [n for n in idata.posterior_predictive.data_vars if n in idata.observed_data.data_vars]
    figures = []
    for name in names[:MAX_PPC_VARIABLES]:
        figure, ax = plt.subplots(figsize=(6, 3))
        plots.ppc_plot(idata, name, ax=ax)
        ax.set_title(f"posterior predictive check: {name}")
        figures.append(_svg(figure, f"ppc-{name}", synthetic))
    return figures


def _sensitivity_section(inputs: ReportInputs, synthetic: bool) -> dict[str, Any]:
    """The analyses side by side; those that failed the gate are left out (shown on their own)."""
    if inputs.effects_all is None or "analysis" not in inputs.effects_all:
        return {"sensitivity_svg": None, "analyses": []}
    data = tables.sensitivity_data(inputs.effects_all)
    scales = [s for s in ("log_ratio", "degC_difference") if (data["scale"] == s).any()]
    heights = [data.loc[data["scale"] == s, "cell"].nunique() for s in scales]
    figure, axes = plt.subplots(len(scales), 1, figsize=(8, 0.35 * sum(heights) + 1.5 * len(scales)),
                                height_ratios=[h + 2 for h in heights], squeeze=False, layout="constrained")
    for ax, scale in zip(axes.flat, scales):
        plots.sensitivity_plot(data[data["scale"] == scale], scale=scale, ax=ax)
    return {"sensitivity_svg": _svg(figure, "sensitivity", synthetic), "analyses": sorted(data["analysis"].unique())}


def _reason_counts(audit: pd.DataFrame | None) -> list[dict[str, Any]]:
    """How many rows an audit table lists per reason."""
    if audit is None or not len(audit):
        return []
    return audit.groupby("reason").size().rename("n").reset_index().to_dict("records")


def _cumulative_section(inputs: ReportInputs, synthetic: bool) -> dict[str, Any]:
    """Each estimate of two or more studies after each publication date (crsmeta.cumulative): a
    table and, per scale, a plot of the steps in order with the main analysis last."""
    if inputs.cumulative is None:
        return {"cumulative": None}
    if inputs.cumulative["step"].nunique() < 2:
        return {"cumulative": {"rows": [], "figures": []}}
    figures = []
    for scale, rows in inputs.cumulative.groupby("scale", sort=True):
        data = tables.cumulative_forest_data(rows)
        figure, ax = plt.subplots(figsize=(8, 0.3 * len(data) + 1.3))
        plots.forest_plot(data, scale=scale, ax=ax)
        ax.set_title("as the evidence stood after each publication date")
        figures.append(_svg(figure, f"cumulative-{scale}", synthetic))
    return {"cumulative": {"rows": inputs.cumulative.to_dict("records"), "figures": figures}}


def _recovery_section(inputs: ReportInputs) -> dict[str, Any]:
    """SYNTHETIC demo only: the main fit's 90% intervals against the simulator's true θ."""
    if inputs.recovery is None or inputs.recovery_summary is None:
        return {"recovery": None}
    table = inputs.recovery
    return {"recovery": {"summary": inputs.recovery_summary.iloc[0].to_dict(),
                         "rows": table.sort_values(["has_data", "covered"], ascending=[False, True]).to_dict("records")}}


def _frequentist_rows(inputs: ReportInputs) -> list[dict[str, Any]]:
    if inputs.frequentist is None:
        return []
    return tables.frequentist_comparison(inputs.effects, inputs.frequentist).to_dict("records")


def _methods_section(inputs: ReportInputs, attrs: dict[str, str]) -> dict[str, Any]:
    sampler = {}
    if inputs.idata is not None and "posterior" in inputs.idata.groups():
        posterior = inputs.idata.posterior
        sampler = {"chains": posterior.sizes.get("chain"), "draws per chain": posterior.sizes.get("draw")}
        if "sample_stats" in inputs.idata.groups() and "diverging" in inputs.idata.sample_stats:
            sampler["divergent transitions"] = int(inputs.idata.sample_stats["diverging"].sum())
    return {
        "attrs": attrs,
        "sampler": sampler,
        "settings_yaml": yaml.safe_dump(inputs.settings, sort_keys=True) if inputs.settings else "",
        "model_doc": inputs.model_doc,
    }
