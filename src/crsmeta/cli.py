"""The ``crsmeta`` command line: a study file skeleton from a table, and checking study files.

``crsmeta new-study <table> --id <id>`` writes ``config/studies/<id>.yaml`` from a CSV, TSV or
XLSX table: the layout and each column's meaning guessed where the vocabulary recognises the
header or the values, every guess marked ``# CHECK`` and every value only the paper can give left
``null`` and marked ``# FILL IN`` (the schema refuses null, so nothing unconfirmed slips through).

``crsmeta check <study.yaml>...`` runs the pipeline's own validation, extraction and
harmonisation in-process and prints every problem of each study at once (:mod:`crsmeta.check`).
"""

from __future__ import annotations

import argparse
import datetime
import difflib
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import yaml

from crsmeta import extract, units, vocabulary
from crsmeta.check import check_studies
from crsmeta.errors import InputError
from crsmeta.harmonise import TIMEPOINTS
from crsmeta.io import read_table
from crsmeta.studies import study_schema

UNIT_IN_HEADER = re.compile(r"^(?P<name>.*?)[\s_]*[(\[](?P<unit>[^()\[\]]+)[)\]]\s*$")
HOURS_TOKEN = re.compile(r"^(?P<hours>\d+(?:\.\d+)?)\s*h$", re.IGNORECASE)
HEADER_TOKEN_SEPARATORS = re.compile(r"[\s_]+")
CLOSE_NAME_CUTOFF = 0.75  # difflib ratio for a header read as a canonical column name ("Grade" → crs_grade)
FILL_IN = "FILL IN"
CHECK = "CHECK"


@dataclass
class Note:
    """A line of the skeleton the curator must fill in or confirm."""

    kind: str  # FILL_IN or CHECK
    where: str  # the key, e.g. cases.measurements.IL6_pre.unit
    text: str


@dataclass
class Measurement:
    """What a wide table's column holds, as far as its header says."""

    marker: str
    timepoint: str | None
    unit: str | None
    hours: float | None
    modelled: bool


@dataclass
class TableGuess:
    """How each column of a table is read, as guessed from its header and values."""

    kind: str  # cases or summaries
    layout: str | None  # cases only; None: not guessed
    layout_note: str = ""  # why the layout was guessed (empty: given on the command line)
    columns: dict[str, str] = field(default_factory=dict)  # canonical → source column
    column_notes: dict[str, str] = field(default_factory=dict)  # canonical → why it was guessed
    measurements: dict[str, Measurement] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)  # source column → why
    unrecognised: list[str] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit code (0: done, 1: problems found or nothing written)."""
    args = _parser().parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crsmeta",
        description="Study files of the crsmeta living meta-analysis: a skeleton from a table, and checks.",
    )
    commands = parser.add_subparsers(required=True, metavar="command")

    new = commands.add_parser(
        "new-study", help="write a study file skeleton from a CSV, TSV or XLSX table",
        description="Write a study file skeleton from a table: guesses marked CHECK, values only "
        "the paper can give left null and marked FILL IN. Never overwrites a file.",
    )
    new.add_argument("table", type=Path, help="the table as printed, inside the project (under resources/)")
    new.add_argument("--id", required=True, dest="study_id", help="the study id (letters, digits, _)")
    new.add_argument("--out", type=Path, help="the study file to write (default: config/studies/<id>.yaml)")
    new.add_argument("--kind", choices=("cases", "summaries"), default="cases",
                     help="case-level data (default) or study-level summaries")
    new.add_argument("--layout", choices=("long", "wide"), help="the case table's layout (default: guessed)")
    new.add_argument("--sheet", help="the sheet of an .xlsx file (default: the first)")
    new.add_argument("--project-dir", type=Path, default=Path("."), help="the project directory (default: .)")
    new.set_defaults(run=_run_new_study)

    check = commands.add_parser(
        "check", help="validate, extract and harmonise study files; print every problem",
        description="Validate, extract and harmonise each study file in-process and print every "
        "problem found; exit code 1 if there is any.",
    )
    check.add_argument("studies", nargs="+", type=Path, help="study files (config/studies/<id>.yaml)")
    check.add_argument("--project-dir", type=Path, default=Path("."), help="the project directory (default: .)")
    check.set_defaults(run=_run_check)
    return parser


# --- crsmeta check --------------------------------------------------------------------------


def _run_check(args: argparse.Namespace) -> int:
    project_dir = args.project_dir.resolve()
    checks = check_studies([_inside_project(path, project_dir) for path in args.studies], project_dir)
    for check in checks:
        for problem in check.problems:
            print(problem)
        print(check.summary())
    return 0 if all(check.ok for check in checks) else 1


def _inside_project(path: Path, project_dir: Path) -> Path:
    """A path given on the command line, relative to the project directory where it lies inside it
    (so that messages name it as the config does)."""
    resolved = path.resolve()
    return resolved.relative_to(project_dir) if resolved.is_relative_to(project_dir) else resolved


# --- crsmeta new-study ----------------------------------------------------------------------


def _run_new_study(args: argparse.Namespace) -> int:
    project_dir = args.project_dir.resolve()
    out = args.out.resolve() if args.out else project_dir / "config" / "studies" / f"{args.study_id}.yaml"
    try:
        _check_id(args.study_id)
        table = _table_in_project(args.table, project_dir)
        source = read_table(project_dir / table, sheet=args.sheet)
        guess = guess_table(source, args.kind, args.layout)
        notes: list[Note] = []
        text = skeleton(args.study_id, table, args.sheet, guess, notes)
        _write_new(out, text)
    except InputError as error:
        print(f"crsmeta new-study: {error}", file=sys.stderr)
        return 1
    _report_skeleton(out, guess, notes)
    return 0


def _check_id(study_id: str) -> None:
    try:
        jsonschema.validate(study_id, study_schema()["properties"]["id"])
    except jsonschema.ValidationError as error:
        raise InputError(f"study id '{study_id}': {error.message}", expected="letters, digits and _ only") from None


def _table_in_project(table: Path, project_dir: Path) -> Path:
    """The table's path relative to the project directory, as the study file gives it."""
    resolved = table.resolve()
    if not resolved.is_file():
        raise InputError(f"table '{table}' does not exist", expected="an existing .csv, .tsv or .xlsx file")
    if not resolved.is_relative_to(project_dir):
        raise InputError(
            f"table '{table}' lies outside the project directory {project_dir}",
            expected="the table copied under resources/ in the project first",
        )
    return resolved.relative_to(project_dir)


