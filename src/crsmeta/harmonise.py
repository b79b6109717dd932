"""Harmonisation: extracted long form → canonical units, censoring, ASTCT grade sets and names.

Every extracted row leaves this module either in a harmonised table or in the row audit as
excluded with its reason; bad cells raise :class:`InputError` naming the study file, the data
file, the row and the column. The conversions applied are counted for the harmonisation log.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from crsmeta import censoring, grading, tables, units, vocabulary
from crsmeta.errors import InputError, raise_all
from crsmeta.studies import Study, TableSpec
from crsmeta.vocabulary import ChangeScale

TIMEPOINTS = ("pre", "post", "change")
CHANGE_UNITS = {"%": "percent", "percent": "percent", "fold": "fold"}
TRUE_TEXT = {"true", "yes", "1", "y"}
FALSE_TEXT = {"false", "no", "0", "n", ""}
STATISTICS = {"mean": "mean", "median": "median", "not_stated": "not_stated", "": "not_stated"}
SPREAD_TYPES = ("sd", "se", "iqr", "range", "none")
EFFECT_TYPES = ("log_ratio", "percent_change", "difference")
SCALE_EFFECT_TYPES = {ChangeScale.LOG_RATIO: ("log_ratio", "percent_change"), ChangeScale.DIFFERENCE: ("difference",)}
"""The printed effect types a marker's change scale accepts; each is harmonised to the scale itself."""
EFFECT_NUMBERS = ("estimate", "ci_low", "ci_high", "se")

@dataclass
class HarmonisedStudy:
    """The harmonised tables of one study, its row audit and its conversion log."""

    cases: pd.DataFrame
    summaries: pd.DataFrame
    rows: pd.DataFrame
    conversions: pd.DataFrame


@dataclass
class _Log:
    """Collects audit rows and counts conversions while a study is harmonised."""

    audit: list[dict[str, Any]] = field(default_factory=list)
    conversions: Counter = field(default_factory=Counter)

    def record(self, row: pd.Series, status: str, reason: str, marker: str, intervention: str) -> None:
        self.audit.append(
            {
                "study_id": row["study_id"],
                "table": row["table"],
                "source_file": row["source_file"],
                "source_row": row["source_row"],
                "source_column": row["source_column"],
                "marker": marker,
                "intervention": intervention,
                "timepoint": row["timepoint"],
                "status": status,
                "reason": reason,
            }
        )

    def count(self, kind: str, subject: str, source: str, target: str, factor: str) -> None:
        self.conversions[(kind, subject, source, target, factor)] += 1

    def conversion_table(self) -> pd.DataFrame:
        records = [(*key, count) for key, count in sorted(self.conversions.items())]
        return tables.frame(tables.CONVERSIONS, records)


