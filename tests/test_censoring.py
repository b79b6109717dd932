"""Reading plain, censored and P values from cell text."""

from __future__ import annotations

import pytest

from crsmeta.censoring import ParsedValue, PValue, parse_p_value, parse_value
from crsmeta.errors import InputError


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12.5", 12.5),
        ("-83", -83.0),
        ("+37", 37.0),
        ("1e3", 1000.0),
        ("2.5E-2", 0.025),
        (".5", 0.5),
        ("81,540", 81540.0),
        ("1,260.4", 1260.4),
        ("3,000", 3000.0),
        ("800,000", 800000.0),
        ("12,345,678.9", 12345678.9),
        ("−83", -83.0),  # U+2212 minus sign
        ("  7 ", 7.0),
        ("0", 0.0),
    ],
)
def test_plain_numbers(text, value):
    assert parse_value(text) == ParsedValue(value, "none")


@pytest.mark.parametrize(
    ("text", "value", "censoring"),
    [
        ("<5", 5.0, "left"),
        ("< 5", 5.0, "left"),
        ("<=5", 5.0, "left"),
        ("≤5", 5.0, "left"),
        ("≤ 5", 5.0, "left"),
        (">5000", 5000.0, "right"),
        ("> 400", 400.0, "right"),
        (">=5000", 5000.0, "right"),
        ("≥5000", 5000.0, "right"),
        (">10,000", 10000.0, "right"),
        (" >1.5e4 ", 15000.0, "right"),
    ],
)
def test_censored_values(text, value, censoring):
    assert parse_value(text) == ParsedValue(value, censoring)


@pytest.mark.parametrize(
    "text",
    ["", "   ", "n.d.", "ND", "over 5000", "more than 50%", "4814, 7597", "NaN", "nan", "inf", "-inf",
     "1e999", "1,5", "1,2345", "1234,567", "12,34", "four", "<", ">", "5<", "=5", "- 5", "85–101/33–64",
     "90/40", "5 pg/mL", "2（95％CI 0～5）", "<<5", "1.2.3"],
)
def test_rejected_forms(text):
    with pytest.raises(InputError) as error:
        parse_value(text)
    assert error.value.expected == "a number, or a censored value such as '<5' or '>5000'"
    assert f"cannot read '{text}' as a number" in str(error.value)


@pytest.mark.parametrize(
    ("text", "value", "relation"),
    [
        ("0.018", 0.018, "="),
        ("=0.018", 0.018, "="),
        ("<0.001", 0.001, "<"),
        ("< 0.001", 0.001, "<"),
        ("P < 0.001", 0.001, "<"),
        ("p=0.016", 0.016, "="),
        ("P = 0.032", 0.032, "="),
        ("P=0.0125", 0.0125, "="),
        ("P 0.001", 0.001, "="),
        ("≤0.05", 0.05, "<"),
        ("<=0.05", 0.05, "<"),
        ("> 0.05", 0.05, ">"),
        ("≥0.05", 0.05, ">"),
        ("0·54", 0.54, "="),  # middle dot decimal (Lancet)
        ("p<·001", 0.001, "<"),
        ("P<.05", 0.05, "<"),
        ("1", 1.0, "="),
    ],
)
def test_p_values(text, value, relation):
    assert parse_p_value(text) == PValue(value, relation)


@pytest.mark.parametrize("text", ["", "0", "-0.1", "1.5", ">1", "p", "NS", "n.s.", "0,05", "P < 0.001 **", "nan"])
def test_rejected_p_values(text):
    with pytest.raises(InputError, match="as a P value"):
        parse_p_value(text)
