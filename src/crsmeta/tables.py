"""One contract per stage table (data layer and model stage): its columns and types, declared here only.

A table is built with :func:`frame`, written with :func:`write` and read with :func:`read`; each
checks the contract and raises :class:`InputError` naming the file, the row (header = row 1) and
the column, and what was expected. Nothing is coerced: a number column holds numbers (an empty
cell only where the column allows it), a flag column ``True`` or ``False``, a count column whole
numbers, a text column text.

pandera validates the typed frames (types, empty cells, allowed values). Its own coercion is not
used to read a TSV: it reads any text as the flag ``True`` and refuses an empty cell as a missing
number, so cells are parsed here, strictly. pandera is imported on first validation only: the
SYNTHETIC demo's parse imports the simulator, which imports this module, and would pay for it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from crsmeta.errors import InputError
from crsmeta.io import read_tsv, write_tsv

if TYPE_CHECKING:
    import pandera.pandas as pa

HEADER_ROW = 1
FIRST_DATA_ROW = 2


@dataclass(frozen=True)
class Cell:
    """The type of a column's cells."""

    dtype: str
    expected: str
    nullable: bool = False
    allowed: tuple[str, ...] = ()


TEXT = Cell("str", "text")
NUMBER = Cell("float64", "a number")
OPTIONAL_NUMBER = Cell("float64", "a number or an empty cell", nullable=True)
COUNT = Cell("int64", "a whole number")
OPTIONAL_COUNT = Cell("Int64", "a whole number or an empty cell", nullable=True)
FLAG = Cell("bool", "True or False")


def one_of(*values: str) -> Cell:
    """A text column whose cells are one of ``values``."""
    shown = ", ".join(repr(value) for value in values)
    return Cell("str", f"one of {shown}", allowed=values)


@dataclass(frozen=True)
class Table:
    """A stage table's contract: its name (for messages) and its columns in order, with types."""

    name: str
    cells: Mapping[str, Cell]

    @property
    def columns(self) -> list[str]:
        return list(self.cells)

    @cached_property
    def schema(self) -> pa.DataFrameSchema:
        import pandera.pandas as pa

        return pa.DataFrameSchema(
            {name: _pandera_column(pa, cell) for name, cell in self.cells.items()}, name=self.name
        )


def _pandera_column(pa: Any, cell: Cell) -> pa.Column:
    checks = [pa.Check.isin(list(cell.allowed))] if cell.allowed else []
    return pa.Column(cell.dtype, checks=checks, nullable=cell.nullable)


def _text(*names: str) -> dict[str, Cell]:
    return dict.fromkeys(names, TEXT)


# --- the contracts ---------------------------------------------------------------------------

PROVENANCE = {**_text("study_id", "table", "source_file"), "source_row": COUNT, "source_column": TEXT}
"""Where an extracted row came from: the study, the source table and its cell."""

EXTRACTED_CASES = Table("extracted cases", {**PROVENANCE, **_text(
    "patient_id", "intervention", "co_interventions", "marker", "timepoint", "hours", "value",
    "unit", "crs_grade", "fever", "hypotension", "oxygen", "locator", "quote", "digitised",
    "flags", "exclude",
)})
"""Every cell as printed in the source (nothing is converted before harmonisation)."""

EXTRACTED_SUMMARIES = Table("extracted summaries", {**PROVENANCE, **_text(
    "arm", "intervention", "co_interventions", "marker", "timepoint", "hours", "n", "statistic",
    "value", "unit", "spread_type", "spread", "spread_low", "spread_high", "p_value",
    "effect_type", "estimate", "ci_low", "ci_high", "se", "locator", "quote", "digitised",
    "flags", "exclude",
)})