def _write_new(out: Path, text: str) -> None:
    """Write the skeleton; an existing file is never replaced (it may hold a curator's work)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with out.open("x", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    except FileExistsError:
        raise InputError(
            f"{_display(out)} already exists; nothing written",
            expected="a new file (give another --out, or remove the existing file yourself)",
        ) from None


def _report_skeleton(out: Path, guess: TableGuess, notes: list[Note]) -> None:
    """What the curator must do next, on stderr."""
    out = _display(out)
    print(f"wrote {out}", file=sys.stderr)
    for kind in (FILL_IN, CHECK):
        keys = [note.where for note in notes if note.kind == kind]
        if keys:
            print(f"  {kind} ({len(keys)}): {', '.join(keys)}", file=sys.stderr)
    if guess.unrecognised:
        print(f"  unrecognised columns ({len(guess.unrecognised)}; map or ignore each): "
              f"{', '.join(guess.unrecognised)}", file=sys.stderr)
    print(f"then run: crsmeta check {out}", file=sys.stderr)


def _display(path: Path) -> Path:
    """A path as short as it can be shown: relative to the working directory where inside it."""
    return path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path


# --- guessing what the columns hold ---------------------------------------------------------


def guess_table(source: pd.DataFrame, kind: str = "cases", layout: str | None = None) -> TableGuess:
    """How each column of a table is read: a canonical column, a measurement (wide), ignored
    (a non-modelled marker such as age), or unrecognised. Nothing is dropped: every column ends
    up in exactly one of these."""
    if kind == "summaries":
        guess = TableGuess(kind, None)
        canonical_names = extract.SUMMARY_COLUMNS
    else:
        guessed, why = (layout, "") if layout else _guess_layout(source)
        guess = TableGuess(kind, guessed, layout_note=why)
        canonical_names = extract.ROW_LEVEL_CASE_COLUMNS if guess.layout == "wide" else extract.CASE_COLUMNS
    for column in source.columns:
        _guess_column(guess, column, source[column], canonical_names)
    return guess


def _guess_layout(source: pd.DataFrame) -> tuple[str | None, str]:
    """Long when a column holds the marker names; wide when headers name markers; else unknown.
    With the reason, for the curator to confirm."""
    for column in source.columns:
        if _normalised(_split_unit(column)[0]) == "marker" or _all_known(source[column], vocabulary.canonical_marker):
            return "long", f"column '{column}' holds marker names"
    named = [column for column in source.columns if _is_measurement(_measurement(column))]
    if named:
        return "wide", f"{len(named)} header(s) name a marker, e.g. '{named[0]}'"
    return None, "long or wide: no column holds marker names and no header names one"


def _guess_column(guess: TableGuess, column: str, values: pd.Series, canonical_names: Sequence[str]) -> None:
    """Place one column: the first reading that recognises it, else unrecognised."""
    readings = (_by_canonical_name, _by_marker_in_header, _by_known_values, _by_close_name)
    if not any(reading(guess, column, values, canonical_names) for reading in readings):
        guess.unrecognised.append(column)


def _by_canonical_name(guess: TableGuess, column: str, values: pd.Series, canonical_names: Sequence[str]) -> bool:
    """'Patient', 'CRS grade', 'crs_grade': the name extraction reads (case, spaces, _ aside)."""
    canonical = _canonical_by_name(canonical_names).get(_normalised(_split_unit(column)[0]))
    if canonical is None or canonical in guess.columns:
        return False
    guess.columns[canonical] = column
    return True


def _by_marker_in_header(guess: TableGuess, column: str, values: pd.Series, canonical_names: Sequence[str]) -> bool:
    """'IL6_pre' a measurement (wide tables); 'Age', a non-modelled name alone, ignored."""
    measurement = _measurement(column)
    if measurement is not None and not _is_measurement(measurement):
        info = vocabulary.marker_info(measurement.marker)
        guess.ignored[column] = f"'{info.name}' in the vocabulary, not modelled ({info.reason})"
        return True
    if measurement is not None and guess.layout == "wide":
        guess.measurements[column] = measurement
        return True
    return False


def _by_known_values(guess: TableGuess, column: str, values: pd.Series, canonical_names: Sequence[str]) -> bool:
    """A column whose every value is a known intervention (or marker): that field."""
    for field_name, canonicalise in (("intervention", vocabulary.canonical_intervention),
                                     ("marker", vocabulary.canonical_marker)):
        if field_name in canonical_names and field_name not in guess.columns and _all_known(values, canonicalise):
            guess.columns[field_name] = column
            guess.column_notes[field_name] = f"every value is a known {field_name} ({_examples(values, canonicalise)})"
            return True
    return False


def _by_close_name(guess: TableGuess, column: str, values: pd.Series, canonical_names: Sequence[str]) -> bool:
    """'Grade' for crs_grade, 'Patient ID' for patient: close to a name extraction reads."""
    by_name = _canonical_by_name(canonical_names)
    close = difflib.get_close_matches(_normalised(_split_unit(column)[0]), list(by_name), n=1, cutoff=CLOSE_NAME_CUTOFF)
    if not close or by_name[close[0]] in guess.columns:
        return False
    guess.columns[by_name[close[0]]] = column
    guess.column_notes[by_name[close[0]]] = f"guessed from the header '{column}'"
    return True


def _canonical_by_name(canonical_names: Sequence[str]) -> dict[str, str]:
    return {_normalised(canonical): canonical for canonical in canonical_names}


def _measurement(column: str) -> Measurement | None:
    """The marker, timepoint, unit and hours a header such as 'IL6 pre (ng/mL)' names, if its
    marker is in the vocabulary ('IL6_post', 'IFN-γ 24h pre [pg/mL]')."""
    name, unit = _split_unit(column)
    timepoint = hours = None
    marker_tokens = []
    for token in HEADER_TOKEN_SEPARATORS.split(name.strip()):
        if token.lower() in TIMEPOINTS and timepoint is None:
            timepoint = token.lower()
        elif (match := HOURS_TOKEN.match(token)) and hours is None:
            hours = float(match["hours"])
        elif token:
            marker_tokens.append(token)
    try:
        info = vocabulary.marker_info(" ".join(marker_tokens))
    except InputError:
        return None
    return Measurement(info.name, timepoint, unit, hours, info.modelled)


def _is_measurement(measurement: Measurement | None) -> bool:
    """Whether a header names a measurement: a modelled marker, or any marker at a timepoint (a
    non-modelled one, such as 'vasopressors pre', is then extracted and audited as excluded).
    A non-modelled marker alone ('Age') is a patient characteristic."""
    return measurement is not None and (measurement.modelled or measurement.timepoint is not None)


def _split_unit(header: str) -> tuple[str, str | None]:
    """'IL6 (ng/mL)' → ('IL6', 'ng/mL'); a header without a bracketed unit → (header, None)."""
    match = UNIT_IN_HEADER.match(header)
    return (match["name"], match["unit"].strip()) if match else (header, None)


def _normalised(name: str) -> str:
    return vocabulary.normalise_name(name)


def _known(value: str, canonicalise: Callable[[str], str]) -> bool:
    try:
        canonicalise(value)
    except InputError:
        return False
    return True


def _all_known(values: pd.Series, canonicalise: Callable[[str], str]) -> bool:
    """Whether every non-empty value is a known name (and there is at least one)."""
    filled = [value for value in values if value != ""]
    return bool(filled) and all(_known(value, canonicalise) for value in filled)


def _examples(values: pd.Series, canonicalise: Callable[[str], str], limit: int = 3) -> str:
    distinct = list(dict.fromkeys(value for value in values if value != ""))
    shown = [f"{value} → {canonicalise(value)}" if canonicalise(value) != value else value for value in distinct]
    return ", ".join(shown[:limit]) + (", ..." if len(shown) > limit else "")


# --- writing the skeleton -------------------------------------------------------------------


def skeleton(study_id: str, table: Path, sheet: str | None, guess: TableGuess, notes: list[Note]) -> str:
    """The study file text; ``notes`` receives every FILL IN and CHECK it marks."""
    lines = [
        f"# Study file skeleton written by `crsmeta new-study` from {table.as_posix()}.",
        "# Nothing here was read from the paper. Replace every null marked FILL IN with what the",
        "# publication says, confirm or correct every line marked CHECK (guessed from the table's",
        "# header or values), then run `crsmeta check` on this file. Optional keys (caveats,",
        "# source_seen, peer_reviewed, unit_factors, ...): see the README's study file reference.",
        f"id: {_scalar(study_id)}",
        *_metadata_lines(notes),
        f"{guess.kind}:",
        f"  file: {_scalar(table.as_posix())}",
    ]
    if sheet:
        lines.append(f"  sheet: {_scalar(sheet)}")
    lines += _table_lines(guess, notes)
    return "\n".join(lines) + "\n"


def _metadata_lines(notes: list[Note]) -> list[str]:
    """A null placeholder for every top-level key the schema requires (one identifier of those it
    asks one of), with what the schema allows there; ``added`` is today, marked CHECK."""
    schema = study_schema()
    identifiers = [alternative["required"][0] for alternative in schema.get("anyOf", [])]
    keys = [key for key in (*schema["required"], *schema.get("then", {}).get("required", [])) if key != "id"]
    keys[1:1] = identifiers[:1]
    lines = []
    for key in keys:
        text = _allowed(schema["properties"].get(key, {}))
        if key in identifiers:
            text += f" If the paper has no {key}: {' or '.join(identifiers[1:])} instead."
        lines.append(_placeholder(key, f"{key}: null", text, notes))
    if "added" in schema["properties"]:
        today = datetime.date.today().isoformat()
        lines.append(_marked(f"added: {_scalar(today)}", CHECK, "added", "the day this file was written", notes))
    return lines


def _allowed(property_schema: dict[str, Any]) -> str:
    """What the schema allows for a key: its values, or the first sentence of its description."""
    if "enum" in property_schema:
        return "one of " + ", ".join(map(str, property_schema["enum"]))
    description = " ".join(str(property_schema.get("description", "")).split())
    return description.split(". ")[0].rstrip(".") + "."


def _table_lines(guess: TableGuess, notes: list[Note]) -> list[str]:
    kind = guess.kind
    lines = []
    if kind == "cases":
        if guess.layout is None:
            lines.append(_placeholder(f"{kind}.layout", "  layout: null", guess.layout_note, notes))
        elif guess.layout_note:
            lines.append(_marked(f"  layout: {guess.layout}", CHECK, f"{kind}.layout", guess.layout_note, notes))
        else:
            lines.append(f"  layout: {guess.layout}")
    lines += _columns_lines(guess, notes)
    lines += _constants_lines(guess, notes)
    if guess.ignored:
        lines.append("  ignored_columns:")
        for column, why in guess.ignored.items():
            lines.append(_marked(f"    - {_scalar(column)}", CHECK, f"{kind}.ignored_columns", why, notes))
    if guess.measurements:
        lines.append("  # a measurement may add `hours:` (from the start of the intervention) as the paper gives them")
        lines.append("  measurements:")
        for column, measurement in guess.measurements.items():
            lines += _measurement_lines(kind, column, measurement, notes)
    if guess.unrecognised:
        lines.append("  # UNRECOGNISED columns: map each under columns or measurements, or list it under")
        lines.append("  # ignored_columns (crsmeta check refuses the table until then):")
        lines += [f"  #   {column}" for column in guess.unrecognised]
    return lines


def _columns_lines(guess: TableGuess, notes: list[Note]) -> list[str]:
    """The column mappings, and a null one for each required column that has no constant."""
    lines = ["  columns:"]
    for canonical, column in guess.columns.items():
        line = f"    {canonical}: {_scalar(column)}"
        if canonical in guess.column_notes:
            line = _marked(line, CHECK, f"{guess.kind}.columns.{canonical}", guess.column_notes[canonical], notes)
        lines.append(line)
    for canonical in _required(guess):
        if canonical not in guess.columns and not _takes_constant(guess.kind, canonical):
            lines.append(_placeholder(f"{guess.kind}.columns.{canonical}", f"    {canonical}: null",
                                      f"the column holding {canonical}", notes))
    return lines if len(lines) > 1 else []


def _constants_lines(guess: TableGuess, notes: list[Note]) -> list[str]:
    """A null constant for each required field, and for the provenance (locator, quote), that
    no column holds."""
    wanted = [canonical for canonical in _required(guess) if _takes_constant(guess.kind, canonical)]
    wanted += ["locator", "quote"]
    missing = [canonical for canonical in dict.fromkeys(wanted) if canonical not in guess.columns]
    what = {"locator": "where in the paper the table is (e.g. Table 1)",
            "quote": "the text the values were read from (e.g. the table's title)"}
    lines = [
        _placeholder(f"{guess.kind}.constants.{canonical}", f"    {canonical}: null",
                     what.get(canonical, f"the {canonical} of every row"), notes)
        for canonical in missing
    ]
    return ["  constants:", *lines] if lines else []


def _required(guess: TableGuess) -> tuple[str, ...]:
    if guess.kind == "summaries":
        return extract.REQUIRED_SUMMARY_COLUMNS
    return extract.REQUIRED_WIDE_CASE_COLUMNS if guess.layout == "wide" else extract.REQUIRED_LONG_CASE_COLUMNS


def _takes_constant(kind: str, canonical: str) -> bool:
    """Whether the schema lets the table's constants give this field."""
    table = study_schema()["$defs"]["case_table" if kind == "cases" else "summary_table"]
    allowed = table["properties"]["constants"].get("propertyNames", {}).get("enum")
    return allowed is None or canonical in allowed


