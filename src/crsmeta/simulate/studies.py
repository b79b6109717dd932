"""Each study's tables as a source prints them, and the harmonised rows extract → harmonise make
of them: values converted to the printed unit and read back by crsmeta.units, as harmonise does."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from crsmeta import tables, units
from crsmeta.extract import CASE_COLUMNS, SUMMARY_COLUMNS
from crsmeta.simulate.spec import CONTROL, SYNTHETIC, SimulationSpec
from crsmeta.simulate.truth import Arm, draw_arm, draw_truth, is_difference
from crsmeta.vocabulary import change_scale, change_unit


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


@dataclass
class SimulatedDataset:
    """Harmonised-format tables, the truth they were drawn from, and the studies to write."""

    spec: SimulationSpec
    cases: pd.DataFrame
    summaries: pd.DataFrame
    truth: pd.DataFrame
    studies: list[StudyDraft]


# ---------------------------------------------------------------------------------------------
# Number formatting (the source tables are text, as printed)
# ---------------------------------------------------------------------------------------------


def _text(value: float, digits: int = 4) -> str:
    """A number as a paper would print it: 4 significant figures, never in exponent form."""
    return np.format_float_positional(value, precision=digits, unique=False, fractional=False, trim="-")


def _p_text(p: float) -> tuple[str, float, str]:
    """Printed P-value, its number and relation (``<0.001`` → 0.001, ``<``)."""
    if p < 0.001:
        return "<0.001", 0.001, "<"
    text = _text(p, 2)
    return text, float(text), "="


# ---------------------------------------------------------------------------------------------
# Printed values: crsmeta.units' conversions, as harmonise reads them back
# ---------------------------------------------------------------------------------------------


@functools.cache
def _conversions(marker: str, unit: str, kind: units.Kind) -> tuple[units.Conversion, units.Conversion]:
    """How a canonical value is printed in ``unit``, and how harmonise reads the print back."""
    return (units.conversion_from_canonical(marker, unit, kind=kind),
            units.conversion_for(marker, unit, kind=kind))


def _printed(value: float, marker: str, unit: str, kind: units.Kind = "absolute") -> str:
    """A canonical value as a source prints it in ``unit`` (4 significant figures)."""
    return _text(float(units.convert(value, _conversions(marker, unit, kind)[0])))


def _read_back(text: str, marker: str, unit: str, kind: units.Kind = "absolute") -> float:
    """A printed number in ``unit`` back in the canonical unit, by harmonise's conversion."""
    return float(units.convert(float(text), _conversions(marker, unit, kind)[1]))


# ---------------------------------------------------------------------------------------------
# Studies
# ---------------------------------------------------------------------------------------------


@dataclass
class _Builder:
    """Accumulates one study's source rows and the matching harmonised rows."""

    spec: SimulationSpec
    draft: StudyDraft
    source_file: str = ""
    case_rows: list[dict[str, Any]] = field(default_factory=list)
    summary_rows: list[dict[str, Any]] = field(default_factory=list)
    harmonised_cases: list[dict[str, Any]] = field(default_factory=list)
    harmonised_summaries: list[dict[str, Any]] = field(default_factory=list)

    def common(self) -> dict[str, Any]:
        return {
            "study_id": self.draft.id, "population": self.draft.population,
            "design": self.draft.design, "co_interventions": "", "flags": "",
            "locator": f"{SYNTHETIC} Table 1", "quote": SYNTHETIC, "synthetic": True,
        }


def _source_unit(spec: SimulationSpec, marker: str, rng: np.random.Generator, *, cases: bool) -> str:
    choices = tuple(spec.source_units.get(marker, (units.canonical_unit(marker),)))
    if not cases and is_difference(marker):
        choices = tuple(u for u in choices if "F" not in u) or ("°C",)
    return str(choices[rng.integers(len(choices))])