HARMONISED_CASES = Table("harmonised cases", {
    **_text("study_id", "patient_id", "population", "design", "intervention", "source_intervention",
            "co_interventions", "marker", "source_marker", "timepoint"),
    "hours": OPTIONAL_NUMBER, "value": NUMBER, "unit": TEXT, "censoring": one_of("none", "left", "right"),
    **_text("source_value", "source_unit", "grading_scale", "source_grade", "astct_grades"),
    "digitised": FLAG,
    **_text("flags", "locator", "quote", "source_file"),
    "source_row": COUNT, "source_column": TEXT, "synthetic": FLAG,
})

HARMONISED_SUMMARIES = Table("harmonised summaries", {
    **_text("study_id", "population", "design", "arm", "intervention", "source_intervention",
            "co_interventions", "marker", "source_marker", "timepoint"),
    "hours": OPTIONAL_NUMBER, "n": OPTIONAL_NUMBER, "statistic": TEXT, "value": OPTIONAL_NUMBER, "unit": TEXT,
    "spread_type": TEXT, "spread": OPTIONAL_NUMBER, "spread_low": OPTIONAL_NUMBER, "spread_high": OPTIONAL_NUMBER,
    "p_value": OPTIONAL_NUMBER, "p_relation": TEXT, "effect_type": TEXT,
    "estimate": OPTIONAL_NUMBER, "ci_low": OPTIONAL_NUMBER, "ci_high": OPTIONAL_NUMBER, "se": OPTIONAL_NUMBER,
    **_text("source_value", "source_estimate", "source_ci_low", "source_ci_high", "source_unit",
            "source_effect_type"),
    "digitised": FLAG,
    **_text("flags", "locator", "quote", "source_file"),
    "source_row": COUNT, "synthetic": FLAG,
})
"""A summary statistic (value, spread) or a reported effect (estimate, CI, SE); the printed
cells are kept in the ``source_*`` columns."""

AUDIT_ROWS = Table("row audit", {
    **PROVENANCE, **_text("marker", "intervention", "timepoint"),
    "status": one_of("included", "excluded"), "reason": TEXT,
})
"""Every extracted row, included or excluded with its reason."""

CONVERSIONS = Table("conversion log", {**_text("kind", "subject", "source", "target", "factor"), "count": COUNT})

CHANGES = Table("per-patient changes", {
    **_text("study_id", "patient_id", "population", "intervention", "co_interventions", "marker", "astct_grades"),
    "pre_value": OPTIONAL_NUMBER, "post_value": OPTIONAL_NUMBER,
    "pre_censoring": one_of("", "none", "left", "right"), "post_censoring": one_of("", "none", "left", "right"),
    "hours": OPTIONAL_NUMBER, "change": OPTIONAL_NUMBER, "change_lower": NUMBER, "change_upper": NUMBER,
    "censoring": one_of("none", "left", "right", "interval"), "digitised": FLAG, "flags": TEXT,
    "source_rows": TEXT, "synthetic": FLAG, "selection": TEXT, "unit": TEXT,
})
"""One change per patient, intervention and marker; open bounds are ±inf, ``change`` is empty
unless the change is exact; the pre/post columns are empty for a change the source printed."""

PAIRING = Table("pairing audit", {
    **_text("study_id", "patient_id", "intervention", "marker", "timepoint"),
    "hours": OPTIONAL_NUMBER, "source_file": TEXT, "source_row": COUNT, "source_column": TEXT, "reason": TEXT,
})
"""Every harmonised case row that entered no change, with the reason."""


# --- model stage ---------------------------------------------------------------------------

OBSERVATIONS = Table("model observations", {
    **_text("study_id", "arm", "population", "intervention", "co_interventions", "marker"),
    "n": NUMBER, "n_effective": NUMBER, "y": NUMBER, "kind": one_of("effect", "pre_post"), "pre_value": OPTIONAL_NUMBER,
    "se_known": OPTIONAL_NUMBER, "disp_pre": OPTIONAL_NUMBER, "disp_post": OPTIONAL_NUMBER,
    "mean_shift": OPTIONAL_NUMBER, "se_upper": NUMBER, "se_lower": NUMBER, "efficiency": NUMBER, "extra_var": NUMBER, "mean_weight": NUMBER,
    "source_rows": TEXT, "digitised": FLAG, "flags": TEXT, "synthetic": FLAG, "method": TEXT,
})
"""One summary-level observation (a pre/post comparison or a reported change) as the model reads
it, with what weights it (crsmeta.comparisons); an open ``se_upper`` is inf, an open ``se_lower`` 0;
``mean_shift`` is what a log ratio of means adds to θ, from the row's own dispersions (blank: the
model's σ[marker]²/2); ``n_effective`` the n its variance divides by (below ``n`` for a cohort
total, crsmeta.comparisons.effective_n)."""

