"""Each study's tables as a source prints them: values converted to the printed unit by
crsmeta.units. The harmonised tables are the pipeline's own (crsmeta.simulate.pipeline)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from crsmeta import units
from crsmeta.errors import InputError
from crsmeta.extract import CASE_COLUMNS, SUMMARY_COLUMNS
from crsmeta.simulate.spec import CONTROL, SYNTHETIC, SimulationSpec
from crsmeta.simulate.truth import Arm, draw_arm, draw_truth, is_difference
from crsmeta.vocabulary import change_scale


@dataclass
class StudyDraft:
    """One synthetic study: its study-file fields and its source tables as strings."""

    id: str
    design: str
    population: str
    grading_scale: str
    cases: pd.DataFrame | None = None
    case_layout: str = "long"
    measurements: dict[str, dict[str, Any]] = field(default_factory=dict)
    summaries: pd.DataFrame | None = None
    confirmed_values: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SimulatedDataset:
    """The studies to write and the truth they were drawn from."""

    spec: SimulationSpec
    truth: pd.DataFrame
    studies: list[StudyDraft]


# ---------------------------------------------------------------------------------------------
# Number formatting (the source tables are text, as printed)
# ---------------------------------------------------------------------------------------------


def _text(value: float, digits: int = 4) -> str:
    """A number as a paper would print it: 4 significant figures, never in exponent form."""
    return np.format_float_positional(value, precision=digits, unique=False, fractional=False, trim="-")


def _p_text(p: float) -> str:
    """A P-value as printed (``<0.001`` below 0.001)."""
    return "<0.001" if p < 0.001 else _text(p, 2)


# ---------------------------------------------------------------------------------------------
# Printed values: crsmeta.units' conversions
# ---------------------------------------------------------------------------------------------


@functools.cache
def _conversion(marker: str, unit: str, kind: units.Kind) -> units.Conversion:
    """How a canonical value is printed in ``unit``."""
    return units.conversion_from_canonical(marker, unit, kind=kind)


@functools.cache
def _reading(marker: str, unit: str) -> units.Conversion:
    """How harmonise reads a value printed in ``unit`` back in the canonical unit."""
    return units.conversion_for(marker, unit)


def _printed(value: float, marker: str, unit: str, kind: units.Kind = "absolute") -> str:
    """A canonical value as a source prints it in ``unit`` (4 significant figures)."""
    return _text(float(units.convert(value, _conversion(marker, unit, kind))))


CONFIRMATION = (f"{SYNTHETIC}: drawn by crsmeta.simulate from the spec's levels and changes; outside the "
                "plausible range by chance, not by a unit mix-up")


def _confirm_if_implausible(draft: StudyDraft, table: str, row: int, column: str, text: str,
                            marker: str, unit: str) -> None:
    """Confirm a printed value (as a curator would, under ``confirmed_values``) that harmonise,
    reading it by its own conversion, would refuse as outside the marker's plausible range: a
    log-normal draw has no upper bound, and a prior-drawn truth (calibration) can be large."""
    if text.startswith("<"):
        return
    value = float(units.convert(float(text), _reading(marker, unit)))
    try:
        units.check_plausible(value, marker)
    except InputError:
        draft.confirmed_values.append({"table": table, "row": row, "column": column, "reason": CONFIRMATION})


# ---------------------------------------------------------------------------------------------
# Studies
# ---------------------------------------------------------------------------------------------


@dataclass
class _Builder:
    """Accumulates one study's source rows."""

    spec: SimulationSpec
    draft: StudyDraft
    case_rows: list[dict[str, Any]] = field(default_factory=list)
    summary_rows: list[dict[str, Any]] = field(default_factory=list)


def _source_unit(spec: SimulationSpec, marker: str, rng: np.random.Generator, *, cases: bool) -> str:
    choices = tuple(spec.source_units.get(marker, (units.canonical_unit(marker),)))
    if not cases and is_difference(marker):
        choices = tuple(u for u in choices if "F" not in u) or ("°C",)
    return str(choices[rng.integers(len(choices))])


def _case_value(spec: SimulationSpec, marker: str, value: float, unit: str) -> str:
    """The cell text of one measurement; below the LOD, ``<LOD``."""
    lod = spec.lod.get(marker)
    if lod is not None and value < lod:
        return "<" + _printed(lod, marker, unit)
    return _printed(value, marker, unit)


