"""Unit conversion to each marker's canonical unit (by pint), and plausible ranges.

Mass concentrations and temperatures convert by pint; nothing here is a hand table of factors.
Activity and molar units (IU/mL, U/mL, pmol/L, ...) cannot be converted without facts about the
assay or the molecule, so they are refused unless the study file gives a factor (``unit_factors``).
Errors carry no location: the caller adds it with ``err.located(...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
import numpy.typing as npt
import pint

from crsmeta.errors import InputError
from crsmeta.vocabulary import ChangeScale, MarkerInfo, load_markers, marker_info

Kind = Literal["absolute", "difference"]
KINDS: tuple[Kind, ...] = ("absolute", "difference")

_SIGN_SPELLINGS = {"\u2103": "degC", "\u2109": "degF"}  # ℃ and ℉ are single characters pint cannot tokenise


def _spell_out_degree_signs(text: str) -> str:
    for sign, name in _SIGN_SPELLINGS.items():
        text = text.replace(sign, name)
    return text


ureg = pint.UnitRegistry(preprocessors=[_spell_out_degree_signs])
# An international unit measures biological activity: its own dimension, so that it never converts
# to a mass without an assay-specific factor.
ureg.define("international_unit = [biological_activity] = IU")

_MASS_CONCENTRATION = ureg.parse_units("g/L").dimensionality


@dataclass(frozen=True)
class Conversion:
    """How values in ``source_unit`` become values in ``target_unit``: target = source*factor + offset.

    ``conversion_for`` always sets ``factor``; ``offset`` is None when the conversion has none
    (everything but absolute temperatures). ``convert`` reads a None factor as 1.
    """

    source_unit: str
    target_unit: str
    factor: float | None
    offset: float | None
    description: str


def canonical_unit(marker: str) -> str:
    """The canonical unit of a modelled marker (pg/mL, ng/mL, mg/L or degC)."""
    return _modelled(marker).unit


def plausible_range(marker: str) -> tuple[float, float]:
    """The plausible range of a modelled marker, in its canonical unit."""
    return _modelled(marker).plausible_range


def conversion_for(
    marker: str,
    unit: str,
    *,
    kind: Kind = "absolute",
    extra_factors: Mapping[str, float] | None = None,
) -> Conversion:
    """How to turn values of ``marker`` written in ``unit`` into the marker's canonical unit.

    ``kind="difference"`` is for SDs, SEs and changes: a temperature difference has no offset
    (an SD in °F is ×5/9). ``extra_factors`` maps a unit as written to its factor to the canonical
    unit, for units pint cannot convert without assay facts.
    """
    info = _modelled(marker)
    if kind not in KINDS:
        raise InputError(f"unknown conversion kind '{kind}'", expected=f"one of {', '.join(KINDS)}")
    written = unit.strip()
    source = _parse_unit(written, info)
    target = ureg.parse_units(info.unit)
    given = {key.strip(): value for key, value in (extra_factors or {}).items()}.get(written)
    if source is not None and source.dimensionality == target.dimensionality:
        conversion = _pint_conversion(written, info.unit, kind)
        if given is not None:
            _check_agrees(conversion, given, info)
        return conversion
    if given is not None and _takes_unit_factors(info):
        return _assay_conversion(written, info.unit, given)
    raise _unconvertible(written, source, info)


def conversion_from_canonical(marker: str, unit: str, *, kind: Kind = "absolute") -> Conversion:
    """How values of ``marker`` in its canonical unit become values in ``unit``: the way back of
    ``conversion_for``, for units pint converts (to print a canonical value as a source would,
    e.g. in the simulator's SYNTHETIC tables)."""
    info = _modelled(marker)
    if kind not in KINDS:
        raise InputError(f"unknown conversion kind '{kind}'", expected=f"one of {', '.join(KINDS)}")
    written = unit.strip()
    source = _parse_unit(written, info)
    if source is None or source.dimensionality != ureg.parse_units(info.unit).dimensionality:
        raise _unconvertible(written, source, info)
    return _pint_conversion(info.unit, written, kind)


def convert(values: float | npt.ArrayLike, conversion: Conversion) -> float | np.ndarray:
    """Apply a conversion; a scalar gives a float, anything else a numpy array."""
    array = np.asarray(values, dtype=float)
    factor = 1.0 if conversion.factor is None else conversion.factor
    result = array * factor + (conversion.offset or 0.0)
    return float(result) if result.ndim == 0 else result


def check_plausible(value: float, marker: str) -> None:
    """Refuse an absolute value (canonical unit) outside the marker's plausible range."""
    info = _modelled(marker)
    low, high = info.plausible_range
    if low <= value <= high:
        return
    hint = _implausible_hint(info, value)
    raise InputError(
        f"{info.name} {_number(value)} {info.unit} is outside the plausible range "
        f"{_number(low)}–{_number(high)} {info.unit}; {hint}",
        expected=f"a value within {_number(low)}–{_number(high)} {info.unit}, "
        "or confirm the value in the study file under confirmed_values",
    )


def _takes_unit_factors(info: MarkerInfo) -> bool:
    """Whether a study file's factor (no offset) can convert the marker's units: only on a ratio
    scale, one with a true zero, which is what makes its change a log ratio."""
    return info.change_scale is ChangeScale.LOG_RATIO


def _modelled(marker: str) -> MarkerInfo:
    info = marker_info(marker)
    if not info.modelled:
        raise InputError(
            f"'{marker}' is not a modelled marker ({info.reason}) and has no unit",
            expected="a modelled marker (a cytokine, ferritin, CRP or temperature)",
        )
    return info


def _parse_unit(written: str, info: MarkerInfo) -> pint.Unit | None:
    """The pint unit of ``written``, or None when pint cannot read it."""
    if not written:
        raise InputError(f"no unit given for {info.name}", expected=_accepted_units(info))
    try:
        return ureg.parse_units(written)
    except Exception:  # pint's parser raises many types (UndefinedUnitError, TokenError, AssertionError, ...)
        return None


def _unconvertible(written: str, source: pint.Unit | None, info: MarkerInfo) -> InputError:
    """The error for a unit pint cannot read, one that needs assay facts, or one of the wrong kind."""
    if source is None:
        return InputError(f"unknown unit '{written}' for {info.name}", expected=_accepted_units(info))
    if _takes_unit_factors(info) and source.dimensionality.get("[length]") == -3:
        return InputError(
            f"unit '{written}' for {info.name} is not a mass concentration; converting it to "
            f"{info.unit} needs facts about the assay or the molecule",
            expected=f"a factor for '{written}' → {info.unit} under unit_factors in the study file, "
            f"or a mass concentration unit such as {', '.join(_family(info)['accepted_units'])}",
        )
    return InputError(
        f"unit '{written}' ({source.dimensionality}) cannot express {info.name}, which is "
        f"{_family(info)['description']} in {info.unit}",
        expected=_accepted_units(info),
    )


def _pint_conversion(written: str, target: str, kind: Kind) -> Conversion:
    factor = _tidy(_delta(written).to(_delta(target).units).magnitude)
    offset = _tidy(ureg.Quantity(0.0, written).to(target).magnitude) if kind == "absolute" else 0.0
    if offset == 0.0:
        return Conversion(written, target, factor, None, f"{written} → {target} ×{_number(factor)}")
    zero = _tidy(-offset / factor)
    text = f"{written} → {target} (x − {_number(zero)}) × {_number(factor)}"
    return Conversion(written, target, factor, offset, text)


def _delta(unit: str) -> pint.Quantity:
    """One unit as a difference (for °F: 1 delta_degF; for multiplicative units: 1 unit)."""
    return ureg.Quantity(1.0, unit) - ureg.Quantity(0.0, unit)


def _assay_conversion(written: str, target: str, factor: float) -> Conversion:
    if not np.isfinite(factor) or factor <= 0:
        raise InputError(f"the factor {factor!r} for '{written}' is not a positive number",
                         expected="a positive factor to the canonical unit under unit_factors")
    text = f"{written} → {target} ×{_number(factor)} (factor given in the study file)"
    return Conversion(written, target, float(factor), None, text)


def _check_agrees(conversion: Conversion, given: float, info: MarkerInfo) -> None:
    if conversion.offset is not None or not np.isclose(given, conversion.factor, rtol=1e-9, atol=0):
        raise InputError(
            f"the study file gives factor {given!r} for '{conversion.source_unit}' → {info.unit}, "
            f"but the units themselves give {conversion.description}",
            expected=f"no unit_factors entry for '{conversion.source_unit}' (pint converts it)",
        )


def _family(info: MarkerInfo) -> Mapping[str, object]:
    return load_markers().families[info.family]


def _accepted_units(info: MarkerInfo) -> str:
    family = _family(info)
    text = f"a unit of {family['description']} such as {', '.join(family['accepted_units'])}"
    note = family.get("note")
    return f"{text}; {note.strip()}" if note else text


def _implausible_hint(info: MarkerInfo, value: float) -> str:
    """The family's hint (markers.yaml) for a value outside the plausible range."""
    low, high = info.plausible_range
    return _family(info)["implausible_hints"]["below" if value < low else "above"]


def _tidy(number: float) -> float:
    """Snap pint's result to the simple ratio it stands for (1000.0000000000001 → 1000, 5/9, −160/9).

    pint chains prefixes and offsets in binary floating point; the snapped value differs from its
    result by less than one part in 10^12 and keeps conversion logs and round numbers exact.
    """
    ratio = Fraction(number).limit_denominator(10**6)
    return float(ratio) if np.isclose(float(ratio), number, rtol=1e-12, atol=0) else number


def _number(number: float) -> str:
    """A short human form: 1000, 5/9, 0.1, 1e+07."""
    if float(number).is_integer() and abs(number) < 1e15:
        return f"{int(number):,}" if abs(number) >= 10_000 else f"{int(number)}"
    short = f"{number:.6g}"
    if np.isclose(float(short), number, rtol=1e-12, atol=0):
        return short
    fraction = Fraction(number).limit_denominator(100)
    if np.isclose(float(fraction), number, rtol=1e-12, atol=0):
        return f"{fraction.numerator}/{fraction.denominator}"
    return short
