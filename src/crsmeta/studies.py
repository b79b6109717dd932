"""Study files: loading, schema validation, and the checks a schema cannot express.

A study file (``config/studies/<id>.yaml``) describes one publication and where its extracted
tables sit under ``resources/``. The JSON Schema that ships with the package
(``src/crsmeta/data/study.schema.yaml``) is the reference for its keys; this module adds what a
schema cannot check: that data files exist and stay inside the project directory, that ids are
unique, that dates exist in the calendar (``published``, ``added``), and where in the YAML a bad
key sits (the parser's line marks, kept with the study so that a value from the study file is
reported at its key and line also by later stages).
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import unquote

import jsonschema

from crsmeta.data import data_file
from crsmeta.errors import InputError
from crsmeta.io import KeyPath, load_yaml, load_yaml_with_lines

STUDY_SCHEMA = data_file("study.schema.yaml")
# What may precede a DOI as curators write it; the schema's `doi` pattern allows the same forms
DOI_PREFIX = re.compile(r"^(doi:\s*|https?://(dx\.|www\.)?doi\.org/)", re.IGNORECASE)
NOT_REPORTED = "not_reported"  # `published` when the source read shows no date
HIGH_RISK = "high"  # risk_of_bias.overall of the studies exclude_high_risk leaves out
DATE_FORMS = "YYYY-MM-DD, YYYY-MM or YYYY"


@dataclass(frozen=True, order=True)
class PartialDate:
    """A date known to the day, the month or only the year (0 = not known).

    Ordered as ``(year, month, day)``: by the first day of its period, the less precise date first
    where two start on the same day (2024 < 2024-01 < 2024-01-01 < 2024-02), as the ISO texts sort.
    """

    year: int
    month: int = 0
    day: int = 0

    @classmethod
    def parse(cls, text: str | int) -> "PartialDate":
        """``2024``, ``"2024-05"`` or ``"2024-05-14"``; ValueError for a date the calendar lacks."""
        parts = [int(part) for part in str(text).split("-")]
        if len(parts) > 3:
            raise ValueError(f"not of the form {DATE_FORMS}")
        year, month, day = (*parts, 0, 0)[:3]
        if len(parts) >= 2 and not 1 <= month <= 12:
            raise ValueError(f"month {month:02d} does not exist: months are 01 to 12")
        if len(parts) == 3:
            datetime.date(year, month, day)  # raises for 2024-02-30
        return cls(year, month, day)

    @property
    def first_day(self) -> datetime.date:
        """The first day of the period the date names (2024 → 2024-01-01)."""
        return datetime.date(self.year, self.month or 1, self.day or 1)

    def __str__(self) -> str:
        return "-".join(f"{part:02d}" if index else f"{part:04d}"
                        for index, part in enumerate((self.year, self.month, self.day)) if part)


@dataclass(frozen=True)
class TableSpec:
    """Where one of a study's tables sits and how its columns map to the canonical ones."""

    kind: str  # "cases" or "summaries"
    file: Path  # resolved, inside the project directory
    relative_file: str  # as written in the study file
    layout: str = "long"
    sheet: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)  # canonical -> source column
    constants: Mapping[str, Any] = field(default_factory=dict)
    measurements: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()

    def source_column(self, canonical: str) -> str:
        """The source column name that holds a canonical column."""
        return self.columns.get(canonical, canonical)

    def study_file_key(self, canonical: str, source_column: str) -> KeyPath | None:
        """The study file key a field of an extracted row was written under (None: a table cell).

        ``source_column`` is the row's value column: in a wide table, the measurement column
        whose marker, timepoint, unit, ... the study file gives. A constant is used only where the
        table has no such column (extraction refuses both), so a constant's field is its key.
        """
        meaning = self.measurements.get(source_column, {}) if self.layout == "wide" else {}
        if canonical in meaning:
            return (self.kind, "measurements", source_column, canonical)
        if canonical in self.constants:
            return (self.kind, "constants", canonical)
        return None