def _add_case_study(
    builder: _Builder, arms: Sequence[Arm], rng: np.random.Generator, *, wide: bool, digitised: bool,
) -> None:
    spec, draft = builder.spec, builder.draft
    printed_units = {arm.marker: _source_unit(spec, arm.marker, rng, cases=True) for arm in arms}
    n = len(arms[0].pre)
    grades = [str(g) for g in rng.integers(3, 5, size=n)] if draft.grading_scale != "not_reported" else [""] * n
    hours = {"pre": 0.0, "post": spec.post_hours}
    wide_rows = [
        {"patient": f"P{k + 1}", "intervention": arms[0].intervention, "crs_grade": grades[k]}
        for k in range(n)
    ]
    for arm in arms:
        for timepoint, values in (("pre", arm.pre), ("post", arm.post)):
            column = f"{arm.marker}_{timepoint}"
            if wide:
                draft.measurements[column] = {
                    "marker": arm.marker, "timepoint": timepoint, "unit": printed_units[arm.marker],
                    "hours": hours[timepoint],
                }
                if digitised:
                    draft.measurements[column]["digitised"] = True
            for k, latent in enumerate(values):
                text = _case_value(spec, arm.marker, float(latent), printed_units[arm.marker])
                if wide:
                    wide_rows[k][column] = text
                    row, source_column = k + 2, column
                else:
                    builder.case_rows.append({
                        "patient": f"P{k + 1}", "intervention": arm.intervention,
                        "marker": arm.marker, "timepoint": timepoint, "hours": _text(hours[timepoint]),
                        "value": text, "unit": printed_units[arm.marker], "crs_grade": grades[k],
                        "digitised": "true" if digitised else "false",
                        "locator": f"{SYNTHETIC} Table 1", "quote": SYNTHETIC,
                    })
                    row, source_column = len(builder.case_rows) + 1, "value"
                _confirm_if_implausible(draft, "cases", row, source_column, text, arm.marker, printed_units[arm.marker])
    if wide:
        draft.case_layout = "wide"
        draft.cases = pd.DataFrame(wide_rows, dtype=str)
    else:
        draft.cases = pd.DataFrame(builder.case_rows, columns=CASE_COLUMNS, dtype=str).fillna("")


def _summary_row(
    builder: _Builder, *, arm_name: str, intervention: str, marker: str, timepoint: str,
    hours: float | None, n: int, unit: str, source: Mapping[str, str],
) -> None:
    """Append one summary row as the source prints it."""
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row.update(arm=arm_name, intervention=intervention, marker=marker, timepoint=timepoint,
               hours="" if hours is None else _text(hours), n=str(n), unit=unit,
               locator=f"{SYNTHETIC} Table 2", quote=SYNTHETIC, **source)
    builder.summary_rows.append(row)
    if timepoint != "change":
        _confirm_if_implausible(builder.draft, "summaries", len(builder.summary_rows) + 1, "value", row["value"],
                                marker, unit)


# Descriptive kinds: the statistic printed per side, its spread, and how the post row prints
# the before/after P value ("usual": exact, or ``<0.001`` below 0.001; "exact": always exact;
# "bound": only whether it is below 0.001, 0.01 or 0.05, else ``>0.05``; None: not printed).
_DESCRIPTIVE = {
    "mean_sd": ("mean", "sd", "usual"),
    "mean_se": ("mean", "se", None),
    "mean_p": ("mean", "none", "usual"),
    "mean_p_exact": ("mean", "none", "exact"),
    "mean_p_bound": ("mean", "none", "bound"),
    "mean_only": ("mean", "none", None),
    "median_iqr": ("median", "iqr", "usual"),
    "median_range": ("median", "range", None),
    "median_only": ("median", "none", None),
}
_P_BOUNDS = (0.001, 0.01, 0.05)


def p_bound_text(p: float) -> str:
    """A P value printed as a bound only: the smallest of ``<0.001``, ``<0.01``, ``<0.05`` it
    lies below, else ``>0.05``."""
    below = [bound for bound in _P_BOUNDS if p < bound]
    return f"<{_text(below[0], 1)}" if below else f">{_text(_P_BOUNDS[-1], 1)}"


def _printed_p(arm: Arm, statistic: str, style: str | None) -> str | None:
    """The before/after P value as the post row prints it: a paired t test of means, a Wilcoxon
    signed-rank test of medians, on the raw scale, as a paper would run them."""
    if style is None:
        return None
    test = stats.wilcoxon if statistic == "median" else stats.ttest_rel
    p_value = float(test(arm.post, arm.pre).pvalue)
    return {"usual": _p_text, "exact": lambda p: _text(p, 2), "bound": p_bound_text}[style](p_value)


