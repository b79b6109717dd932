"""Unit conversion to canonical units (pint) and plausible ranges."""

from __future__ import annotations

import numpy as np
import pytest

from crsmeta import units
from crsmeta.errors import InputError

CYTOKINES = ["IL-6", "IFN-gamma", "IL-10", "IL-2", "TNF-alpha", "IL-1beta", "IL-8", "IL-18",
             "sIL-2R", "CXCL9", "CXCL10", "MCP-1", "GM-CSF"]


@pytest.mark.parametrize("marker", CYTOKINES)
def test_cytokines_are_in_pg_per_ml(marker):
    assert units.canonical_unit(marker) == "pg/mL"


@pytest.mark.parametrize(
    ("marker", "unit"),
    [("ferritin", "ng/mL"), ("CRP", "mg/L"), ("temperature", "degC"), ("IFN-γ", "pg/mL"), ("Tmax", "degC")],
)
def test_canonical_units_of_other_markers_and_synonyms(marker, unit):
    assert units.canonical_unit(marker) == unit


@pytest.mark.parametrize(
    ("marker", "unit", "factor"),
    [
        ("IL-6", "pg/mL", 1.0),
        ("IL-6", "pg/ml", 1.0),
        ("IL-6", " pg/mL ", 1.0),
        ("IL-6", "ng/L", 1.0),
        ("IL-6", "ng/l", 1.0),
        ("IL-6", "ng/mL", 1000.0),
        ("IL-6", "ng/ml", 1000.0),
        ("IL-6", "µg/L", 1000.0),  # U+00B5 micro sign
        ("IL-6", "μg/L", 1000.0),  # U+03BC Greek mu
        ("IFN-gamma", "ng/mL", 1000.0),
        ("sIL-2R", "ng/mL", 1000.0),
        ("ferritin", "ng/mL", 1.0),
        ("ferritin", "ng/ml", 1.0),
        ("ferritin", "µg/L", 1.0),
        ("ferritin", "μg/L", 1.0),
        ("CRP", "mg/L", 1.0),
        ("CRP", "mg/dL", 10.0),
        ("CRP", "mg/dl", 10.0),
        ("temperature", "degC", 1.0),
        ("temperature", "°C", 1.0),
        ("temperature", "℃", 1.0),
    ],
)
def test_multiplicative_conversions_by_pint(marker, unit, factor):
    conversion = units.conversion_for(marker, unit)
    assert conversion.factor == pytest.approx(factor, rel=1e-12)
    assert conversion.offset is None
    assert conversion.source_unit == unit.strip()
    assert conversion.target_unit == units.canonical_unit(marker)
    assert units.convert(2.5, conversion) == pytest.approx(2.5 * factor)


def test_description_names_units_and_factor():
    assert units.conversion_for("IL-6", "ng/mL").description == "ng/mL → pg/mL ×1000"
    assert units.conversion_for("CRP", "mg/dl").description == "mg/dl → mg/L ×10"


@pytest.mark.parametrize("unit", ["degF", "°F", "℉"])
def test_fahrenheit_absolute_has_an_offset(unit):
    conversion = units.conversion_for("temperature", unit)
    assert conversion.factor == pytest.approx(5 / 9)
    assert conversion.offset == pytest.approx(-32 * 5 / 9)
    assert conversion.description == f"{unit} → degC (x − 32) × 5/9"
    assert units.convert([98.6, 32.0, 212.0], conversion) == pytest.approx([37.0, 0.0, 100.0])


@pytest.mark.parametrize("unit", ["degF", "°F"])
def test_fahrenheit_difference_has_no_offset(unit):
    conversion = units.conversion_for("temperature", unit, kind="difference")
    assert conversion.factor == pytest.approx(5 / 9)
    assert conversion.offset is None
    assert units.convert(1.8, conversion) == pytest.approx(1.0)


def test_difference_of_a_concentration_is_the_plain_factor():
    conversion = units.conversion_for("IL-6", "ng/mL", kind="difference")
    assert (conversion.factor, conversion.offset) == (1000.0, None)


def test_unknown_kind_is_refused():
    with pytest.raises(InputError, match="kind"):
        units.conversion_for("IL-6", "pg/mL", kind="relative")


def test_convert_returns_float_for_scalar_and_array_for_sequence():
    conversion = units.conversion_for("IL-6", "ng/mL")
    assert isinstance(units.convert(1.0, conversion), float)
    result = units.convert([1.0, 2.0], conversion)
    assert isinstance(result, np.ndarray)
    np.testing.assert_allclose(result, [1000.0, 2000.0])


def test_convert_reads_a_missing_factor_as_one():
    conversion = units.Conversion("pg/mL", "pg/mL", None, None, "identity")
    assert units.convert(3.0, conversion) == 3.0


@pytest.mark.parametrize(("marker", "unit"), [("IL-6", "IU/mL"), ("IL-6", "U/mL"), ("sIL-2R", "U/mL"),
                                               ("IL-6", "pmol/L"), ("ferritin", "pmol/L"), ("CRP", "nmol/L")])
def test_activity_and_molar_units_need_a_factor(marker, unit):
    with pytest.raises(InputError, match="needs facts about the assay") as error:
        units.conversion_for(marker, unit)
    assert "unit_factors" in str(error.value)


def test_activity_unit_with_explicit_factor():
    conversion = units.conversion_for("IL-6", "IU/mL", extra_factors={"IU/mL": 50.0})
    assert (conversion.factor, conversion.offset) == (50.0, None)
    assert conversion.target_unit == "pg/mL"
    assert "study file" in conversion.description
    assert units.convert(2.0, conversion) == 100.0


