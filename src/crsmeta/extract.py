"""Extraction: a study's source tables (long or wide, CSV/TSV/XLSX) → the extracted long form.

Nothing is converted here: every cell stays the string it was in the source, with the row and
column it came from, so that harmonisation can name the exact cell when something is wrong.
Every source column must be read, mapped, or listed under ``ignored_columns``; an unexpected
column is an error rather than something dropped unseen.
"""

from __future__ import annotations

from typing import Any, Iterable

import pandas as pd

from crsmeta.errors import InputError
from crsmeta.io import read_table
from crsmeta.studies import Study, TableSpec

ROW_LEVEL_CASE_COLUMNS = (
    "patient", "intervention", "co_interventions", "crs_grade", "fever", "hypotension",
    "oxygen", "locator", "quote", "digitised", "flags", "exclude",
)
MEASUREMENT_COLUMNS = ("marker", "timepoint", "hours", "value", "unit")
CASE_COLUMNS = ROW_LEVEL_CASE_COLUMNS + MEASUREMENT_COLUMNS
REQUIRED_LONG_CASE_COLUMNS = ("patient", "intervention", "marker", "timepoint", "value", "unit")
REQUIRED_WIDE_CASE_COLUMNS = ("patient", "intervention")

SUMMARY_COLUMNS = (
    "arm", "intervention", "co_interventions", "marker", "timepoint", "hours", "n", "statistic",
    "value", "unit", "spread_type", "spread", "spread_low", "spread_high", "p_value",
    "effect_type", "estimate", "ci_low", "ci_high", "se", "locator", "quote", "digitised",
    "flags", "exclude",
)
REQUIRED_SUMMARY_COLUMNS = ("intervention", "marker", "timepoint")

PROVENANCE_COLUMNS = ("study_id", "table", "source_file", "source_row", "source_column")
EXTRACTED_CASE_COLUMNS = PROVENANCE_COLUMNS + (
    "patient_id", "intervention", "co_interventions", "marker", "timepoint", "hours", "value",
    "unit", "crs_grade", "fever", "hypotension", "oxygen", "locator", "quote", "digitised",
    "flags", "exclude",
)
EXTRACTED_SUMMARY_COLUMNS = PROVENANCE_COLUMNS + SUMMARY_COLUMNS


def extract_cases(study: Study) -> pd.DataFrame:
    """The study's case table in extracted long form (empty with headers if it has none)."""
    spec = study.cases
    if spec is None:
        return pd.DataFrame(columns=EXTRACTED_CASE_COLUMNS)
    source = _read_source(study, spec)
    if spec.layout == "wide":
        rows = _melt_wide(study, spec, source)
    else:
        rows = _read_long(study, spec, source, CASE_COLUMNS, REQUIRED_LONG_CASE_COLUMNS)
    frame = pd.DataFrame(rows, columns=EXTRACTED_CASE_COLUMNS)
    return frame


def extract_summaries(study: Study) -> pd.DataFrame:
    """The study's summary table in extracted long form (empty with headers if it has none)."""
    spec = study.summaries
    if spec is None:
        return pd.DataFrame(columns=EXTRACTED_SUMMARY_COLUMNS)
    source = _read_source(study, spec)
    rows = _read_long(study, spec, source, SUMMARY_COLUMNS, REQUIRED_SUMMARY_COLUMNS)
    return pd.DataFrame(rows, columns=EXTRACTED_SUMMARY_COLUMNS)


def _read_source(study: Study, spec: TableSpec) -> pd.DataFrame:
    try:
        source = read_table(spec.file, sheet=spec.sheet)
    except InputError as error:
        raise error.located(study_file=study.path, data_file=spec.relative_file) from None
    except (ValueError, KeyError, OSError) as error:
        raise InputError(
            f"cannot read the table ({error})",
            study_file=study.path,
            data_file=spec.relative_file,
            expected="a readable CSV, TSV or XLSX table with a header row",
        ) from error
    if source.empty:
        raise InputError(
            "the table has no data rows",
            study_file=study.path,
            data_file=spec.relative_file,
            row=2,
            expected="at least one data row below the header (remove the table from the study file if it has none)",
        )
    return source