SUMMARY_AUDIT = Table("summary rows not modelled", {
    **_text("study_id", "source_file", "source_row", "arm", "intervention", "marker", "timepoint", "reason"),
})
"""A harmonised summary row that makes no observation, with the reason (``source_row`` as text)."""

MODEL_AUDIT = Table("model audit", {
    "level": one_of("case", "summary"), **_text("study_id", "source_rows", "intervention", "marker", "reason"),
})
"""Every change or summary row that does not enter an analysis' model, with the reason."""

EFFECT_ESTIMATES = Table("effect estimates", {
    **_text("intervention", "marker"), "scale": one_of("log_ratio", "degC_difference"), "populations": TEXT,
    "n_studies": COUNT, "n_patients": COUNT, "n_summary_rows": COUNT,
    "evidence": one_of("data-driven", "weakly informed", "prior-driven"),
    "prior_sd": NUMBER, "posterior_sd": NUMBER, "sd_ratio": NUMBER,
    "theta_median": NUMBER, "theta_lo95": NUMBER, "theta_hi95": NUMBER,
    "pct_median": NUMBER, "pct_lo95": NUMBER, "pct_hi95": NUMBER,
    "p_reduction": NUMBER, "p_reduction_50": NUMBER, "reduction_50_threshold": TEXT, "tau_median": NUMBER,
    "pred_lo95": NUMBER, "pred_hi95": NUMBER,
    "contrast_median": OPTIONAL_NUMBER, "contrast_lo95": OPTIONAL_NUMBER, "contrast_hi95": OPTIONAL_NUMBER,
    "p_better_than_standard_care": OPTIONAL_NUMBER,
    "contrast_basis": one_of("", "within_study", "indirect"), "contrast_note": TEXT,
    "baseline_slope_median": OPTIONAL_NUMBER, "baseline_slope_lo95": OPTIONAL_NUMBER,
    "baseline_slope_hi95": OPTIONAL_NUMBER,
})
"""Posterior summaries per (intervention, marker) cell (crsmeta.model.effects); the contrast with
standard care is empty where there is none, the baseline slope (the change per unit of the
centred baseline level, for the cell's marker family) where the covariate is off. ``evidence`` labels ``sd_ratio`` = posterior_sd /
prior_sd, the SDs of the cell's θ (thresholds in crsmeta.model.effects, docs/model.md)."""

EFFECTS = Table("effects", {
    **EFFECT_ESTIMATES.cells, "synthetic": FLAG, "gate": one_of("passed", "failed", "off"),
    "route": one_of("sampled", "reweighted"), "pareto_k": OPTIONAL_NUMBER,
})
"""An analysis' effects as written (results/model/<analysis>/effects.tsv): the estimates with the
gate's verdict and how the posterior was reached (crsmeta.model.fit)."""

EFFECTS_ALL = Table("effects of every analysis", {"analysis": TEXT, **EFFECTS.cells})

TAU_SUMMARIES = Table("tau summaries", {
    "group": one_of("prior", "posterior"), "marker": TEXT, "lo": NUMBER, "median": NUMBER, "hi": NUMBER,
})
"""τ, the between-study SD, per marker from an analysis' prior and posterior draws: median and
central 95% interval (crsmeta.model.posterior_summaries; results/model/<analysis>/tau.tsv)."""