def _descriptive_source(values: np.ndarray, marker: str, unit: str, statistic: str, spread: str) -> dict[str, str]:
    """One side's printed statistic and spread (SD, SE of the mean, IQR, range or none)."""
    if statistic == "median" and spread == "none":
        return {"statistic": "median", "value": _printed(float(np.median(values)), marker, unit), "spread_type": spread}
    if statistic == "median":
        quantiles = [0, 50, 100] if spread == "range" else [25, 50, 75]
        low, centre, high = (_printed(float(q), marker, unit) for q in np.percentile(values, quantiles))
        return {"statistic": "median", "value": centre, "spread_type": spread, "spread_low": low, "spread_high": high}
    source = {"statistic": "mean", "value": _printed(float(np.mean(values)), marker, unit), "spread_type": spread}
    if spread in ("sd", "se"):
        sd = float(np.std(values, ddof=1)) / (np.sqrt(len(values)) if spread == "se" else 1.0)
        source["spread"] = _printed(sd, marker, unit, "difference")
    return source


def _add_descriptive_rows(
    builder: _Builder, arm: Arm, arm_name: str, rng: np.random.Generator, *, kind: str,
) -> None:
    """Pre and post rows of one arm as ``kind`` (:data:`_DESCRIPTIVE`) prints them; a ``mean_sd``
    arm drops its SDs with the spec's ``frac_missing_sd`` (then prints its P value), and
    otherwise prints its P value half the time."""
    spec, marker = builder.spec, arm.marker
    unit = _source_unit(spec, marker, rng, cases=False)
    n = len(arm.pre)
    statistic, spread, p_style = _DESCRIPTIVE[kind]
    if kind == "mean_sd" and rng.random() < spec.frac_missing_sd:
        spread = "none"
    p_text = _printed_p(arm, statistic, p_style)
    for timepoint, values in (("pre", arm.pre), ("post", arm.post)):
        hours = 0.0 if timepoint == "pre" else spec.post_hours
        source = _descriptive_source(values, marker, unit, statistic, spread)
        if (timepoint == "post" and p_text is not None
                and (kind != "mean_sd" or spread == "none" or rng.random() < 0.5)):
            source.update(p_value=p_text)
        _summary_row(builder, arm_name=arm_name, intervention=arm.intervention, marker=arm.marker,
                     timepoint=timepoint, hours=hours, n=n, unit=unit, source=source)


def _add_effect_row(builder: _Builder, arm: Arm, arm_name: str, *, kind: str) -> None:
    """A reported change: % change of means only (``pct_change``), or a mean log ratio (°C
    difference) with its SE (``effect_se``) or its 95% paired-t confidence interval (``effect_ci``)."""
    n = len(arm.pre)
    if kind == "pct_change":
        pct = _text(100.0 * (np.mean(arm.post) / np.mean(arm.pre) - 1.0), 3)
        source = {"effect_type": "percent_change", "estimate": pct, "statistic": "mean"}
        unit = "%"
    else:
        difference = is_difference(arm.marker)
        changes = arm.post - arm.pre if difference else np.log(arm.post / arm.pre)
        mean, se = float(np.mean(changes)), float(np.std(changes, ddof=1) / np.sqrt(n))
        source = {"effect_type": str(change_scale(arm.marker)), "estimate": _text(mean, 3)}
        if kind == "effect_ci":
            half_width = float(stats.t.ppf(0.975, df=n - 1)) * se
            source.update(ci_low=_text(mean - half_width, 3), ci_high=_text(mean + half_width, 3))
        else:
            source.update(se=_text(se, 3))
        unit = "°C" if difference else "log_ratio"
    _summary_row(builder, arm_name=arm_name, intervention=arm.intervention, marker=arm.marker,
                 timepoint="change", hours=builder.spec.post_hours, n=n, unit=unit, source=source)


# ---------------------------------------------------------------------------------------------
# The study plan
# ---------------------------------------------------------------------------------------------

_PLAN = (
    ("case_report", "n_case_reports", "case_report"),
    ("case_series", "n_case_series", "case_series"),
    ("cohort_mean_sd", "n_cohorts_mean_sd", "cohort"),
    ("cohort_mean_p", "n_cohorts_mean_p", "cohort"),
    ("cohort_median_iqr", "n_cohorts_median_iqr", "cohort"),
    ("cohort_pct_change", "n_cohorts_pct_change", "cohort"),
    ("cohort_effect_se", "n_cohorts_effect_se", "cohort"),
    ("trial", "n_trials", "trial"),
    ("cohort_mean_se", "n_cohorts_mean_se", "cohort"),
    ("cohort_mean_only", "n_cohorts_mean_only", "cohort"),
    ("cohort_mean_p_exact", "n_cohorts_mean_p_exact", "cohort"),
    ("cohort_mean_p_bound", "n_cohorts_mean_p_bound", "cohort"),
    ("cohort_median_range", "n_cohorts_median_range", "cohort"),
    ("cohort_effect_ci", "n_cohorts_effect_ci", "cohort"),
    ("cohort_median_only", "n_cohorts_median_only", "cohort"),
)
_EFFECT_KINDS = ("cohort_pct_change", "cohort_effect_se", "cohort_effect_ci")


