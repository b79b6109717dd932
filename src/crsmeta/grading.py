"""CRS grades on published scales as sets of possible ASTCT 2019 grades, and exact ASTCT re-grading.

A grade on an older scale does not pin down one ASTCT grade (Lee 2014 grade 3 may be ASTCT 1-4),
so it maps to the SET of ASTCT grades its criteria allow. The table is data with its reasoning and
sources, shipped with the package: ``src/crsmeta/data/astct_mapping.yaml`` (within
:func:`mapping_in_use`, the file given instead: the workflow's declared input). Every grade cites its
definition as read (verbatim, with where) and the double-graded cohorts consulted; a set holds an
ASTCT grade the definitions exclude only where a cited cross-tabulation cell shows it, and the
loader refuses a file whose observed cells fall outside their set (see docs/grading.md).

ASTCT 2019: Lee DW et al., Biol Blood Marrow Transplant 2019;25:625-638, doi:10.1016/j.bbmt.2018.12.758.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any, NoReturn

from crsmeta.data import data_file
from crsmeta.errors import InputError
from crsmeta.io import KeyPath, load_yaml_with_lines

SCALES = ("ASTCT2019", "Lee2014", "Penn", "MSKCC", "CARTOX", "CTCAE4", "CTCAE5", "not_reported")
ASTCT_GRADES = frozenset(range(6))
MAPPING_FILE = data_file("astct_mapping.yaml")
_MAPPING_IN_USE: ContextVar[Path] = ContextVar("grade mapping file", default=MAPPING_FILE)

# ASTCT grade of each category of the two components (the grade is the worse of the two).
HYPOTENSION_GRADES = {"none": 0, "fluids": 2, "one_pressor": 3, "multiple_pressors": 4}
OXYGEN_GRADES = {"none": 0, "low_flow": 2, "high_flow": 3, "positive_pressure": 4}

_GRADE_TEXT = re.compile(r"(?:grade|gr\.?|g)?\s*(?P<grade>\d+)(?:\.0+)?", re.IGNORECASE)
_ENTRY_KEYS = ("astct", "criteria", "reasoning")

# The mapping file's references: double-graded cohorts, and tables the definitions were read in.
COHORT = "double_graded_cohort"
REFERENCE_KINDS = (COHORT, "definitions_reproduced")
OWN_SOURCE = "source"  # a definition's ref naming the scale's own `source:`
UNSCALED = "not_reported"  # the one scale without published definitions to quote


@contextmanager
def mapping_in_use(path: str | Path = MAPPING_FILE) -> Iterator[None]:
    """Within the block, every grade lookup without a path of its own reads this mapping file."""
    token = _MAPPING_IN_USE.set(Path(path))
    try:
        yield
    finally:
        _MAPPING_IN_USE.reset(token)


def load_mapping(path: str | Path | None = None) -> Mapping[str, Mapping[int, frozenset[int]]]:
    """Scale → grade → ASTCT set, read from the mapping YAML at ``path`` (default: the one in use,
    :func:`mapping_in_use`) and checked (cached).

    Besides the sets, the check covers what grounds them: every reference has a citation and a
    DOI, PMID or address; every grade of a published scale quotes its definition (or says why no
    copy was found) and lists the double-graded cohorts consulted; every ASTCT grade a cited
    cross-tabulation observed for the grade is in its set.
    """
    return _mapping(Path(path) if path is not None else _MAPPING_IN_USE.get())


@lru_cache(maxsize=None)
def _mapping(path: Path) -> Mapping[str, Mapping[int, frozenset[int]]]:
    document, lines = load_yaml_with_lines(path)
    scales = document.get("scales") if isinstance(document, Mapping) else None
    if not isinstance(scales, Mapping) or set(scales) != set(SCALES):
        raise InputError(
            "the grading table does not list exactly the known scales",
            study_file=path,
            expected=f"a 'scales:' mapping with {', '.join(SCALES)}",
        )
    check = _Check(path, lines, document.get("references"))
    return {scale: check.scale(scale, scales[scale]) for scale in SCALES}


def astct_grades(scale: str, grade: str | int) -> frozenset[int]:
    """The ASTCT 2019 grades (0-5, 5 = death) a CRS graded ``grade`` on ``scale`` may have.

    ``not_reported`` with a grade 1-4 gives {1, 2, 3, 4}: without its scale a grade cannot be
    interpreted. Grade text such as "3", "3.0", "grade 3" or "G3" is accepted.
    """
    mapping = load_mapping()
    if scale not in mapping:
        raise InputError(f"unknown grading scale '{scale}'", expected=f"one of {', '.join(SCALES)}")
    number = _grade_number(grade)
    if number not in mapping[scale]:
        raise InputError(
            f"impossible grade '{grade}' on the {scale} scale",
            expected=f"a grade defined on {scale}: {', '.join(map(str, sorted(mapping[scale])))}",
        )
    return mapping[scale][number]


def regrade_astct(fever: bool, hypotension: str, oxygen: str) -> int:
    """The exact ASTCT 2019 grade from the raw criteria.

    ``hypotension``: none, fluids, one_pressor (with or without vasopressin) or multiple_pressors;
    ``oxygen``: none, low_flow (<= 6 L/min or blow-by), high_flow (> 6 L/min, facemask,
    non-rebreather, Venturi) or positive_pressure (CPAP, BiPAP, ventilation). The grade is the
    worse of the two components. Fever alone is grade 1. Without fever, hypotension or hypoxia
    still grade: the consensus grades by them alone once antipyretic or anti-cytokine treatment
    (tocilizumab, steroids) may mask fever, as in every salvage-treated patient; the caller
    asserts by calling this that the event is CRS. Nothing of the three is grade 0.
    """
    worst = max(_component(hypotension, HYPOTENSION_GRADES, "hypotension"),
                _component(oxygen, OXYGEN_GRADES, "oxygen"))
    if worst:
        return worst
    return 1 if fever else 0


def format_grades(grades: frozenset[int]) -> str:
    """'1|3|4': the grades sorted and joined with '|' ('' for the empty set)."""
    return "|".join(str(grade) for grade in sorted(grades))


def parse_grades(text: str) -> frozenset[int]:
    """The inverse of :func:`format_grades`."""
    pieces = [piece.strip() for piece in str(text).split("|")] if str(text).strip() else []
    if not all(piece.isdigit() and int(piece) in ASTCT_GRADES for piece in pieces):
        raise InputError(f"cannot read '{text}' as ASTCT grades",
                         expected="ASTCT grades 0-5 joined with '|', e.g. '1|3|4'")
    return frozenset(int(piece) for piece in pieces)


def _grade_number(grade: str | int | float) -> int | None:
    if isinstance(grade, bool):
        return None
    if isinstance(grade, (int, float)):
        return int(grade) if float(grade).is_integer() else None
    match = _GRADE_TEXT.fullmatch(str(grade).strip())
    return int(match["grade"]) if match else None


def _component(category: str, grades: Mapping[str, int], name: str) -> int:
    if category not in grades:
        raise InputError(f"unknown {name} category '{category}'", expected=f"one of {', '.join(grades)}")
    return grades[category]


def _grade_key(scale: str, grade: Any, path: Path) -> int:
    number = _grade_number(grade)
    if number is None:
        raise InputError(f"scale '{scale}' has a malformed grade '{grade}'", study_file=path,
                         expected="grades written as whole numbers")
    return number


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


class _Check:
    """Checks one mapping file, naming the key and line of what is wrong."""

    def __init__(self, path: Path, lines: Mapping[KeyPath, int], references: Any) -> None:
        self.path, self.lines = path, lines
        if not isinstance(references, Mapping):
            self.fail(("references",), "the grading table has no references",
                      "'references:' mapping each id to a citation")
        for ref, entry in references.items():
            self.reference(ref, entry)
        self.references = references

    def fail(self, where: KeyPath, problem: str, expected: str) -> NoReturn:
        raise InputError(problem, study_file=self.path, line=self.lines.get(where),
                         key=".".join(map(str, where)), expected=expected)

    def reference(self, ref: str, entry: Any) -> None:
        where = ("references", ref)
        ok = (isinstance(entry, Mapping) and entry.get("kind") in REFERENCE_KINDS and _text(entry.get("citation"))
              and any(entry.get(key) for key in ("doi", "pmid", "url_seen")))
        if not ok:
            self.fail(where, f"reference '{ref}' is incomplete",
                      f"kind ({' or '.join(REFERENCE_KINDS)}), citation, and doi, pmid or url_seen")
        findings = entry.get("findings")
        if entry["kind"] == COHORT and not (
            isinstance(findings, list) and findings
            and all(isinstance(f, Mapping) and _text(f.get("locator")) and _text(f.get("quote")) for f in findings)
        ):
            self.fail((*where, "findings"), f"cohort '{ref}' quotes no findings",
                      "findings: a list of {locator, quote, shows} read in the publication")

    def scale(self, scale: str, entry: Any) -> dict[int, frozenset[int]]:
        grades = entry.get("grades") if isinstance(entry, Mapping) else None
        source = entry.get("source") if isinstance(entry, Mapping) else None
        if not isinstance(grades, Mapping) or not isinstance(source, Mapping) or "citation" not in source:
            raise InputError(f"scale '{scale}' lacks its grades or its source", study_file=self.path,
                             expected="'source:' with a citation (and DOI or URL) and 'grades:'")
        return {_grade_key(scale, grade, self.path): self.grade(scale, grade, value) for grade, value in grades.items()}

    def grade(self, scale: str, grade: Any, entry: Any) -> frozenset[int]:
        complete = isinstance(entry, Mapping) and all(entry.get(key) for key in _ENTRY_KEYS)
        values = entry.get("astct") if complete else None
        whole = isinstance(values, list) and all(type(value) is int for value in values)
        if not whole or not values or not set(values) <= ASTCT_GRADES:
            raise InputError(
                f"scale '{scale}' grade {grade} is malformed",
                study_file=self.path,
                expected="'astct:' a non-empty list of grades 0-5, with 'criteria:' and 'reasoning:'",
            )
        where = ("scales", scale, "grades", grade)
        if scale != UNSCALED:
            self.definition(where, entry.get("definition"))
        self.cohorts(where, entry.get("cohorts"), frozenset(values))
        return frozenset(values)

    def definition(self, where: KeyPath, items: Any) -> None:
        if not isinstance(items, list) or not items:
            self.fail((*where, "definition"), "the grade does not cite its definition",
                      "definition: a list of {ref, locator, quote} (or not_found: why) as read")
        for k, item in enumerate(items):
            ref = item.get("ref") if isinstance(item, Mapping) else None
            ok = (isinstance(ref, str) and (ref == OWN_SOURCE or ref in self.references)
                  and _text(item.get("locator")) and _text(item.get("quote")) != _text(item.get("not_found")))
            if not ok:
                self.fail((*where, "definition", k), "a definition item is incomplete",
                          f"ref ('{OWN_SOURCE}' or a reference id), locator, and either the verbatim "
                          "quote or not_found saying why no copy was read")

    def cohorts(self, where: KeyPath, cohorts: Any, astct: frozenset[int]) -> None:
        where = (*where, "cohorts")
        consulted = cohorts.get("consulted") if isinstance(cohorts, Mapping) else None
        observed = cohorts.get("observed") if isinstance(cohorts, Mapping) else None
        if not isinstance(consulted, list) or not isinstance(observed, list):
            self.fail(where, "the grade does not list the cohorts consulted",
                      "cohorts: {consulted: [cohort ids], observed: [cross-tabulation cells]}")
        for ref in consulted:
            if not isinstance(ref, str) or self.references.get(ref, {}).get("kind") != COHORT:
                self.fail((*where, "consulted"), f"'{ref}' is not a double-graded cohort of the references",
                          f"ids of references of kind {COHORT}")
        for k, cell in enumerate(observed):
            grades = cell.get("astct") if isinstance(cell, Mapping) else None
            ok = (isinstance(cell, Mapping) and cell.get("ref") in consulted and _text(cell.get("locator"))
                  and _text(cell.get("quote")) and isinstance(cell.get("beyond_definitions"), bool)
                  and isinstance(grades, list) and grades and all(type(g) is int for g in grades))
            if not ok:
                self.fail((*where, "observed", k), "an observed cross-tabulation cell is incomplete",
                          "ref (a consulted cohort), astct (grades), locator, quote, beyond_definitions")
            outside = sorted(set(grades) - astct)
            if outside:
                self.fail((*where, "observed", k),
                          f"cohort '{cell['ref']}' observed ASTCT {outside} outside the set {sorted(astct)}",
                          "the set to hold every ASTCT grade a cited regrading observed for this grade")