SUPERIORITY = Table("superiority", {**_text("marker", "intervention", "comparator"), "p_lower": NUMBER})
"""P(θ[intervention] < θ[comparator]) for every ordered pair of interventions with an estimate for
the marker (crsmeta.model.posterior_summaries; results/model/<analysis>/superiority.tsv)."""

CUMULATIVE = Table("cumulative estimates", {
    "analysis": TEXT, "up_to": TEXT, "step": COUNT, "n_studies_in": COUNT,
    **{name: EFFECTS.cells[name] for name in (
        "intervention", "marker", "scale", "n_studies", "n_patients", "theta_median", "theta_lo95", "theta_hi95",
        "pct_median", "pct_lo95", "pct_hi95", "p_reduction", "gate")},
})
"""Each estimate of two or more studies after each publication date, in order (crsmeta.cumulative):
``up_to`` the date (``all`` for the main analysis, which also holds undated studies), ``step``
its rank, ``n_studies_in`` the studies in the model at that step."""

SAMPLER_DIAGNOSTICS = Table("sampler diagnostics", {
    "analysis": TEXT, "kind": one_of("parameter", "chain", "fit"), "parameter": TEXT, "chain": OPTIONAL_COUNT,
    "r_hat": OPTIONAL_NUMBER, "ess_bulk": OPTIONAL_NUMBER, "ess_tail": OPTIONAL_NUMBER,
    "divergences": OPTIONAL_COUNT, "bfmi": OPTIONAL_NUMBER,
})
"""R-hat and ESS per parameter (kind ``parameter``), divergences and E-BFMI per chain (``chain``)."""

DIAGNOSTICS = Table("diagnostics", {
    **SAMPLER_DIAGNOSTICS.cells, "draws": OPTIONAL_NUMBER, "gate": one_of("", "passed", "failed", "off"),
    **_text("gate_failures", "gate_advice"), "route": one_of("", "sampled", "reweighted"),
    "pareto_k": OPTIONAL_NUMBER, "route_note": TEXT,
})
"""The sampler diagnostics and one row of kind ``fit`` with the gate's verdict and the route
(its columns are empty on the other rows); one analysis' or, collected, every analysis'."""

PER_STUDY = Table("per-study estimates", {
    **_text("study_id", "intervention", "marker", "population"), "yi": OPTIONAL_NUMBER, "vi": OPTIONAL_NUMBER,
    "lo95": OPTIONAL_NUMBER, "hi95": OPTIONAL_NUMBER, "n": NUMBER, "source": one_of("cases", "summary"), "method": TEXT, "shift": OPTIONAL_NUMBER,
    "pooled": FLAG, "synthetic": FLAG, "note": TEXT,
})
"""Each study's own estimate (the changes stage's, crsmeta.study_estimates; stage 1 of the
frequentist cross-check and the forest plots' studies): effect, sampling variance and 95%
interval, empty where the study gives none, with a note. ``method`` is
``cases_mean``, ``cases_censored_ml`` (censored patients in by their bounds) or the summary row's
route; ``shift`` what was taken off ``y`` for the σ²/2 of a ratio of means (empty: needed, but no
case data give σ², the row is unshifted)."""

RANDOM_EFFECTS = Table("frequentist cross-check", {
    **_text("intervention", "marker"), "k": COUNT,
    "reml_estimate": NUMBER, "reml_lo95": NUMBER, "reml_hi95": NUMBER, "reml_tau2": OPTIONAL_NUMBER,
    "dl_estimate": NUMBER, "dl_lo95": NUMBER, "dl_hi95": NUMBER, "dl_tau2": OPTIONAL_NUMBER,
    "reml_hksj_lo95": OPTIONAL_NUMBER, "reml_hksj_hi95": OPTIONAL_NUMBER,
    "dl_hksj_lo95": OPTIONAL_NUMBER, "dl_hksj_hi95": OPTIONAL_NUMBER,
    "synthetic": FLAG, "note": TEXT,
})
"""Stage 2: REML and DerSimonian-Laird pooled changes per (intervention, marker), with Wald and
Hartung-Knapp-Sidik-Jonkman (t, k − 1 df) 95% intervals; tau² and the HKSJ bounds are empty with
one study."""