@dataclass(frozen=True)
class Study:
    """One validated study file."""

    path: Path  # as given in the config, relative to the project directory
    file: Path  # the study file itself, resolved
    data: Mapping[str, Any]
    cases: TableSpec | None
    summaries: TableSpec | None
    key_lines: Mapping[KeyPath, int] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def synthetic(self) -> bool:
        return bool(self.data.get("synthetic", False))

    @property
    def published(self) -> PartialDate | None:
        """The publication date as precise as the citation gives it (None: not reported, or a
        synthetic study without one)."""
        value = self.data.get("published", NOT_REPORTED)
        return None if value == NOT_REPORTED else PartialDate.parse(value)

    @property
    def added(self) -> datetime.date | None:
        """The day the study entered the review (None: not given)."""
        value = self.data.get("added")
        return None if value is None else datetime.date.fromisoformat(value)

    @property
    def risk_of_bias(self) -> Mapping[str, Any] | None:
        """The appraisal block (None: not appraised); yes/no answers as text however written."""
        appraisal = self.data.get("risk_of_bias")
        if appraisal is None:
            return None
        domains = {domain: _judgement_text(judgement) for domain, judgement in appraisal["domains"].items()}
        return {**appraisal, "domains": domains}

    @property
    def overall_risk_of_bias(self) -> str | None:
        """``low``, ``some_concerns`` or ``high``; None when the study has not been appraised."""
        appraisal = self.data.get("risk_of_bias")
        return None if appraisal is None else appraisal["overall"]

    def unit_factors(self, marker: str) -> dict[str, float]:
        """Explicit unit factors the study file gives for one marker (unit as written → factor)."""
        return {
            entry["unit"]: float(entry["factor"])
            for entry in self.data.get("unit_factors", [])
            if entry["marker"] == marker
        }

    def is_confirmed(self, table: str, row: int, column: str) -> bool:
        """Whether the study file confirms an out-of-range value in this cell as printed."""
        return any(
            entry["table"] == table and entry["row"] == row and entry["column"] == column
            for entry in self.data.get("confirmed_values", [])
        )

    def location(self, key_path: KeyPath) -> dict[str, Any]:
        """Where a key of this study file sits, as :class:`InputError` arguments."""
        return study_file_location(self.path, self.key_lines, key_path)


def _judgement_text(judgement: Any) -> Any:
    """YAML reads an unquoted yes/no as a boolean; the answer is the same."""
    if isinstance(judgement, bool):
        return "yes" if judgement else "no"
    return judgement


def by_publication(studies: Iterable[Study]) -> list[Study]:
    """Studies in publication order (:class:`PartialDate`'s order, then id); those whose date is
    not reported after every dated one."""
    return sorted(studies, key=lambda study: (study.published is None, study.published or PartialDate(0), study.id))


def high_risk_study_ids(studies: Iterable[Study]) -> list[str]:
    """Ids of the studies whose appraisal rates them at high risk of bias overall."""
    return sorted(study.id for study in studies if study.overall_risk_of_bias == HIGH_RISK)


def study_file_location(study_path: Path, key_lines: Mapping[KeyPath, int], key_path: KeyPath) -> dict[str, Any]:
    """The study file, the key's line and the key (``cases.measurements.IL6_pre.unit``).

    A key the file lacks (a missing required key) gets the line of its closest enclosing key.
    """
    line = next(
        (key_lines[key_path[:depth]] for depth in range(len(key_path), -1, -1) if key_path[:depth] in key_lines),
        None,
    )
    return {"study_file": study_path, "line": line, "key": _dotted(key_path) or None}


def _dotted(key_path: KeyPath) -> str:
    """``("unit_factors", 0, "factor")`` → ``unit_factors[0].factor``."""
    parts: list[str] = []
    for part in key_path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(f".{part}" if parts else str(part))
    return "".join(parts)


@lru_cache(maxsize=None)
def study_schema() -> dict[str, Any]:
    """The study file JSON Schema (YAML)."""
    return load_yaml(STUDY_SCHEMA)