def _measurement_lines(kind: str, column: str, measurement: Measurement, notes: list[Note]) -> list[str]:
    where = f"{kind}.measurements.{column}"
    lines = [f"    {_scalar(column)}:", f"      marker: {_scalar(measurement.marker)}"]
    if measurement.timepoint is None:
        lines.append(_placeholder(f"{where}.timepoint", "      timepoint: null", "pre, post or change", notes))
    else:
        lines.append(f"      timepoint: {measurement.timepoint}")
    if measurement.unit is None:
        lines.append(_placeholder(f"{where}.unit", "      unit: null", "the unit as printed in the paper", notes))
    else:
        lines.append(_marked(f"      unit: {_scalar(measurement.unit)}", CHECK, f"{where}.unit",
                             _unit_note(measurement), notes))
    if measurement.hours is not None:
        lines.append(_marked(f"      hours: {measurement.hours:g}", CHECK, f"{where}.hours",
                             "hours guessed from the header", notes))
    return lines


def _unit_note(measurement: Measurement) -> str:
    """'unit guessed from the header', with why crsmeta cannot convert it where it cannot."""
    if not measurement.modelled or measurement.timepoint == "change":
        return "unit guessed from the header"
    try:
        units.conversion_for(measurement.marker, measurement.unit or "")
    except InputError as error:
        return f"unit guessed from the header; crsmeta cannot convert it: {error.problem}"
    return "unit guessed from the header"


def _placeholder(where: str, line: str, text: str, notes: list[Note]) -> str:
    return _marked(line, FILL_IN, where, text, notes)


def _marked(line: str, kind: str, where: str, text: str, notes: list[Note]) -> str:
    notes.append(Note(kind, where, text))
    return f"{line}  # {kind}: {text}"


def _scalar(value: Any) -> str:
    """A value as one line of YAML (quoted where YAML would misread it)."""
    text = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=1 << 16)
    return text.strip().removesuffix("...").strip()