def _check_columns(
    study: Study,
    spec: TableSpec,
    source: pd.DataFrame,
    readable: Iterable[str],
    required: Iterable[str],
    extra_known: Iterable[str] = (),
) -> dict[str, str]:
    """Map canonical column → source column, refusing missing required and unknown columns."""
    present = {
        canonical: spec.source_column(canonical)
        for canonical in readable
        if spec.source_column(canonical) in source.columns
    }
    for canonical in required:
        if canonical not in present and canonical not in spec.constants:
            raise _header_error(
                study, spec, spec.source_column(canonical),
                f"required column '{spec.source_column(canonical)}' is missing",
                f"a column '{spec.source_column(canonical)}' holding '{canonical}' "
                f"(or a mapping under {spec.kind}.columns, or a value under {spec.kind}.constants)",
            )
    known = set(present.values()) | set(spec.ignored_columns) | set(extra_known)
    for column in source.columns:
        if column not in known:
            raise _header_error(
                study, spec, column,
                f"unexpected column '{column}'",
                f"one of the {spec.kind} columns ({', '.join(readable)}), a mapping under "
                f"{spec.kind}.columns, a measurement (wide layout), or a name under {spec.kind}.ignored_columns",
            )
    return present


def _header_error(study: Study, spec: TableSpec, column: str, problem: str, expected: str) -> InputError:
    """An error about the table's header row (row 1): a missing or unexpected column."""
    return InputError(
        problem, study_file=study.path, data_file=spec.relative_file, row=1, column=column, expected=expected
    )


def _cell(row: pd.Series, present: dict[str, str], spec: TableSpec, canonical: str) -> str:
    """A canonical field of one source row: the column if the table has it, else the constant."""
    if canonical in present:
        return str(row[present[canonical]])
    constant = spec.constants.get(canonical, "")
    return _constant_text(constant)


def _constant_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _provenance(study: Study, spec: TableSpec, row_number: int, column: str) -> dict[str, Any]:
    return {
        "study_id": study.id,
        "table": spec.kind,
        "source_file": spec.relative_file,
        "source_row": row_number,
        "source_column": column,
    }


def _read_long(
    study: Study,
    spec: TableSpec,
    source: pd.DataFrame,
    readable: tuple[str, ...],
    required: tuple[str, ...],
) -> list[dict[str, Any]]:
    present = _check_columns(study, spec, source, readable, required)
    value_column = present.get("value", "value")
    rows = []
    for row_number, row in source.iterrows():
        record = _provenance(study, spec, int(row_number), value_column)
        record.update({canonical: _cell(row, present, spec, canonical) for canonical in readable})
        if "patient" in record:
            record["patient_id"] = record.pop("patient")
        rows.append(record)
    return rows


def _melt_wide(study: Study, spec: TableSpec, source: pd.DataFrame) -> list[dict[str, Any]]:
    """One extracted row per measurement cell of a wide table (one patient per row)."""
    if not spec.measurements:
        raise InputError(
            "a wide table needs 'measurements' in the study file",
            study_file=study.path,
            data_file=spec.relative_file,
            column="cases.measurements",
            expected="a mapping of source column → {marker, timepoint, unit, hours}",
        )
    present = _check_columns(
        study, spec, source, ROW_LEVEL_CASE_COLUMNS, REQUIRED_WIDE_CASE_COLUMNS,
        extra_known=spec.measurements.keys(),
    )
    for column in spec.measurements:
        if column not in source.columns:
            raise _header_error(
                study, spec, column,
                f"measurement column '{column}' is missing",
                "every column listed under cases.measurements to exist in the table",
            )
    rows = []
    for row_number, row in source.iterrows():
        shared = {canonical: _cell(row, present, spec, canonical) for canonical in ROW_LEVEL_CASE_COLUMNS}
        shared["patient_id"] = shared.pop("patient")
        for column, meaning in spec.measurements.items():
            record = _provenance(study, spec, int(row_number), column)
            record.update(shared)
            record.update(
                marker=str(meaning["marker"]),
                timepoint=str(meaning["timepoint"]),
                unit=str(meaning["unit"]),
                hours=_constant_text(meaning.get("hours", "")),
                value=str(row[column]),
            )
            if "locator" in meaning:
                record["locator"] = str(meaning["locator"])
            if "digitised" in meaning:
                record["digitised"] = _constant_text(meaning["digitised"])
            rows.append(record)
    return rows