CONTRIBUTING_STUDIES = Table("contributing studies", {
    "study_id": TEXT, "case_rows": COUNT, "summary_rows": COUNT, "cells": TEXT,
})
"""The studies whose rows reach the main model (the checkpoint of leave-one-out and the cumulative
steps), with the estimates each informs (``cells``: ``intervention|marker`` joined by ``;``)."""


# --- building, reading, writing --------------------------------------------------------------


def frame(
    table: Table, records: pd.DataFrame | Iterable[Mapping[str, Any]] | Iterable[Iterable[Any]] = ()
) -> pd.DataFrame:
    """The table from a frame or records (dicts or tuples in column order), checked against the contract.

    A frame must hold the contract's columns (others are dropped). Whole numbers in a number column
    become floats and an optional count column becomes a nullable integer (both lossless); nothing
    else is converted.
    """
    if isinstance(records, pd.DataFrame):
        built = records[table.columns].copy()
    else:
        built = pd.DataFrame(list(records), columns=table.columns)
    if built.empty:
        return built.astype({name: cell.dtype for name, cell in table.cells.items()})
    built = built.astype(_lossless_casts(table, built))
    check(table, built)
    return built


def _lossless_casts(table: Table, built: pd.DataFrame) -> dict[str, str]:
    """Integer columns where the contract wants floats, and optional counts as pandas' Int64."""
    return {
        name: cell.dtype for name, cell in table.cells.items()
        if cell.dtype == "Int64" or (cell.dtype == "float64" and pd.api.types.is_integer_dtype(built[name]))
    }


def check(table: Table, data: pd.DataFrame, path: str | Path | None = None) -> None:
    """Raise InputError at the first column or cell that breaks the contract."""
    check_header(table, list(data.columns), path)
    import pandera.pandas as pa

    try:
        table.schema.validate(data, lazy=True)
    except pa.errors.SchemaErrors as errors:
        raise _failure(table, data, errors.failure_cases, path) from None


def write(table: Table, data: pd.DataFrame, path: str | Path) -> None:
    """Check the table against its contract, then write it as TSV atomically."""
    check(table, data, path)
    write_tsv(data, path)


def read(table: Table, path: str | Path) -> pd.DataFrame:
    """Read a TSV written by :func:`write`, every cell parsed strictly to its column's type."""
    return parse(table, read_tsv(path), path)


def parse(table: Table, text: pd.DataFrame, path: str | Path | None = None) -> pd.DataFrame:
    """The typed table from a frame of cell texts (as :func:`crsmeta.io.read_tsv` gives)."""
    check_header(table, list(text.columns), path)
    typed = pd.DataFrame(
        {name: _parsed_column(table, text, name, path) for name in table.columns}
    ).reset_index(drop=True)
    check(table, typed, path)
    return typed


def check_header(table: Table, columns: list[str], path: str | Path | None) -> None:
    """The same columns as the contract, in its order; otherwise name the first difference.

    Without pandera: for a read where its import would cost more than the table (Snakemake's DAG
    evaluation of the contributing-studies checkpoint)."""
    if columns == table.columns:
        return
    expected = f"the {table.name} columns {', '.join(table.columns)}"
    missing = [name for name in table.columns if name not in columns]
    unexpected = [name for name in columns if name not in table.columns]
    if missing:
        problem, column = f"{table.name}: column '{missing[0]}' is missing", missing[0]
    elif unexpected:
        problem, column = f"{table.name}: unexpected column '{unexpected[0]}'", unexpected[0]
    else:
        column = next(name for name, want in zip(columns, table.columns) if name != want)
        problem = f"{table.name}: column '{column}' is out of order"
    raise InputError(problem, data_file=path, row=HEADER_ROW, column=column, expected=expected)