def load_study(path: str | Path, project_dir: str | Path = ".") -> Study:
    """Load, validate and resolve one study file (a relative path is taken from ``project_dir``).

    Raises :class:`InputError` naming the study file, the line and the key at fault.
    """
    path = Path(path)
    data, key_lines = read_study_file(path, project_dir)
    _validate_against_schema(data, path, key_lines)
    _check_dates(data, path, key_lines)
    return study_for_tables(path, data, key_lines, project_dir)


def read_study_file(path: Path, project_dir: str | Path = ".") -> tuple[dict[str, Any], dict[KeyPath, int]]:
    """A study file's YAML mapping with each key's line (not yet checked against the schema)."""
    data, key_lines = load_yaml_with_lines(path if path.is_absolute() else Path(project_dir).resolve() / path)
    if not isinstance(data, dict):
        raise InputError(
            "the study file is not a mapping of keys to values",
            study_file=path,
            expected="a YAML mapping with id, citation, population, design, grading_scale, ...",
        )
    return data, key_lines


def normalised_identifiers(data: Mapping[str, Any]) -> dict[str, Any]:
    """The study's identifiers in one form however they were written (schema-valid input).

    DOI bare (``10.x/...``, without ``doi:`` or a resolver URL), PMID as text, PMCID as ``PMC...``.
    """
    normalised = dict(data)
    if "doi" in data:
        normalised["doi"] = bare_doi(data["doi"])
    if "pmid" in data:
        normalised["pmid"] = str(data["pmid"])
    if "pmcid" in data:
        normalised["pmcid"] = "PMC" + data["pmcid"][3:]
    return normalised


def bare_doi(doi: str) -> str:
    """``doi:10.x/y``, ``https://doi.org/10.x/y`` or ``10.x/y`` → ``10.x/y`` (URLs percent-decoded)."""
    prefix = DOI_PREFIX.match(doi)
    if prefix is None:
        return doi
    rest = doi[prefix.end():]
    return unquote(rest) if prefix.group(0).lower().startswith("http") else rest


def load_studies(paths: Iterable[str | Path], project_dir: str | Path = ".") -> list[Study]:
    """Load every study file and check that their ids are unique."""
    studies = [load_study(path, project_dir) for path in paths]
    check_unique_ids(studies)
    return studies


def check_unique_ids(studies: Iterable[Study]) -> None:
    """Raise when two study files share an id (their jobs and outputs would collide)."""
    seen: dict[str, Path] = {}
    for study in studies:
        if study.id in seen:
            raise InputError(
                f"study id '{study.id}' is already used by {seen[study.id]}",
                **study.location(("id",)),
                expected="a study id unique across all study files listed in the config",
            )
        seen[study.id] = study.path


def _validate_against_schema(data: Mapping[str, Any], path: Path, key_lines: Mapping[KeyPath, int]) -> None:
    validator = jsonschema.Draft202012Validator(study_schema())
    errors = sorted(validator.iter_errors(data), key=lambda error: list(error.absolute_path))
    if not errors:
        return
    raise schema_problem(jsonschema.exceptions.best_match(errors), path, key_lines)


def _check_dates(data: Mapping[str, Any], path: Path, key_lines: Mapping[KeyPath, int]) -> None:
    problems = date_problems(data, path, key_lines)
    if problems:
        raise problems[0]


def date_problems(data: Mapping[str, Any], path: Path, key_lines: Mapping[KeyPath, int]) -> list[InputError]:
    """What the schema's patterns cannot check: that the dates exist (2024-02-30 does not). An
    ``added`` before ``published`` is allowed: a study may be read online before its issue's date.
    For values of the schema's form only (:func:`load_study` checks the schema first)."""
    problems = []
    for key, forms in (("published", DATE_FORMS), ("added", "YYYY-MM-DD")):
        value = data.get(key, NOT_REPORTED)
        if value == NOT_REPORTED:
            continue
        try:
            PartialDate.parse(value)
        except ValueError as error:
            problems.append(InputError(
                f"'{value}' is not a date ({error})",
                **study_file_location(path, key_lines, (key,)),
                expected=f"a date that exists, {forms}",
            ))
    return problems