def _study_markers(spec: SimulationSpec, rng: np.random.Generator, kind: str) -> list[str]:
    markers = [m for m in spec.markers if not (kind == "cohort_pct_change" and is_difference(m))]
    low, high = spec.markers_per_study
    k = int(min(len(markers), rng.integers(low, high + 1)))
    chosen = set(rng.choice(markers, size=k, replace=False).tolist())
    return [m for m in markers if m in chosen]


def _study_size(spec: SimulationSpec, rng: np.random.Generator, kind: str) -> int:
    if kind == "case_report":
        return 1
    low, high = spec.case_series_size if kind == "case_series" else spec.cohort_size
    return int(rng.integers(low, high + 1))


@dataclass
class _StudyEffect:
    """A study's effect u[s, m] per marker, in units of tau[m], from each marker's own normal draw;
    with a shared study effect (the spec's Misspecification) the first marker's draw for every
    marker. The later markers draw theirs all the same, so that the rest of the dataset takes the
    same random numbers (and keeps its design) either way."""

    shared: bool
    first: float | None = None

    def __call__(self, drawn: float) -> float:
        if self.first is None:
            self.first = drawn
        return self.first if self.shared else drawn


def _build_study(
    spec: SimulationSpec, truth: pd.DataFrame, rng: np.random.Generator,
    kind: str, design: str, index: int, intervention: str,
) -> _Builder:
    study_id = f"syn_{kind}_{index:02d}"
    population = str(spec.populations[rng.integers(len(spec.populations))])
    grading = "ASTCT2019" if population.endswith("_crs") and design in ("case_report", "case_series") else "not_reported"
    builder = _Builder(spec, StudyDraft(study_id, design, population, grading))
    markers = _study_markers(spec, rng, kind)
    n = _study_size(spec, rng, kind)
    study_effect = _StudyEffect(shared=spec.misspecification.shared_study_effect)
    if design in ("case_report", "case_series"):
        arms = [draw_arm(spec, truth, rng, intervention, marker, n, study_effect(rng.normal()))
                for marker in markers]
        wide = kind == "case_series" and index % 2 == 1
        digitised = kind == "case_series" and rng.random() < spec.frac_digitised_series
        _add_case_study(builder, arms, rng, wide=wide, digitised=digitised)
        return builder
    arm_specs = [("intervention", intervention)] + ([("control", CONTROL)] if kind == "trial" else [])
    for marker in markers:
        study_shift = study_effect(rng.normal())
        for arm_name, arm_intervention in arm_specs:
            arm = draw_arm(spec, truth, rng, arm_intervention, marker, n, study_shift)
            label = arm_name if kind == "trial" else ""
            if kind in _EFFECT_KINDS:
                _add_effect_row(builder, arm, label, kind=kind.removeprefix("cohort_"))
            else:
                descriptive = "mean_sd" if kind == "trial" else kind.removeprefix("cohort_")
                _add_descriptive_rows(builder, arm, label, rng, kind=descriptive)
    builder.draft.summaries = pd.DataFrame(builder.summary_rows, columns=SUMMARY_COLUMNS, dtype=str)
    return builder


def simulate_dataset(spec: SimulationSpec) -> SimulatedDataset:
    """Simulate the studies of a spec in memory: their source tables and the truth.

    :func:`~crsmeta.simulate.files.write_study_files` writes them;
    :func:`~crsmeta.simulate.pipeline.run_pipeline` makes the workflow's tables of them.
    """
    rng = np.random.default_rng(spec.seed)
    truth = draw_truth(spec, rng)
    treatments = [i for i in spec.interventions if i != CONTROL] or list(spec.interventions)
    order = list(rng.permutation(treatments))
    builders: list[_Builder] = []
    for kind, count_field, design in _PLAN:
        for index in range(1, getattr(spec, count_field) + 1):
            intervention = str(order[len(builders) % len(order)])
            builders.append(_build_study(spec, truth, rng, kind, design, index, intervention))
    return SimulatedDataset(spec, truth, [b.draft for b in builders])