def _parsed_column(table: Table, text: pd.DataFrame, name: str, path: str | Path | None) -> pd.Series:
    cell = table.cells[name]
    if cell.dtype == "str":
        return text[name]
    parse_cell = PARSERS[cell.dtype]
    values = []
    for position, content in enumerate(text[name]):
        try:
            values.append(parse_cell(content, cell.nullable))
        except (ValueError, TypeError):
            raise InputError(
                f"{table.name}: cannot read {content!r} as {cell.expected}",
                data_file=path, row=position + FIRST_DATA_ROW, column=name, expected=cell.expected,
            ) from None
    return pd.Series(values, index=text.index, dtype=cell.dtype)


def _number(content: str, nullable: bool) -> float:
    if content == "" and nullable:
        return math.nan
    return float(content)


def _count(content: str, nullable: bool) -> Any:
    if content == "" and nullable:
        return pd.NA
    return int(content)


def _flag(content: str, nullable: bool) -> bool:
    flags = {"True": True, "False": False}
    if content not in flags:
        raise ValueError(content)
    return flags[content]


PARSERS: dict[str, Callable[[str, bool], Any]] = {"float64": _number, "int64": _count, "Int64": _count, "bool": _flag}
"""Cell text → value for each non-text type, as :func:`crsmeta.io.write_tsv` writes it."""


def _failure(table: Table, data: pd.DataFrame, cases: pd.DataFrame, path: str | Path | None) -> InputError:
    """InputError for pandera's first failure: a cell (with its row) or a whole column's type."""
    located = cases[cases["index"].notna()]
    first = (located if not located.empty else cases).iloc[0]
    column = str(first["column"])
    cell = table.cells[column]
    if pd.isna(first["index"]):
        return InputError(
            f"{table.name}: the column holds {first['failure_case']} values",
            data_file=path, column=column, expected=cell.expected,
        )
    row = data.index.get_loc(first["index"]) + FIRST_DATA_ROW
    value = first["failure_case"]
    if first["check"] == "not_nullable":
        problem = "empty cell"
    elif str(first["check"]).startswith("isin"):
        problem = f"{value!r} is not allowed"
    else:
        problem = f"{value!r} is not {cell.expected}"
    return InputError(f"{table.name}: {problem}", data_file=path, row=row, column=column, expected=cell.expected)


# --- the SYNTHETIC demo's truth and its recovery ---------------------------------------------

TRUTH = Table("simulated truth", {
    **_text("intervention", "marker"), "theta": NUMBER, "tau": NUMBER, "sigma": NUMBER, "synthetic": FLAG,
})
"""The simulator's true θ, τ and σ per (intervention, marker) cell (crsmeta.simulate.truth),
written beside the demo's study files (``truth.tsv``)."""

RECOVERY = Table("recovery of the simulated truth", {
    **_text("intervention", "marker"), "theta": NUMBER, "median": NUMBER, "lo": NUMBER, "hi": NUMBER,
    "covered": FLAG, "has_data": FLAG, "synthetic": FLAG,
})
"""Per cell of the demo's main fit (crsmeta.model.recovery): the true θ, the posterior median and
central 90% interval, whether it covers the truth and whether any data feed the cell."""

RECOVERY_SUMMARY = Table("recovery summary", {
    "cells": COUNT, "covered": COUNT, "cells_with_data": COUNT, "covered_with_data": COUNT,
    "coverage_with_data": OPTIONAL_NUMBER, "calibrated_p05": OPTIONAL_NUMBER, "p_as_low": OPTIONAL_NUMBER,
    "synthetic": FLAG,
})
"""One row for the demo's main fit (crsmeta.model.recovery.recovery_summary): the cells covered, and
what a calibrated model's coverage of this design would look like — the 5th percentile of the share
of cells with data that a posterior draw of θ falls in, and the share of draws that fall in as few
cells as the truth or fewer."""


# --- simulation-based calibration (SYNTHETIC) ------------------------------------------------