@pytest.mark.parametrize("factor", [0.0, -1.0, float("nan"), float("inf")])
def test_explicit_factor_must_be_positive(factor):
    with pytest.raises(InputError, match="not a positive number"):
        units.conversion_for("IL-6", "IU/mL", extra_factors={"IU/mL": factor})


def test_explicit_factor_conflicting_with_pint_is_refused():
    with pytest.raises(InputError, match="pint converts it"):
        units.conversion_for("IL-6", "ng/mL", extra_factors={"ng/mL": 10.0})
    agreeing = units.conversion_for("IL-6", "ng/mL", extra_factors={"ng/mL": 1000.0})
    assert agreeing.factor == 1000.0


def test_explicit_factor_does_not_apply_to_temperature():
    with pytest.raises(InputError, match="cannot express temperature"):
        units.conversion_for("temperature", "IU/mL", extra_factors={"IU/mL": 3.0})


@pytest.mark.parametrize(("marker", "unit"), [("IL-6", "mg"), ("temperature", "pg/mL"), ("CRP", "mmHg"),
                                               ("temperature", "mg/L"), ("IL-6", "%")])
def test_dimensionally_wrong_unit_is_refused(marker, unit):
    with pytest.raises(InputError, match="cannot express"):
        units.conversion_for(marker, unit)


@pytest.mark.parametrize("unit", ["% (decrease)", "vasopressors", "pg/mL)", "mg/L/", "cells"])
def test_unknown_unit_names_the_unit_and_lists_accepted_ones(unit):
    with pytest.raises(InputError) as error:
        units.conversion_for("IL-6", unit)
    message = str(error.value)
    assert f"unknown unit '{unit}'" in message
    assert "pg/mL" in message and "ng/L" in message


def test_empty_unit_is_refused():
    with pytest.raises(InputError, match="no unit given for IL-6"):
        units.conversion_for("IL-6", "  ")


def test_non_modelled_marker_has_no_unit():
    with pytest.raises(InputError, match="not a modelled marker"):
        units.canonical_unit("vasopressors")


@pytest.mark.parametrize(
    ("marker", "low", "high"),
    [("temperature", 33.0, 43.0), ("IL-6", 0.0, 1e7), ("ferritin", 0.0, 1e7), ("CRP", 0.0, 1000.0)],
)
def test_plausible_ranges(marker, low, high):
    assert units.plausible_range(marker) == (low, high)


@pytest.mark.parametrize(("value", "marker"), [(800_000.0, "ferritin"), (39.7, "temperature"), (0.0, "IL-6"),
                                               (33.0, "temperature"), (43.0, "temperature"), (290.0, "CRP")])
def test_plausible_values_pass(value, marker):
    units.check_plausible(value, marker)


def test_fahrenheit_labelled_celsius_is_caught():
    with pytest.raises(InputError) as error:
        units.check_plausible(102.2, "temperature")
    message = str(error.value)
    assert "temperature 102.2 degC is outside the plausible range 33–43 degC" in message
    assert "°F labelled °C" in message
    assert "confirmed_values" in message


@pytest.mark.parametrize(("value", "marker", "hint"), [(2e7, "IL-6", "unit mix-up"), (-3.0, "ferritin", "negative"),
                                                       (1500.0, "CRP", "unit mix-up"), (1.2, "temperature", "change")])
def test_implausible_values_are_refused_with_a_hint(value, marker, hint):
    with pytest.raises(InputError, match=hint):
        units.check_plausible(value, marker)


def test_errors_carry_no_location_until_located():
    with pytest.raises(InputError) as error:
        units.conversion_for("IL-6", "mg")
    assert error.value.row is None and error.value.data_file is None
    located = error.value.located(data_file="cases.csv", row=4, column="unit")
    assert str(located).startswith("cases.csv, row 4, column 'unit': unit 'mg'")


@pytest.mark.parametrize(
    ("marker", "unit", "kind", "canonical", "written"),
    [
        ("IL-6", "ng/mL", "absolute", 2500.0, 2.5),
        ("IL-6", "ng/L", "absolute", 12.0, 12.0),
        ("CRP", "mg/dL", "absolute", 120.0, 12.0),
        ("ferritin", "µg/L", "absolute", 3000.0, 3000.0),
        ("temperature", "°F", "absolute", 37.0, 98.6),
        ("temperature", "°F", "difference", 1.0, 1.8),
        ("temperature", "°C", "absolute", 39.3, 39.3),
    ],
)
def test_conversion_from_canonical_is_the_way_back(marker, unit, kind, canonical, written):
    there = units.conversion_from_canonical(marker, unit, kind=kind)
    assert (there.source_unit, there.target_unit) == (units.canonical_unit(marker), unit)
    assert units.convert(canonical, there) == pytest.approx(written, rel=1e-12)
    back = units.conversion_for(marker, unit, kind=kind)
    assert units.convert(units.convert(canonical, there), back) == pytest.approx(canonical, rel=1e-12)


@pytest.mark.parametrize(("marker", "unit", "match"), [
    ("IL-6", "IU/mL", "needs facts about the assay"),
    ("IL-6", "degC", "cannot express"),
    ("IL-6", "pg/glorb", "unknown unit"),
])
def test_conversion_from_canonical_refuses_what_pint_cannot_convert(marker, unit, match):
    with pytest.raises(InputError, match=match):
        units.conversion_from_canonical(marker, unit)