class _Cell:
    """Locates errors of one extracted row at the source cell they came from."""

    def __init__(self, study: Study, spec: TableSpec | None, row: pd.Series) -> None:
        self.study = study
        self.spec = spec
        self.row = row

    def column(self, canonical: str) -> str:
        if canonical == "value":
            return str(self.row["source_column"])
        return self.spec.source_column(canonical) if self.spec is not None else canonical

    def where(self, canonical: str) -> dict[str, Any]:
        """Where the curator finds a field: its key in the study file, or its cell in the table."""
        key = self.spec.study_file_key(canonical, str(self.row["source_column"])) if self.spec else None
        if key is not None:
            return self.study.location(key)
        return {
            "study_file": self.study.path,
            "data_file": self.row["source_file"],
            "row": int(self.row["source_row"]),
            "column": self.column(canonical),
        }

    def error(self, canonical: str, problem: str, expected: str) -> InputError:
        return InputError(problem, **self.where(canonical), expected=expected)

    def call(self, canonical: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a library function, locating any InputError it raises where the field was written."""
        try:
            return function(*args, **kwargs)
        except InputError as error:
            raise error.located(**self.where(canonical)) from None


def harmonise_study(
    study: Study, cases: pd.DataFrame, summaries: pd.DataFrame, *,
    interventions: str | Path = vocabulary.INTERVENTIONS_FILE, markers: str | Path = vocabulary.MARKERS_FILE,
    grade_mapping: str | Path = grading.MAPPING_FILE,
) -> HarmonisedStudy:
    """Harmonise one study's extracted tables with these vocabularies and this grade mapping (the
    workflow passes its declared inputs; the package's own files by default).

    A bad row does not hide the next one: the problems of every row (and a duplicate measurement
    among the rest) are raised together, read as the first (:class:`InputErrors`).
    """
    with vocabulary.files_in_use(interventions, markers), grading.mapping_in_use(grade_mapping):
        return _harmonise_study(study, cases, summaries)


def _harmonise_study(study: Study, cases: pd.DataFrame, summaries: pd.DataFrame) -> HarmonisedStudy:
    log = _Log()
    problems: list[InputError] = []
    harmonised_cases = _harmonise_rows(study, cases, _harmonise_case, log, problems)
    harmonised_summaries = _harmonise_rows(study, summaries, _harmonise_summary, log, problems)
    case_frame = tables.frame(tables.HARMONISED_CASES, harmonised_cases)
    try:
        _refuse_duplicates(study, case_frame)
    except InputError as error:
        problems.append(error)
    raise_all(problems)
    return HarmonisedStudy(
        cases=case_frame,
        summaries=tables.frame(tables.HARMONISED_SUMMARIES, harmonised_summaries),
        rows=tables.frame(tables.AUDIT_ROWS, log.audit),
        conversions=log.conversion_table(),
    )


def _harmonise_rows(
    study: Study, extracted: pd.DataFrame,
    harmonise_row: Callable[[Study, pd.Series, _Log], dict[str, Any] | None],
    log: _Log, problems: list[InputError],
) -> list[dict[str, Any]]:
    """The harmonised records of one extracted table; each bad row's problem goes to ``problems``."""
    records = []
    for _, row in extracted.iterrows():
        try:
            record = harmonise_row(study, row, log)
        except InputError as error:
            problems.append(error)
            continue
        if record is not None:
            records.append(record)
    return records


def _exclusion_reason(cell: _Cell) -> tuple[str | None, str, str]:
    """Why a row stays out of the harmonised table, if it does; with its marker and intervention.

    Curator exclusions and non-modelled markers (vasopressor counts, response rates, ...) are
    excluded before their values are read: such values are often text ("90/40", "four").
    """
    row = cell.row
    marker = cell.call("marker", vocabulary.canonical_marker, row["marker"])
    curator_reason = str(row.get("exclude", "")).strip()
    if curator_reason:
        intervention = _canonical_or_source(row["intervention"], vocabulary.canonical_intervention)
        return f"curator: {curator_reason}", marker, intervention
    info = vocabulary.marker_info(marker)
    if not info.modelled:
        intervention = _canonical_or_source(row["intervention"], vocabulary.canonical_intervention)
        return f"not a modelled marker: {info.reason}", marker, intervention
    intervention = cell.call("intervention", vocabulary.canonical_intervention, row["intervention"])
    if row["table"] == "cases" and cell.spec is not None and cell.spec.layout == "wide" and row["value"] == "":
        return "empty cell in a wide table: not measured", marker, intervention
    return None, marker, intervention


def _canonical_or_source(name: str, canonicalise: Callable[[str], str]) -> str:
    """A name in the audit of an excluded row: canonical where known, else as printed."""
    try:
        return canonicalise(name)
    except InputError:
        return name


def _harmonise_row(
    study: Study, spec: TableSpec | None, row: pd.Series, log: _Log,
    build: Callable[[_Cell, dict[str, Any]], dict[str, Any]],
) -> dict[str, Any] | None:
    """Exclude a row with its reason, or harmonise it with ``build`` and record it as included."""
    cell = _Cell(study, spec, row)
    reason, marker, intervention = _exclusion_reason(cell)
    if reason is not None:
        log.record(row, "excluded", reason, marker, intervention)
        return None
    _count_vocabulary(log, row, marker, intervention)
    shared = {
        "study_id": study.id,
        "population": study.data["population"],
        "design": study.data["design"],
        "intervention": intervention,
        "source_intervention": row["intervention"],
        "co_interventions": _co_interventions(cell),
        "marker": marker,
        "source_marker": row["marker"],
        "timepoint": _timepoint(cell),
        "hours": _optional_float(cell, "hours"),
        "source_value": row["value"],
        "source_unit": row["unit"],
        "digitised": _flag(cell, "digitised"),
        "flags": row["flags"],
        "locator": row["locator"],
        "quote": row["quote"],
        "source_file": row["source_file"],
        "source_row": row["source_row"],
        "synthetic": study.synthetic,
    }
    record = build(cell, shared)
    log.record(row, "included", "", marker, intervention)
    return record


def _harmonise_case(study: Study, row: pd.Series, log: _Log) -> dict[str, Any] | None:
    def build(cell: _Cell, shared: dict[str, Any]) -> dict[str, Any]:
        marker = shared["marker"]
        if shared["timepoint"] == "change":
            value, unit, censoring_kind = _change_value(cell, marker, log)
        else:
            value, unit, censoring_kind = _measured_value(cell, study, marker, "cases", log)
        return shared | {
            "patient_id": row["patient_id"],
            "value": value,
            "unit": unit,
            "censoring": censoring_kind,
            "grading_scale": study.data["grading_scale"],
            "source_grade": row["crs_grade"],
            "astct_grades": _astct_grades(cell, study, log),
            "source_column": row["source_column"],
        }

    return _harmonise_row(study, study.cases, row, log, build)


def _count_vocabulary(log: _Log, row: pd.Series, marker: str, intervention: str) -> None:
    if row["marker"] != marker:
        log.count("vocabulary", "marker", row["marker"], marker, "")
    if row["intervention"] != intervention:
        log.count("vocabulary", "intervention", row["intervention"], intervention, "")


def _timepoint(cell: _Cell) -> str:
    timepoint = str(cell.row["timepoint"]).strip().lower()
    if timepoint not in TIMEPOINTS:
        raise cell.error(
            "timepoint", f"unknown timepoint '{cell.row['timepoint']}'", "one of pre, post, change"
        )
    return timepoint


def _measured_value(
    cell: _Cell, study: Study, marker: str, table: str, log: _Log
) -> tuple[float, str, str]:
    parsed = cell.call("value", censoring.parse_value, cell.row["value"])
    conversion = cell.call(
        "unit", units.conversion_for, marker, cell.row["unit"], extra_factors=study.unit_factors(marker)
    )
    value = float(units.convert(parsed.value, conversion))
    _check_range(cell, study, marker, table, value)
    log.count("unit", marker, conversion.source_unit, conversion.target_unit, conversion.description)
    if parsed.censoring != "none":
        log.count("censoring", marker, cell.row["value"], parsed.censoring, "")
    return value, conversion.target_unit, parsed.censoring


def _check_range(cell: _Cell, study: Study, marker: str, table: str, value: float) -> None:
    column = cell.column("value")
    if study.is_confirmed(table, int(cell.row["source_row"]), column):
        return
    cell.call("value", units.check_plausible, value, marker)


def _change_value(cell: _Cell, marker: str, log: _Log) -> tuple[float, str, str]:
    """A printed per-patient change (% or fold; °C for temperature) on the model's scale."""
    parsed = cell.call("value", censoring.parse_value, cell.row["value"])
    if parsed.censoring != "none":
        raise cell.error("value", f"a censored change '{cell.row['value']}' cannot be used", "an exact change")
    if vocabulary.change_scale(marker) is ChangeScale.DIFFERENCE:
        conversion = _difference_conversion(cell, marker, log)
        return float(units.convert(parsed.value, conversion)), vocabulary.change_unit(marker), "none"
    kind = CHANGE_UNITS.get(str(cell.row["unit"]).strip().lower())
    if kind is None:
        raise cell.error(
            "unit", f"unit '{cell.row['unit']}' is not a unit of change", "'%' (percent change) or 'fold'"
        )
    ratio = 1 + parsed.value / 100 if kind == "percent" else parsed.value
    if ratio <= 0:
        raise cell.error(
            "value", f"change '{cell.row['value']}' {cell.row['unit']} implies a non-positive ratio",
            "a percent change above -100 or a positive fold change",
        )
    log.count("unit", marker, cell.row["unit"], "log_ratio", "log(1 + %/100)" if kind == "percent" else "log(fold)")
    return math.log(ratio), "log_ratio", "none"


def _difference_conversion(cell: _Cell, marker: str, log: _Log) -> units.Conversion:
    """How a printed temperature change (°C, °F, K) becomes a difference in °C, logged."""
    conversion = cell.call("unit", units.conversion_for, marker, cell.row["unit"], kind="difference")
    log.count("unit", marker, conversion.source_unit, vocabulary.change_unit(marker), conversion.description)
    return conversion


def _co_interventions(cell: _Cell) -> str:
    names = cell.call("co_interventions", vocabulary.canonical_co_interventions, cell.row["co_interventions"])
    return ";".join(names)


def _astct_grades(cell: _Cell, study: Study, log: _Log) -> str:
    row = cell.row
    criteria = [row.get("fever", ""), row.get("hypotension", ""), row.get("oxygen", "")]
    scale = study.data["grading_scale"]
    if any(criteria):
        if not all(criteria):
            raise cell.error(
                "fever", "re-grading needs all three criteria (fever, hypotension, oxygen)",
                "fever true|false, hypotension none|fluids|one_pressor|multiple_pressors, "
                "oxygen none|low_flow|high_flow|positive_pressure",
            )
        fever = _flag(cell, "fever")
        grade = cell.call("hypotension", grading.regrade_astct, fever, criteria[1], criteria[2])
        log.count("grade", "ASTCT2019 criteria", f"fever={criteria[0]}, {criteria[1]}, {criteria[2]}", str(grade), "")
        return str(grade)
    if not row["crs_grade"]:
        return ""
    grades = cell.call("crs_grade", grading.astct_grades, scale, row["crs_grade"])
    text = grading.format_grades(grades)
    log.count("grade", scale, str(row["crs_grade"]), text, "")
    return text


def _flag(cell: _Cell, canonical: str) -> bool:
    text = str(cell.row.get(canonical, "")).strip().lower()
    if text in TRUE_TEXT:
        return True
    if text in FALSE_TEXT:
        return False
    raise cell.error(canonical, f"cannot read '{cell.row[canonical]}' as true or false", "true or false")


def _optional_float(cell: _Cell, canonical: str) -> float:
    text = str(cell.row.get(canonical, "")).strip()
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise cell.error(canonical, f"cannot read '{text}' as a number", "a number or an empty cell") from None


def _optional_count(cell: _Cell, canonical: str) -> float:
    value = _optional_float(cell, canonical)
    if not math.isnan(value) and (value < 1 or value != int(value)):
        raise cell.error(canonical, f"'{cell.row[canonical]}' is not a number of patients", "a whole number ≥ 1")
    return value


def _harmonise_summary(study: Study, row: pd.Series, log: _Log) -> dict[str, Any] | None:
    def build(cell: _Cell, shared: dict[str, Any]) -> dict[str, Any]:
        record = shared | {"arm": row["arm"], "n": _optional_count(cell, "n"), "statistic": _statistic(cell)}
        record.update(_p_value(cell))
        if str(row["effect_type"]).strip():
            record.update(_reported_effect(cell, shared["marker"], log))
        else:
            record.update(_summary_statistic(cell, study, shared["marker"], log))
        return record

    return _harmonise_row(study, study.summaries, row, log, build)


def _statistic(cell: _Cell) -> str:
    text = str(cell.row["statistic"]).strip().lower().replace(" ", "_")
    if text not in STATISTICS:
        raise cell.error("statistic", f"unknown statistic '{cell.row['statistic']}'", "mean, median or not_stated")
    return STATISTICS[text]


def _p_value(cell: _Cell) -> dict[str, Any]:
    text = str(cell.row["p_value"]).strip()
    if not text:
        return {"p_value": math.nan, "p_relation": ""}
    parsed = cell.call("p_value", censoring.parse_p_value, text)
    return {"p_value": parsed.value, "p_relation": parsed.relation}


def _summary_statistic(cell: _Cell, study: Study, marker: str, log: _Log) -> dict[str, Any]:
    """A mean or median with its spread, converted to the marker's canonical unit."""
    row = cell.row
    value, unit, censoring_kind = _measured_value(cell, study, marker, "summaries", log)
    if censoring_kind != "none":
        raise cell.error("value", f"a censored summary statistic '{row['value']}' cannot be used", "an exact value")
    spread_type = str(row["spread_type"]).strip().lower() or "none"
    if spread_type not in SPREAD_TYPES:
        raise cell.error("spread_type", f"unknown spread type '{row['spread_type']}'", "sd, se, iqr, range or none")
    absolute = cell.call("unit", units.conversion_for, marker, row["unit"], extra_factors=study.unit_factors(marker))
    difference = cell.call(
        "unit", units.conversion_for, marker, row["unit"], kind="difference", extra_factors=study.unit_factors(marker)
    )
    spread = _converted_optional(cell, "spread", difference)
    low = _converted_optional(cell, "spread_low", absolute)
    high = _converted_optional(cell, "spread_high", absolute)
    _check_spread(cell, spread_type, spread, low, high)
    return {
        "value": value, "unit": unit, "spread_type": spread_type, "spread": spread,
        "spread_low": low, "spread_high": high, "effect_type": "", "estimate": math.nan,
        "ci_low": math.nan, "ci_high": math.nan, "se": math.nan, "source_estimate": "",
        "source_ci_low": "", "source_ci_high": "", "source_effect_type": "",
    }


def _converted_optional(cell: _Cell, canonical: str, conversion: units.Conversion) -> float:
    value = _optional_float(cell, canonical)
    return value if math.isnan(value) else float(units.convert(value, conversion))


def _check_spread(cell: _Cell, spread_type: str, spread: float, low: float, high: float) -> None:
    if spread_type in ("sd", "se") and math.isnan(spread):
        raise cell.error("spread", f"spread_type is '{spread_type}' but no spread is given", "the SD or SE in 'spread'")
    if spread_type in ("iqr", "range") and (math.isnan(low) or math.isnan(high)):
        raise cell.error(
            "spread_low", f"spread_type is '{spread_type}' but its bounds are missing", "spread_low and spread_high"
        )
    if not math.isnan(low) and not math.isnan(high) and low > high:
        raise cell.error("spread_low", "spread_low is above spread_high", "spread_low ≤ spread_high")


def _reported_effect(cell: _Cell, marker: str, log: _Log) -> dict[str, Any]:
    """A directly reported change (log ratio, % change or temperature difference) on the model's
    scale, with the estimate, interval and unit as printed kept beside it."""
    row = cell.row
    effect_type = str(row["effect_type"]).strip().lower()
    if effect_type not in EFFECT_TYPES:
        raise cell.error("effect_type", f"unknown effect type '{row['effect_type']}'", ", ".join(EFFECT_TYPES))
    if cell.row["timepoint"] != "change":
        raise cell.error("timepoint", "a reported effect needs timepoint 'change'", "change")
    scale = vocabulary.change_scale(marker)
    allowed = SCALE_EFFECT_TYPES[scale]
    if effect_type not in allowed:
        raise cell.error(
            "effect_type", f"effect type '{effect_type}' does not fit marker '{marker}'", " or ".join(allowed)
        )
    if math.isnan(_optional_float(cell, "estimate")):
        raise cell.error("estimate", "a reported effect needs its estimate", "a number in 'estimate'")
    if effect_type == "percent_change":
        estimate, ci_low, ci_high, se = _percent_change_as_log_ratio(cell, marker, log)
    elif effect_type == "difference":
        conversion = _difference_conversion(cell, marker, log)
        estimate, ci_low, ci_high, se = (_converted_optional(cell, name, conversion) for name in EFFECT_NUMBERS)
    else:
        estimate, ci_low, ci_high, se = (_optional_float(cell, name) for name in EFFECT_NUMBERS)
    return {
        "value": math.nan, "unit": vocabulary.change_unit(marker),
        "spread_type": "none", "spread": math.nan, "spread_low": math.nan, "spread_high": math.nan,
        "effect_type": scale.value, "estimate": estimate, "ci_low": ci_low, "ci_high": ci_high, "se": se,
        "source_estimate": row["estimate"], "source_ci_low": row["ci_low"], "source_ci_high": row["ci_high"],
        "source_effect_type": effect_type,
    }


def _percent_change_as_log_ratio(cell: _Cell, marker: str, log: _Log) -> tuple[float, float, float, float]:
    """A printed % change and its CI as log(1 + %/100); its unit, if written, must be %."""
    unit = str(cell.row["unit"]).strip()
    if unit and CHANGE_UNITS.get(unit.lower()) != "percent":
        raise cell.error("unit", f"unit '{unit}' does not fit a percent change", "'%' or an empty cell")
    if not math.isnan(_optional_float(cell, "se")):
        raise cell.error("se", "an SE of a percent change cannot be put on the log scale exactly", "a 95% CI instead")
    log.count("unit", marker, "percent_change", "log_ratio", "log(1 + %/100)")
    estimate, ci_low, ci_high = (_percent_to_log_ratio(cell, name) for name in ("estimate", "ci_low", "ci_high"))
    return estimate, ci_low, ci_high, math.nan


def _percent_to_log_ratio(cell: _Cell, canonical: str) -> float:
    percent = _optional_float(cell, canonical)
    if math.isnan(percent):
        return percent
    if percent <= -100:
        raise cell.error(canonical, f"a change of {percent}% implies a non-positive ratio", "a percent change above -100")
    return math.log1p(percent / 100)


def _refuse_duplicates(study: Study, cases: pd.DataFrame) -> None:
    """Two rows for the same patient, marker, timepoint and hours are a transcription error."""
    keys = ["patient_id", "intervention", "marker", "timepoint", "hours"]
    filled = cases.assign(hours=cases["hours"].fillna(-1e18))
    duplicated = filled[filled.duplicated(keys, keep=False)]
    if duplicated.empty:
        return
    first, second = duplicated.iloc[0], duplicated.iloc[1]
    hours = "" if math.isnan(first["hours"]) else f", {first['hours']} h"
    raise InputError(
        f"duplicate measurement: patient '{first['patient_id']}', {first['marker']}, {first['timepoint']}{hours} "
        f"also appears in row {second['source_row']}",
        study_file=study.path,
        data_file=first["source_file"],
        row=int(first["source_row"]),
        column=str(first["source_column"]),
        expected="one value per (patient, marker, timepoint, hours); give distinct hours for repeated measurements",
    )


def combine(parts: list[HarmonisedStudy]) -> HarmonisedStudy:
    """Concatenate the harmonised tables of several studies."""
    def stack(name: str, table: tables.Table) -> pd.DataFrame:
        frames = [getattr(part, name) for part in parts if not getattr(part, name).empty]
        return pd.concat(frames, ignore_index=True) if frames else tables.frame(table)

    conversions = stack("conversions", tables.CONVERSIONS)
    if not conversions.empty:
        keys = [column for column in tables.CONVERSIONS.columns if column != "count"]
        conversions = conversions.groupby(keys, as_index=False, dropna=False)["count"].sum()
    return HarmonisedStudy(
        cases=stack("cases", tables.HARMONISED_CASES),
        summaries=stack("summaries", tables.HARMONISED_SUMMARIES),
        rows=stack("rows", tables.AUDIT_ROWS),
        conversions=conversions,
    )