def _key_at_fault(error: jsonschema.ValidationError) -> KeyPath:
    """The key path of a schema error; for a key that is not allowed, that key itself."""
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = error.schema.get("properties", {})
        unexpected = [key for key in error.instance if key not in allowed]
        return (*path, unexpected[0]) if unexpected else path
    if "propertyNames" in error.absolute_schema_path and isinstance(error.instance, str):
        return (*path, error.instance)
    return path


def _table_spec(
    kind: str, spec: Mapping[str, Any] | None, study_path: Path, key_lines: Mapping[KeyPath, int], project_dir: Path
) -> TableSpec | None:
    if spec is None:
        return None
    relative = spec["file"]
    file = _resolve_inside(relative, project_dir, study_file_location(study_path, key_lines, (kind, "file")))
    return TableSpec(
        kind=kind,
        file=file,
        relative_file=relative,
        layout=spec.get("layout", "long"),
        sheet=spec.get("sheet"),
        columns=dict(spec.get("columns", {})),
        constants=dict(spec.get("constants", {})),
        measurements=dict(spec.get("measurements", {})),
        ignored_columns=tuple(spec.get("ignored_columns", ())),
    )


def _resolve_inside(relative: str, project_dir: Path, where: Mapping[str, Any]) -> Path:
    """Resolve a data file path and refuse paths that leave the project directory."""
    def refusal(problem: str, expected: str) -> InputError:
        return InputError(problem, **where, expected=expected)

    candidate = Path(relative)
    resolved = (candidate if candidate.is_absolute() else project_dir / candidate).resolve()
    if not resolved.is_relative_to(project_dir):
        raise refusal(
            f"data file '{relative}' lies outside the project directory {project_dir}",
            "a path relative to the project directory, under resources/",
        )
    if not resolved.is_file():
        raise refusal(
            f"data file '{relative}' does not exist",
            "the path of an existing table, relative to the project directory",
        )
    return resolved


def schema_errors(data: Mapping[str, Any]) -> list[jsonschema.ValidationError]:
    """Every schema error of a study file, the most relevant one per key (and per missing key).

    :func:`load_study` stops at the most relevant error of all; ``crsmeta check`` lists these.
    """
    validator = jsonschema.Draft202012Validator(study_schema())
    by_key: dict[tuple[KeyPath, str], list[jsonschema.ValidationError]] = {}
    for error in validator.iter_errors(data):
        missing = error.message if error.validator == "required" else ""
        by_key.setdefault((_key_at_fault(error), missing), []).append(error)
    return [jsonschema.exceptions.best_match(errors) for errors in by_key.values()]


def schema_problem(error: jsonschema.ValidationError, path: Path, key_lines: Mapping[KeyPath, int]) -> InputError:
    """A schema error at its key and line, with what the schema allows there."""
    described = error.schema.get("description", f"see {STUDY_SCHEMA}")
    return InputError(
        error.message,
        **study_file_location(path, key_lines, _key_at_fault(error)),
        expected=f"a value the study file schema allows ({described})",
    )


def study_for_tables(
    path: Path, data: Mapping[str, Any], key_lines: Mapping[KeyPath, int], project_dir: str | Path = "."
) -> Study:
    """A study whose tables can be read although its file fails the schema elsewhere.

    For ``crsmeta check``, which reports a file's table problems together with its schema
    problems (e.g. a citation still to fill in). ``data`` must hold schema-valid keys only: the
    caller leaves out the keys at fault, which the tables must not need.
    """
    project_dir = Path(project_dir).resolve()
    return Study(
        path=path,
        file=(project_dir / path).resolve(),
        data=normalised_identifiers(data),
        cases=_table_spec("cases", data.get("cases"), path, key_lines, project_dir),
        summaries=_table_spec("summaries", data.get("summaries"), path, key_lines, project_dir),
        key_lines=key_lines,
    )
