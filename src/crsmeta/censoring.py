"""Reading numbers from cell text: plain, censored ('<5', '>5000') and P values ('P < 0.001').

Only forms that have one meaning are read. Anything else ("n.d.", "over 5000", "1,5", two numbers
in one cell) is refused rather than guessed; the curator rewrites it in the study's table.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from crsmeta.errors import InputError

Censoring = Literal["none", "left", "right"]
Relation = Literal["=", "<", ">"]

# A comma is a thousands separator only between groups of exactly three digits: "81,540",
# "1,260.4"; "1,5" (a decimal comma) and "4814, 7597" (two numbers) do not match.
_NUMBER = r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][+-]?\d+)?|[+-]?\.\d+(?:[eE][+-]?\d+)?"
_CENSORED_VALUE = re.compile(rf"(?P<sign><=|>=|≤|≥|<|>)?\s*(?P<number>{_NUMBER})")
_P_VALUE = re.compile(rf"(?:[pP]\s*)?(?P<sign><=|>=|≤|≥|<|>|=)?\s*(?P<number>{_NUMBER})")

_CENSORING_OF_SIGN: dict[str | None, Censoring] = {
    None: "none", "<": "left", "<=": "left", "≤": "left", ">": "right", ">=": "right", "≥": "right",
}
# A P value printed as "≤0.05" is an upper bound like "<0.05"; the contract has no "≤".
_RELATION_OF_SIGN: dict[str | None, Relation] = {
    None: "=", "=": "=", "<": "<", "<=": "<", "≤": "<", ">": ">", ">=": ">", "≥": ">",
}
_UNICODE_MINUS = "\u2212"
_MIDDLE_DOTS = "\u00b7\u22c5"  # "0·54" as printed in Lancet papers


@dataclass(frozen=True)
class ParsedValue:
    """A value and its censoring: "left" means the true value is ≤ value (below a detection
    limit, '<5'), "right" that it is ≥ value ('>5000')."""

    value: float
    censoring: Censoring


@dataclass(frozen=True)
class PValue:
    """A P value as printed: ``relation`` "<" for '<0.001' (and '≤'), ">" for '>0.05', else "="."""

    value: float
    relation: Relation


def parse_value(text: str) -> ParsedValue:
    """Read a plain or censored number from a cell ('12.5', '81,540', '−83', '<5', '≥5000')."""
    match = _CENSORED_VALUE.fullmatch(_clean(text).replace(_UNICODE_MINUS, "-"))
    value = _finite(match["number"]) if match else None
    if value is None:
        raise InputError(
            f"cannot read '{text}' as a number",
            expected="a number, or a censored value such as '<5' or '>5000'",
        )
    return ParsedValue(value, _CENSORING_OF_SIGN[match["sign"]])


def parse_p_value(text: str) -> PValue:
    """Read a P value ('0.018', '<0.001', 'P = 0.032', 'p=0.016', '≤0.05', '0·54'); it must lie in (0, 1]."""
    cleaned = _clean(text)
    for dot in _MIDDLE_DOTS:
        cleaned = cleaned.replace(dot, ".")
    match = _P_VALUE.fullmatch(cleaned)
    value = _finite(match["number"]) if match else None
    relation = _RELATION_OF_SIGN[match["sign"]] if match else "="
    if value is None or not 0 < value <= 1 or (relation == ">" and value == 1):
        raise InputError(
            f"cannot read '{text}' as a P value",
            expected="a P value in (0, 1], optionally with 'P', '=', '<' or '>' (e.g. '0.018', 'P < 0.001')",
        )
    return PValue(value, relation)


def _clean(text: str) -> str:
    return str(text).strip()


def _finite(number: str) -> float | None:
    value = float(number.replace(",", ""))
    return value if math.isfinite(value) else None
