"""Extraction: a study's source tables (long or wide, CSV/TSV/XLSX) → the extracted long form.

Nothing is converted here: every cell stays the string it was in the source, with the row and
column it came from, so that harmonisation can name the exact cell when something is wrong.
Every source column must be read, mapped, or listed under ``ignored_columns``; an unexpected
column is an error rather than something dropped unseen, and so is a column the study file names
that the table does not have (with the table's closest undeclared column as a suggestion).
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable

import pandas as pd

from crsmeta import tables
from crsmeta.errors import InputError, raise_all
from crsmeta.io import KeyPath, read_table
from crsmeta.studies import Study, TableSpec

ROW_LEVEL_CASE_COLUMNS = (
    "patient", "intervention", "co_interventions", "crs_grade", "fever", "hypotension",
    "oxygen", "locator", "quote", "digitised", "flags", "exclude",
)
MEASUREMENT_COLUMNS = ("marker", "timepoint", "hours", "value", "unit")
CASE_COLUMNS = ROW_LEVEL_CASE_COLUMNS + MEASUREMENT_COLUMNS
REQUIRED_LONG_CASE_COLUMNS = ("patient", "intervention", "marker", "timepoint", "value", "unit")
REQUIRED_WIDE_CASE_COLUMNS = ("patient", "intervention")

# a summary table's columns are those of the extracted summaries, without the provenance
SUMMARY_COLUMNS = tuple(column for column in tables.EXTRACTED_SUMMARIES.columns if column not in tables.PROVENANCE)
REQUIRED_SUMMARY_COLUMNS = ("intervention", "marker", "timepoint")


def extract_cases(study: Study) -> pd.DataFrame:
    """The study's case table in extracted long form (empty with headers if it has none)."""
    spec = study.cases
    if spec is None:
        return tables.frame(tables.EXTRACTED_CASES)
    source = _read_source(study, spec)
    if spec.layout == "wide":
        rows = _melt_wide(study, spec, source)
    else:
        rows = _read_long(study, spec, source, CASE_COLUMNS, REQUIRED_LONG_CASE_COLUMNS)
    return tables.frame(tables.EXTRACTED_CASES, rows)


def extract_summaries(study: Study) -> pd.DataFrame:
    """The study's summary table in extracted long form (empty with headers if it has none)."""
    spec = study.summaries
    if spec is None:
        return tables.frame(tables.EXTRACTED_SUMMARIES)
    source = _read_source(study, spec)
    rows = _read_long(study, spec, source, SUMMARY_COLUMNS, REQUIRED_SUMMARY_COLUMNS)
    return tables.frame(tables.EXTRACTED_SUMMARIES, rows)


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
) -> dict[str, str]:
    """Map canonical column → source column, refusing missing, doubly given and unknown columns.

    Every problem of the header is raised at once (read as the first: a missing declared column,
    a missing required one, a constant beside its column, an unexpected column).
    """
    readable = tuple(readable)
    declared = _declared_columns(spec)
    undeclared = [
        column for column in source.columns
        if column not in declared and not (column in readable and column not in spec.columns)
    ]
    present = {
        canonical: spec.source_column(canonical)
        for canonical in readable
        if spec.source_column(canonical) in source.columns
    }
    raise_all([
        *_missing_declared(study, spec, source, declared, undeclared),
        *_missing_required(study, spec, present, required, undeclared),
        *_constants_beside_columns(study, spec, present),
        *_unexpected_columns(study, spec, source, readable, present),
    ])
    return present


def _missing_required(
    study: Study, spec: TableSpec, present: dict[str, str], required: Iterable[str], undeclared: list[str]
) -> list[InputError]:
    problems = []
    for canonical in required:
        if canonical not in present and canonical not in spec.constants:
            column = spec.source_column(canonical)
            problems.append(_header_error(
                study, spec, column,
                f"required column '{column}' is missing{_suggestion(column, undeclared)}",
                f"a column '{column}' holding '{canonical}' "
                f"(or a mapping under {spec.kind}.columns, or a value under {spec.kind}.constants)",
            ))
    return problems


def _unexpected_columns(
    study: Study, spec: TableSpec, source: pd.DataFrame, readable: tuple[str, ...], present: dict[str, str]
) -> list[InputError]:
    known = set(present.values()) | set(spec.ignored_columns) | set(_measurement_columns(spec))
    return [
        _header_error(
            study, spec, column,
            f"unexpected column '{column}'",
            f"one of the {spec.kind} columns ({', '.join(readable)}), a mapping under "
            f"{spec.kind}.columns, a measurement (wide layout), or a name under {spec.kind}.ignored_columns",
        )
        for column in source.columns
        if column not in known
    ]


def _declared_columns(spec: TableSpec) -> dict[str, KeyPath]:
    """Every table column the study file names, with the key that names it."""
    declared: dict[str, KeyPath] = {
        column: (spec.kind, "ignored_columns", index) for index, column in enumerate(spec.ignored_columns)
    }
    declared |= {column: (spec.kind, "measurements", column) for column in _measurement_columns(spec)}
    declared |= {column: (spec.kind, "columns", canonical) for canonical, column in spec.columns.items()}
    return declared


def _measurement_columns(spec: TableSpec) -> tuple[str, ...]:
    """The columns ``measurements`` describes (read in the wide layout only)."""
    return tuple(spec.measurements) if spec.layout == "wide" else ()


def _missing_declared(
    study: Study, spec: TableSpec, source: pd.DataFrame, declared: dict[str, KeyPath], undeclared: list[str]
) -> list[InputError]:
    """A column the study file names must be in the table (e.g. not renamed there since)."""
    return [
        InputError(
            f"column '{column}', named in the study file, is missing from the table"
            f"{_suggestion(column, undeclared)}",
            **study.location(key),
            data_file=spec.relative_file,
            row=1,
            expected="the same column name in the study file and in the table's header "
            f"(the header has: {', '.join(source.columns)})",
        )
        for column, key in declared.items()
        if column not in source.columns
    ]


def _suggestion(column: str, undeclared: list[str]) -> str:
    """'; the closest undeclared column of the table is ...' (the only one, or the closest by difflib)."""
    by_lower = {candidate.lower(): candidate for candidate in undeclared}
    close = difflib.get_close_matches(column.lower(), list(by_lower), n=1, cutoff=0.5)
    if close:
        return f"; the closest undeclared column of the table is '{by_lower[close[0]]}'"
    if len(undeclared) == 1:
        return f"; the one undeclared column of the table is '{undeclared[0]}'"
    return ""


def _constants_beside_columns(study: Study, spec: TableSpec, present: dict[str, str]) -> list[InputError]:
    """A constant is for a field the table has no column for: with both, one would be ignored."""
    return [
        InputError(
            f"'{canonical}' is given both as a constant in the study file and as the table's "
            f"column '{present[canonical]}'",
            **study.location((spec.kind, "constants", canonical)),
            data_file=spec.relative_file,
            row=1,
            column=present[canonical],
            expected="the field in one place: the table's column, or the constant (not both)",
        )
        for canonical in spec.constants
        if canonical in present
    ]


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
            **study.location((spec.kind, "layout")),
            expected=f"a mapping under {spec.kind}.measurements of source column → {{marker, timepoint, unit, hours}}",
        )
    present = _check_columns(study, spec, source, ROW_LEVEL_CASE_COLUMNS, REQUIRED_WIDE_CASE_COLUMNS)
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
