"""CRS grades on published scales as sets of possible ASTCT 2019 grades, and exact ASTCT re-grading.

A grade on an older scale does not pin down one ASTCT grade (Lee 2014 grade 3 may be ASTCT 1-4),
so it maps to the SET of ASTCT grades its criteria allow. The table is data with its reasoning and
sources, shipped with the package: ``src/crsmeta/data/astct_mapping.yaml``.

ASTCT 2019: Lee DW et al., Biol Blood Marrow Transplant 2019;25:625-638, doi:10.1016/j.bbmt.2018.12.758.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from crsmeta.data import data_file
from crsmeta.errors import InputError
from crsmeta.io import load_yaml

SCALES = ("ASTCT2019", "Lee2014", "Penn", "MSKCC", "CARTOX", "CTCAE4", "CTCAE5", "not_reported")
ASTCT_GRADES = frozenset(range(6))
MAPPING_FILE = data_file("astct_mapping.yaml")

# ASTCT grade of each category of the two components (the grade is the worse of the two).
HYPOTENSION_GRADES = {"none": 0, "fluids": 2, "one_pressor": 3, "multiple_pressors": 4}
OXYGEN_GRADES = {"none": 0, "low_flow": 2, "high_flow": 3, "positive_pressure": 4}

_GRADE_TEXT = re.compile(r"(?:grade|gr\.?|g)?\s*(?P<grade>\d+)(?:\.0+)?", re.IGNORECASE)
_ENTRY_KEYS = ("astct", "criteria", "reasoning")


@lru_cache(maxsize=None)
def load_mapping(path: Path | None = None) -> Mapping[str, Mapping[int, frozenset[int]]]:
    """Scale → grade → ASTCT set, read from the mapping YAML and checked (cached)."""
    path = Path(path) if path is not None else MAPPING_FILE
    document = load_yaml(path)
    scales = document.get("scales") if isinstance(document, Mapping) else None
    if not isinstance(scales, Mapping) or set(scales) != set(SCALES):
        raise InputError(
            "the grading table does not list exactly the known scales",
            study_file=path,
            expected=f"a 'scales:' mapping with {', '.join(SCALES)}",
        )
    return {scale: _scale_grades(scale, scales[scale], path) for scale in SCALES}


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


def _scale_grades(scale: str, entry: Any, path: Path) -> dict[int, frozenset[int]]:
    grades = entry.get("grades") if isinstance(entry, Mapping) else None
    source = entry.get("source") if isinstance(entry, Mapping) else None
    if not isinstance(grades, Mapping) or not isinstance(source, Mapping) or "citation" not in source:
        raise InputError(f"scale '{scale}' lacks its grades or its source", study_file=path,
                         expected="'source:' with a citation (and DOI or URL) and 'grades:'")
    return {_grade_key(scale, grade, path): _astct_set(scale, grade, value, path) for grade, value in grades.items()}


def _grade_key(scale: str, grade: Any, path: Path) -> int:
    number = _grade_number(grade)
    if number is None:
        raise InputError(f"scale '{scale}' has a malformed grade '{grade}'", study_file=path,
                         expected="grades written as whole numbers")
    return number


def _astct_set(scale: str, grade: Any, entry: Any, path: Path) -> frozenset[int]:
    complete = isinstance(entry, Mapping) and all(entry.get(key) for key in _ENTRY_KEYS)
    values = entry.get("astct") if complete else None
    whole = isinstance(values, list) and all(type(value) is int for value in values)
    if not whole or not values or not set(values) <= ASTCT_GRADES:
        raise InputError(
            f"scale '{scale}' grade {grade} is malformed",
            study_file=path,
            expected="'astct:' a non-empty list of grades 0-5, with 'criteria:' and 'reasoning:'",
        )
    return frozenset(values)