def _case_value(
    spec: SimulationSpec, marker: str, value: float, unit: str,
) -> tuple[str, float, str]:
    """(cell text, canonical value, censoring) of one measurement; below the LOD → ``<LOD``."""
    lod = spec.lod.get(marker)
    if lod is not None and value < lod:
        limit = _printed(lod, marker, unit)
        return "<" + limit, _read_back(limit, marker, unit), "left"
    text = _printed(value, marker, unit)
    return text, _read_back(text, marker, unit), "none"


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
                text, value, censoring = _case_value(spec, arm.marker, float(latent), printed_units[arm.marker])
                if wide:
                    wide_rows[k][column] = text
                    row_number, source_column = k + 2, column
                else:
                    builder.case_rows.append({
                        "patient": f"P{k + 1}", "intervention": arm.intervention,
                        "marker": arm.marker, "timepoint": timepoint, "hours": _text(hours[timepoint]),
                        "value": text, "unit": printed_units[arm.marker], "crs_grade": grades[k],
                        "digitised": "true" if digitised else "false",
                        "locator": f"{SYNTHETIC} Table 1", "quote": SYNTHETIC,
                    })
                    row_number, source_column = len(builder.case_rows) + 1, "value"
                builder.harmonised_cases.append({
                    **builder.common(), "patient_id": f"P{k + 1}", "intervention": arm.intervention,
                    "marker": arm.marker, "timepoint": timepoint, "hours": hours[timepoint],
                    "value": value, "unit": units.canonical_unit(arm.marker), "censoring": censoring,
                    "source_value": text, "source_unit": printed_units[arm.marker],
                    "source_marker": arm.marker, "source_intervention": arm.intervention,
                    "grading_scale": draft.grading_scale, "source_grade": grades[k],
                    "astct_grades": grades[k] if draft.grading_scale == "ASTCT2019" else "",
                    "digitised": digitised, "source_file": builder.source_file,
                    "source_row": row_number, "source_column": source_column,
                })
    if wide:
        draft.case_layout = "wide"
        draft.cases = pd.DataFrame(wide_rows, dtype=str)
    else:
        draft.cases = pd.DataFrame(builder.case_rows, columns=CASE_COLUMNS, dtype=str).fillna("")


def _summary_row(
    builder: _Builder, *, arm_name: str, intervention: str, marker: str, timepoint: str,
    hours: float | None, n: int, unit: str, source: Mapping[str, str], canonical: Mapping[str, Any],
) -> None:
    """Append one summary row: its source text and its harmonised (canonical) counterpart."""
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row.update(arm=arm_name, intervention=intervention, marker=marker, timepoint=timepoint,
               hours="" if hours is None else _text(hours), n=str(n), unit=unit,
               locator=f"{SYNTHETIC} Table 2", quote=SYNTHETIC, **source)
    builder.summary_rows.append(row)
    harmonised = _blank_summary()
    harmonised.update(builder.common())
    harmonised.update(
        arm=arm_name, intervention=intervention, source_intervention=intervention, marker=marker,
        source_marker=marker, timepoint=timepoint, hours=np.nan if hours is None else hours,
        n=float(n), statistic=source.get("statistic", "not_stated"), spread_type=source.get("spread_type", "none"),
        p_relation="", effect_type="", source_value=source.get("value", ""),
        source_estimate=source.get("estimate", ""), source_unit=unit,
        source_effect_type=source.get("effect_type", ""), digitised=False,
        locator=f"{SYNTHETIC} Table 2", source_file=builder.source_file,
        source_row=len(builder.summary_rows) + 1,
    )
    harmonised.update(canonical)
    builder.harmonised_summaries.append(harmonised)


def _blank_summary() -> dict[str, Any]:
    """A harmonised summary row as harmonise leaves what a row does not give: text empty, numbers missing."""
    return {name: "" if cell.dtype == "str" else np.nan for name, cell in tables.HARMONISED_SUMMARIES.cells.items()}


def _add_descriptive_rows(
    builder: _Builder, arm: Arm, arm_name: str, rng: np.random.Generator, *, kind: str,
) -> None:
    """Pre and post rows of one arm: mean±SD, mean with P only, or median with IQR."""
    spec, marker = builder.spec, arm.marker
    unit = _source_unit(spec, marker, rng, cases=False)
    n = len(arm.pre)
    drop_sd = kind == "mean_p" or (kind == "mean_sd" and rng.random() < spec.frac_missing_sd)
    if kind == "median_iqr":
        p_value = stats.wilcoxon(arm.post, arm.pre).pvalue
    else:
        p_value = stats.ttest_rel(arm.post, arm.pre).pvalue
    p_text, p_number, p_relation = _p_text(float(p_value))
    for timepoint, values in (("pre", arm.pre), ("post", arm.post)):
        hours = 0.0 if timepoint == "pre" else spec.post_hours
        source: dict[str, str] = {}
        canonical: dict[str, Any] = {"unit": units.canonical_unit(marker)}
        if kind == "median_iqr":
            low, centre, high = (_printed(float(q), marker, unit) for q in np.percentile(values, [25, 50, 75]))
            source.update(statistic="median", value=centre, spread_type="iqr", spread_low=low, spread_high=high)
            canonical.update(value=_read_back(centre, marker, unit), spread_low=_read_back(low, marker, unit),
                             spread_high=_read_back(high, marker, unit))
        else:
            centre = _printed(float(np.mean(values)), marker, unit)
            source.update(statistic="mean", value=centre, spread_type="none")
            canonical.update(value=_read_back(centre, marker, unit))
            if not drop_sd:
                sd = _printed(float(np.std(values, ddof=1)), marker, unit, "difference")
                source.update(spread_type="sd", spread=sd)
                canonical.update(spread=_read_back(sd, marker, unit, "difference"))
        if timepoint == "post" and (kind != "mean_sd" or drop_sd or rng.random() < 0.5):
            source.update(p_value=p_text)
            canonical.update(p_value=p_number, p_relation=p_relation)
        _summary_row(builder, arm_name=arm_name, intervention=arm.intervention, marker=arm.marker,
                     timepoint=timepoint, hours=hours, n=n, unit=unit, source=source, canonical=canonical)


