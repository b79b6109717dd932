"""Every problem of a study file at once, in-process (``crsmeta check``).

The pipeline stops at a study's first bad key or cell, one Snakemake start-up per problem. Here
the same library code runs without Snakemake and its problems are collected per independent unit:
every key the schema refuses, every column of each table's header, every row of the tables. The
messages are the library's own (file, line and key, or data file, row and column; what was
expected). A schema problem in a key extraction needs (``EXTRACTION_KEYS``) leaves the tables
unread. One in a key only harmonisation needs (``HARMONISATION_KEYS``), or in a table's constants
or measurements, whose names are all the header comparison reads (``READ_BY_NAME``), leaves the
rows unchecked but the headers still compared with the study file: on a fresh skeleton (population,
the locator and the quote still null) the curator sees the undeclared and missing columns in the
first run. One elsewhere (a citation still to fill in) stops neither.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import jsonschema
import pandas as pd

from crsmeta import tables
from crsmeta.errors import InputError, InputErrors
from crsmeta.extract import extract_cases, extract_summaries
from crsmeta.harmonise import harmonise_study
from crsmeta.io import KeyPath
from crsmeta.studies import (
    Study,
    check_unique_ids,
    date_problems,
    load_study,
    read_study_file,
    schema_errors,
    schema_problem,
    study_for_tables,
)

EXTRACTION_KEYS = frozenset({"id", "cases", "summaries"})
"""The study file's top-level keys that extraction reads (the tables' files, headers and mappings)."""
HARMONISATION_KEYS = frozenset(
    {"population", "design", "grading_scale", "synthetic", "unit_factors", "confirmed_values"}
)
"""The further top-level keys that harmonisation reads (the rows' values, units and grades)."""
TABLE_KINDS = ("cases", "summaries")
READ_BY_NAME = frozenset({"constants", "measurements"})
"""The keys of a table block of which comparing the header with the study file reads only the names."""
MEASUREMENT_FIELDS = ("marker", "timepoint", "unit")  # what extraction reads of each measurement

Fault = tuple[str, ...] | None
"""A key a schema error is about: top-level, or a table block's key under it (('cases', 'constants'));
None for the document as a whole."""
REASON_LENGTH = 80  # characters of an exclusion reason in a study's summary line


@dataclass(frozen=True)
class StudyCheck:
    """The outcome of checking one study file."""

    path: Path
    problems: tuple[InputError, ...]
    study: Study | None = None  # None when the file could not be read as a study
    rows: pd.DataFrame | None = None  # the row audit, when the tables were harmonised
    unread: str = ""  # why the tables were not read, if they were not

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: the problem count, or the rows extracted, included and excluded (with reasons)."""
        name = f"{self.path} ({self.study.id})" if self.study is not None else str(self.path)
        if self.problems:
            count = len(self.problems)
            unread = f"; {self.unread}" if self.unread else ""
            return f"{name}: {count} problem{'s' if count != 1 else ''}{unread}"
        return f"{name}: ok, {_row_counts(self.rows)}"


def check_studies(paths: Iterable[str | Path], project_dir: str | Path = ".") -> list[StudyCheck]:
    """Check each study file, then that the ids of those that could be read are unique."""
    checks = [check_study(path, project_dir) for path in paths]
    return _with_duplicate_ids(checks)


def check_study(path: str | Path, project_dir: str | Path = ".") -> StudyCheck:
    """Validate, extract and harmonise one study file, collecting every problem found."""
    path = Path(path)
    try:
        data, key_lines = read_study_file(path, project_dir)
    except InputError as error:
        return StudyCheck(path, (error,))
    problems, faults = _study_file_problems(data, path, key_lines)
    at_fault = _top_level(faults)
    header_blocks = _blocks_for_headers(data, faults)
    unextracted = _keys_at_fault(at_fault - header_blocks.keys(), EXTRACTION_KEYS)
    if unextracted:
        return StudyCheck(path, tuple(problems), unread=f"tables not read until {_pass(unextracted)} the schema")
    valid = {key: value for key, value in data.items() if key not in at_fault} | header_blocks
    try:
        study = study_for_tables(path, valid, key_lines, project_dir) if problems else load_study(path, project_dir)
    except InputError as error:
        return StudyCheck(path, (*problems, *_each(error)))
    unharmonised = _keys_at_fault(at_fault, HARMONISATION_KEYS) + sorted(
        ".".join(fault) for fault in faults if fault is not None and fault[0] in header_blocks
    )
    if unharmonised:
        header_problems = _header_problems(study)
        unread = f"table rows not checked until {_pass(unharmonised)} the schema (headers checked)"
        return StudyCheck(path, (*problems, *header_problems), unread=unread)
    table_problems, rows = _table_problems(study)
    return StudyCheck(path, (*problems, *table_problems), study, rows)


def _study_file_problems(
    data: Mapping[str, Any], path: Path, key_lines: Mapping[KeyPath, int]
) -> tuple[list[InputError], set[Fault]]:
    """Every key the schema refuses and every impossible date, in the file's order; with the keys
    at fault."""
    errors = schema_errors(data)
    faults = set().union(*(_faults(error) for error in errors))
    at_fault = _top_level(faults)
    valid = {key: value for key, value in data.items() if key not in at_fault}
    problems = [schema_problem(error, path, key_lines) for error in errors] + date_problems(valid, path, key_lines)
    return sorted(problems, key=lambda problem: problem.line or 0), faults


def _top_level(faults: set[Fault]) -> set[str | None]:
    """The top-level keys of ``faults`` (None for the document as a whole)."""
    return {None if fault is None else fault[0] for fault in faults}


def _blocks_for_headers(data: Mapping[str, Any], faults: set[Fault]) -> dict[str, dict[str, Any]]:
    """The table blocks at fault only in keys of which the header comparison reads the names
    (``READ_BY_NAME``), those keys reduced to their names: extraction can then compare the header
    with the study file, and its rows, built from placeholders, are never harmonised."""
    blocks = {}
    for kind in TABLE_KINDS:
        parts = {fault[1] if len(fault) > 1 else None for fault in faults if fault is not None and fault[0] == kind}
        if parts and parts <= READ_BY_NAME:
            block = data[kind]
            blocks[kind] = {**block, **{part: _names_only(part, block[part]) for part in parts}}
    return blocks


def _names_only(part: str, value: Any) -> dict[str, Any]:
    """A table block's constants or measurements with their names kept and their values blank."""
    if not isinstance(value, Mapping):
        return {}
    if part == "measurements":
        return {column: dict.fromkeys(MEASUREMENT_FIELDS, "") for column in value}
    return dict.fromkeys(value, "")


def _keys_at_fault(at_fault: set[str | None], needed: frozenset[str]) -> list[str]:
    """The keys at fault among those ``needed`` (``the study file`` for a problem of the whole
    document, which nothing can be read past)."""
    keys = sorted(str(key) for key in at_fault if key in needed)
    return keys + (["the study file"] if None in at_fault else [])


def _pass(keys: list[str]) -> str:
    """'population passes' or 'design, population pass'."""
    return f"{', '.join(keys)} pass{'es' if len(keys) == 1 else ''}"


def _faults(error: jsonschema.ValidationError) -> set[Fault]:
    """The keys a schema error is about (:data:`Fault`)."""
    path = tuple(str(part) for part in error.absolute_path)
    if path:
        return {path[:2] if path[0] in TABLE_KINDS else path[:1]}
    if error.validator == "required":
        return {(name,) for name in error.validator_value if name not in error.instance}
    if error.validator == "additionalProperties":
        return {(key,) for key in error.instance if key not in error.schema.get("properties", {})}
    if error.context:
        return set().union(*(_faults(cause) for cause in error.context))
    return {None}


def _table_problems(study: Study) -> tuple[list[InputError], pd.DataFrame | None]:
    """The problems of the study's tables (cases and summaries each on their own), and the row
    audit when none was found."""
    problems: list[InputError] = []
    cases = _extracted(extract_cases, study, "cases", problems)
    summaries = _extracted(extract_summaries, study, "summaries", problems)
    try:
        rows = harmonise_study(study, cases, summaries).rows
    except InputError as error:
        return _unique(problems + _each(error)), None
    return _unique(problems), rows if not problems else None


def _header_problems(study: Study) -> list[InputError]:
    """The problems extraction finds in the study's tables (unreadable files, headers that do not
    match the declared columns, measurements and ignored columns), without harmonising the rows."""
    problems: list[InputError] = []
    _extracted(extract_cases, study, "cases", problems)
    _extracted(extract_summaries, study, "summaries", problems)
    return _unique(problems)


def _extracted(
    extract: Callable[[Study], pd.DataFrame], study: Study, kind: str, problems: list[InputError]
) -> pd.DataFrame:
    """One extracted table; empty (its rows unchecked) when its header or file has problems.

    Columns the study file does not mention are the one header problem that leaves the rest
    readable (a skeleton from ``crsmeta new-study`` lists them): their rows are checked as if
    the columns were ignored, so the curator sees the rows' problems in the same run.
    """
    try:
        return extract(study)
    except InputError as error:
        found = _each(error)
        problems.extend(found)
    unexpected = [problem.column for problem in found if _is_unexpected_column(problem)]
    if len(unexpected) == len(found):
        spec = getattr(study, kind)
        ignoring = replace(spec, ignored_columns=(*spec.ignored_columns, *unexpected))
        try:
            return extract(replace(study, **{kind: ignoring}))
        except InputError as error:
            problems.extend(_each(error))
    return tables.frame(tables.EXTRACTED_CASES if kind == "cases" else tables.EXTRACTED_SUMMARIES)


def _is_unexpected_column(problem: InputError) -> bool:
    """Whether extraction refused a column of the header that the study file does not mention."""
    return problem.row == 1 and problem.key is None and problem.problem == f"unexpected column '{problem.column}'"


def _each(error: InputError) -> list[InputError]:
    return list(error.problems) if isinstance(error, InputErrors) else [error]


def _unique(problems: Iterable[InputError]) -> list[InputError]:
    """Problems without repeats: a bad value written once in the study file (a wide table's unit)
    is found again in every row that reads it."""
    return list({str(problem): problem for problem in problems}.values())


def _with_duplicate_ids(checks: list[StudyCheck]) -> list[StudyCheck]:
    """The checks, with a study whose id an earlier checked file already uses marked as a problem."""
    try:
        check_unique_ids(check.study for check in checks if check.study is not None)
    except InputError as error:
        return [
            StudyCheck(check.path, (*check.problems, error), check.study, None, check.unread)
            if check.study is not None and str(check.study.path) == error.study_file else check
            for check in checks
        ]
    return checks


def _row_counts(rows: pd.DataFrame | None) -> str:
    """'12 rows extracted, 11 included, 1 excluded (empty cell in a wide table: not measured ×1)'."""
    if rows is None or rows.empty:
        return "0 rows extracted"
    included = int((rows["status"] == "included").sum())
    reasons = Counter(_shortened(reason) for reason in rows.loc[rows["status"] == "excluded", "reason"])
    excluded = f"{sum(reasons.values())} excluded"
    if reasons:
        excluded += " (" + "; ".join(f"{reason} ×{count}" for reason, count in sorted(reasons.items())) + ")"
    return f"{len(rows)} row{'s' if len(rows) != 1 else ''} extracted, {included} included, {excluded}"


def _shortened(reason: str, limit: int = REASON_LENGTH) -> str:
    """A reason cut to fit the summary line (a curator's reason can run to a paragraph)."""
    return reason if len(reason) <= limit else reason[: limit - 1].rstrip() + "…"