SBC_KIND = one_of("theta", "tau", "sigma", "baseline_sd", "rho")

SBC_RANKS = Table("SBC ranks", {
    "route": TEXT, "replicate": COUNT, "master_seed": COUNT, "parameter": TEXT, "kind": SBC_KIND, "truth": NUMBER,
    "rank": COUNT, "n_draws": COUNT,
    "covered50": FLAG, "covered80": FLAG, "covered90": FLAG, "covered95": FLAG,
    "divergences": COUNT, "synthetic": FLAG,
})
"""One SYNTHETIC SBC replicate's rows (crsmeta.calibration), or all of them pooled: per route (the
simulated design, crsmeta.calibration.ROUTES) and parameter the prior draw (``truth``), its rank
among ``n_draws`` thinned posterior draws (0 to ``n_draws``), whether the central 50/80/90/95%
intervals cover it, and the fit's divergent transitions."""

SBC_SUMMARY = Table("SBC summary", {
    "route": TEXT, "parameter": TEXT, "kind": SBC_KIND, "n_datasets": COUNT, "n_draws": COUNT,
    "chi2_p": NUMBER, "ecdf_max_diff": NUMBER, "ecdf_in_band": FLAG,
    "coverage50": NUMBER, "coverage80": NUMBER, "coverage90": NUMBER, "coverage95": NUMBER,
    "coverage_in_band": FLAG, "divergent_datasets": COUNT, "synthetic": FLAG,
})
"""Per route and parameter, over the SYNTHETIC SBC replicates: rank uniformity (chi-square on 10
bins; the ECDF's largest distance from uniform and whether it stays inside its simultaneous 95%
band) and interval coverage (whether each level's stays inside its 95% binomial band)."""

SBC_ROUTE_SUMMARY = Table("SBC route summary", {
    "route": TEXT, "kind": SBC_KIND, "enters_as": TEXT, "n_parameters": COUNT, "n_datasets": COUNT,
    **{f"coverage{level}{part}": cell for level in (50, 80, 90, 95)
       for part, cell in (("", NUMBER), ("_lo", NUMBER), ("_hi", NUMBER), ("_in_band", FLAG))},
    "chi2_p_min": NUMBER, "chi2_p_below_05": COUNT, "outside_ecdf_band": COUNT,
    "divergent_datasets": COUNT, "synthetic": FLAG,
})
"""Per route and kind of parameter, over the SYNTHETIC SBC replicates: what the route's rows enter
the model as, the coverage of each level pooled over the kind's parameters with its 95% binomial
band (for ``n_datasets`` draws: a dataset's cells are not independent, so the band of all its
cells would be too narrow) and whether it lies inside, and how many of the parameters fail the
chi-square test (p < 0.05) or leave their ECDF band (:data:`SBC_SUMMARY`)."""

ROBUSTNESS_ESTIMATES = Table("robustness estimates", {
    "scenario": TEXT, "route": TEXT, "replicate": COUNT, "master_seed": COUNT, "parameter": TEXT, "kind": SBC_KIND,
    "truth": NUMBER, "median": NUMBER, "sd": NUMBER, "rank": COUNT, "n_draws": COUNT,
    "covered50": FLAG, "covered80": FLAG, "covered90": FLAG, "covered95": FLAG,
    "divergences": COUNT, "synthetic": FLAG,
})
"""One SYNTHETIC robustness replicate's rows (crsmeta.calibration.run_robustness_replicate), or all
of them pooled: per scenario (the misspecification the data were simulated under,
crsmeta.calibration.SCENARIOS), route and parameter, the columns of the SBC replicate
(:data:`SBC_RANKS`: the prior draw, its rank, interval coverage, the fit's divergences) and the
posterior median and SD."""