def _add_effect_row(builder: _Builder, arm: Arm, arm_name: str, *, kind: str) -> None:
    """A reported change: % change of means only (``pct_change``) or a mean log ratio with SE."""
    n = len(arm.pre)
    if kind == "pct_change":
        pct = _text(100.0 * (np.mean(arm.post) / np.mean(arm.pre) - 1.0), 3)
        source = {"effect_type": "percent_change", "estimate": pct, "statistic": "mean"}
        canonical = {"effect_type": "log_ratio", "estimate": float(np.log1p(float(pct) / 100.0)),
                     "unit": "log_ratio"}
        unit = "%"
    else:
        difference = is_difference(arm.marker)
        changes = arm.post - arm.pre if difference else np.log(arm.post / arm.pre)
        estimate = _text(float(np.mean(changes)), 3)
        se = _text(float(np.std(changes, ddof=1) / np.sqrt(n)), 3)
        effect_type = str(change_scale(arm.marker))
        source = {"effect_type": effect_type, "estimate": estimate, "se": se}
        canonical = {"effect_type": effect_type, "estimate": float(estimate), "se": float(se),
                     "unit": change_unit(arm.marker)}
        unit = "°C" if difference else "log_ratio"
    canonical["source_effect_type"] = source["effect_type"]
    _summary_row(builder, arm_name=arm_name, intervention=arm.intervention, marker=arm.marker,
                 timepoint="change", hours=builder.spec.post_hours, n=n, unit=unit,
                 source=source, canonical=canonical)


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
)


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


def _build_study(
    spec: SimulationSpec, truth: pd.DataFrame, rng: np.random.Generator,
    kind: str, design: str, index: int, intervention: str, out_rel: str,
) -> _Builder:
    study_id = f"syn_{kind}_{index:02d}"
    population = str(spec.populations[rng.integers(len(spec.populations))])
    grading = "ASTCT2019" if population.endswith("_crs") and design in ("case_report", "case_series") else "not_reported"
    builder = _Builder(spec, StudyDraft(study_id, design, population, grading))
    markers = _study_markers(spec, rng, kind)
    n = _study_size(spec, rng, kind)
    if design in ("case_report", "case_series"):
        builder.source_file = f"{out_rel}/literature/{study_id}/cases.csv"
        arms = [draw_arm(spec, truth, rng, intervention, m, n, rng.normal()) for m in markers]
        wide = kind == "case_series" and index % 2 == 1
        digitised = kind == "case_series" and rng.random() < spec.frac_digitised_series
        _add_case_study(builder, arms, rng, wide=wide, digitised=digitised)
        return builder
    builder.source_file = f"{out_rel}/literature/{study_id}/summaries.csv"
    arm_specs = [("intervention", intervention)] + ([("control", CONTROL)] if kind == "trial" else [])
    for marker in markers:
        study_shift = rng.normal()
        for arm_name, arm_intervention in arm_specs:
            arm = draw_arm(spec, truth, rng, arm_intervention, marker, n, study_shift)
            label = arm_name if kind == "trial" else ""
            if kind in ("cohort_pct_change", "cohort_effect_se"):
                _add_effect_row(builder, arm, label, kind=kind.removeprefix("cohort_"))
            else:
                descriptive = "mean_sd" if kind == "trial" else kind.removeprefix("cohort_")
                _add_descriptive_rows(builder, arm, label, rng, kind=descriptive)
    builder.draft.summaries = pd.DataFrame(builder.summary_rows, columns=SUMMARY_COLUMNS, dtype=str)
    return builder


def simulate_dataset(spec: SimulationSpec, out_rel: str = "results/demo") -> SimulatedDataset:
    """Simulate the studies of a spec in memory: harmonised cases and summaries plus the truth.

    ``out_rel`` is the directory (relative to the project) the study files would be written to;
    it only fills the ``source_file`` columns so they match :func:`write_study_files`.
    """
    rng = np.random.default_rng(spec.seed)
    truth = draw_truth(spec, rng)
    treatments = [i for i in spec.interventions if i != CONTROL] or list(spec.interventions)
    order = list(rng.permutation(treatments))
    builders: list[_Builder] = []
    for kind, count_field, design in _PLAN:
        for index in range(1, getattr(spec, count_field) + 1):
            intervention = str(order[len(builders) % len(order)])
            builders.append(_build_study(spec, truth, rng, kind, design, index, intervention, out_rel))
    cases = tables.frame(tables.HARMONISED_CASES, [r for b in builders for r in b.harmonised_cases])
    summaries = tables.frame(tables.HARMONISED_SUMMARIES, [r for b in builders for r in b.harmonised_summaries])
    return SimulatedDataset(spec, cases, summaries, truth, [b.draft for b in builders])