ROBUSTNESS_SUMMARY = Table("robustness summary", {
    "scenario": TEXT, "route": TEXT, "kind": SBC_KIND, "n_parameters": COUNT, "n_datasets": COUNT,
    "bias": NUMBER, "rmse": NUMBER, "bias_in_sd": NUMBER,
    **{f"coverage{level}{part}": cell for level in (50, 80, 90, 95)
       for part, cell in (("", NUMBER), ("_lo", NUMBER), ("_hi", NUMBER), ("_in_band", FLAG))},
    "divergent_datasets": COUNT, "synthetic": FLAG,
})
"""Per scenario, route and kind of parameter, over the SYNTHETIC robustness replicates: the mean
bias of the posterior median (median − truth), its root mean square, the mean bias in posterior
SDs, and each level's coverage pooled over the kind's parameters with its 95% binomial band for
``n_datasets`` draws and whether it lies inside (as :data:`SBC_ROUTE_SUMMARY`)."""


# --- living-review history (crsmeta.history) -------------------------------------------------

SNAPSHOT_STUDIES = Table("snapshot studies", {"study_id": TEXT, "file_hash": TEXT})
"""A snapshot's studies: each study's id and the hash of its study file and source tables."""

SNAPSHOT_EFFECTS = Table("snapshot effects", {
    **_text("intervention", "marker"), "scale": EFFECT_ESTIMATES.cells["scale"],
    "n_studies": COUNT, "n_patients": COUNT,
    "theta_median": NUMBER, "theta_lo95": NUMBER, "theta_hi95": NUMBER, "p_reduction": NUMBER, "synthetic": FLAG,
})
"""The main analysis' estimates as a snapshot keeps them (a subset of ``EFFECTS``)."""

SNAPSHOT_INCLUSION = Table("snapshot inclusion", {
    "study_id": TEXT, "status": one_of("included", "excluded"), "reason": TEXT, "rows": COUNT,
})
"""A snapshot's row audit counted per study, status and reason."""

HISTORY_CHANGES = Table("what changed", {
    **_text("previous_snapshot", "current_snapshot"),
    "item": one_of("study", "estimate"), "change": one_of("added", "removed", "edited", "moved", "unchanged"),
    **_text("study_id", "previous_hash", "current_hash", "intervention", "marker"),
    "scale": one_of("", "log_ratio", "degC_difference"),
    "previous_median": OPTIONAL_NUMBER, "current_median": OPTIONAL_NUMBER, "median_shift": OPTIONAL_NUMBER,
    "previous_lo95": OPTIONAL_NUMBER, "current_lo95": OPTIONAL_NUMBER, "lo95_shift": OPTIONAL_NUMBER,
    "previous_hi95": OPTIONAL_NUMBER, "current_hi95": OPTIONAL_NUMBER, "hi95_shift": OPTIONAL_NUMBER,
    "previous_p_reduction": OPTIONAL_NUMBER, "current_p_reduction": OPTIONAL_NUMBER,
    "previous_n_studies": OPTIONAL_COUNT, "current_n_studies": OPTIONAL_COUNT,
    "crossed_p90": FLAG, "crossed_p95": FLAG, "crossed_sign": FLAG, "crossed_single_study": FLAG,
    "conclusions": TEXT,
})
"""The latest snapshot against the one before (results/history/changes.tsv): one row per study
added, removed or edited (its file hashes; the estimate columns empty) and one per estimate of
either snapshot (θ's median and 95% CrI before, now and shifted, on the model scale; the study
columns empty), with the conclusions that crossed a threshold, as flags and in words."""

INCLUSION_HISTORY = Table("inclusion per snapshot", {
    **_text("snapshot", "date"),
    "count": one_of("studies", "studies_added", "studies_edited", "studies_removed",
                    "rows_in", "rows_new", "included", "excluded"),
    "reason": TEXT, "n": COUNT,
})
"""The living inclusion flow (results/history/inclusion.tsv): per snapshot, its studies (and those
added, edited or removed since the snapshot before), the source rows in, those of added or edited
studies (``rows_new``), included, and excluded, one row per reason (``reason`` empty elsewhere)."""
