"""CRS grade → set of ASTCT 2019 grades, and exact ASTCT re-grading."""

from __future__ import annotations

import itertools

import pytest
import yaml

from crsmeta import grading
from crsmeta.errors import InputError

ALL_NONFATAL = {1, 2, 3, 4}
# The table derived in src/crsmeta/data/astct_mapping.yaml, pinned here: a change to the YAML must
# be a deliberate change to this table too.
EXPECTED = {
    "ASTCT2019": {0: {0}, 1: {1}, 2: {2}, 3: {3}, 4: {4}, 5: {5}},
    "Lee2014": {1: {1}, 2: {1, 2, 3}, 3: {1, 2, 3, 4}, 4: {1, 2, 3, 4}, 5: {5}},
    "Penn": {1: {1, 2}, 2: {1, 2}, 3: {1, 2, 3, 4}, 4: {1, 2, 3, 4}, 5: {5}},
    "MSKCC": {1: {1, 2}, 2: {2, 3, 4}, 3: {2, 3, 4}, 4: {1, 2, 3, 4}, 5: {5}},
    "CARTOX": {1: {1}, 2: {1, 2, 3}, 3: {1, 2, 3, 4}, 4: {1, 2, 3, 4}, 5: {5}},
    "CTCAE4": {1: {1}, 2: {1, 2}, 3: {1, 2, 3}, 4: {1, 2, 3, 4}, 5: {5}},
    "CTCAE5": {1: {1}, 2: {2, 3}, 3: {2, 3}, 4: {1, 2, 3, 4}, 5: {5}},
    "not_reported": {1: ALL_NONFATAL, 2: ALL_NONFATAL, 3: ALL_NONFATAL, 4: ALL_NONFATAL, 5: {5}},
}
ENTRIES = [(scale, grade, astct) for scale, grades in EXPECTED.items() for grade, astct in grades.items()]


@pytest.mark.parametrize(("scale", "grade", "astct"), ENTRIES)
def test_every_mapping_entry(scale, grade, astct):
    assert grading.astct_grades(scale, grade) == frozenset(astct)
    assert grading.astct_grades(scale, str(grade)) == frozenset(astct)


def test_table_has_exactly_the_pinned_entries():
    mapping = grading.load_mapping()
    assert set(mapping) == set(grading.SCALES) == set(EXPECTED)
    for scale in grading.SCALES:
        assert set(mapping[scale]) == set(EXPECTED[scale])


def test_every_entry_has_criteria_reasoning_and_every_scale_a_source():
    document = yaml.safe_load(grading.MAPPING_FILE.read_text(encoding="utf-8"))
    for scale, entry in document["scales"].items():
        assert entry["source"]["citation"].strip()
        if scale != "not_reported":
            assert entry["source"].get("doi") or entry["source"].get("url")
        for grade in entry["grades"].values():
            assert grade["criteria"].strip() and grade["reasoning"].strip()


@pytest.mark.parametrize(
    ("scale", "doi"),
    [("ASTCT2019", "10.1016/j.bbmt.2018.12.758"), ("Lee2014", "10.1182/blood-2014-05-552729"),
     ("Penn", "10.1186/s13045-018-0571-y"), ("MSKCC", "10.1056/NEJMoa1709919"),
     ("CARTOX", "10.1038/nrclinonc.2017.148")],
)
def test_sources_carry_their_doi(scale, doi):
    document = yaml.safe_load(grading.MAPPING_FILE.read_text(encoding="utf-8"))
    assert document["scales"][scale]["source"]["doi"] == doi


def test_lee_grade_3_admits_astct_2_contrary_to_the_issue_claim():
    # Fluid-responsive hypotension (ASTCT 2) plus grade 3 organ toxicity is Lee grade 3.
    assert 2 in grading.astct_grades("Lee2014", 3)
    assert grading.regrade_astct(True, "fluids", "none") == 2


def test_sets_are_contiguous_but_need_not_start_at_one():
    # No set derived from the criteria is non-contiguous; several exclude ASTCT 1.
    for scale, grades in grading.load_mapping().items():
        for grade, astct in grades.items():
            assert astct == frozenset(range(min(astct), max(astct) + 1)), (scale, grade)
    assert 1 not in grading.astct_grades("MSKCC", 2)
    assert 1 not in grading.astct_grades("CTCAE5", 3)


@pytest.mark.parametrize("text", ["3", "3.0", "grade 3", "Grade 3", "G3", "g 3", " 3 ", "gr. 3"])
def test_grade_text_forms(text):
    assert grading.astct_grades("Lee2014", text) == frozenset({1, 2, 3, 4})


@pytest.mark.parametrize(("scale", "grade"), [("Lee2014", 6), ("Lee2014", 0), ("MSKCC", "x"), ("Penn", "3.5"),
                                              ("CTCAE5", "grade three"), ("CARTOX", True), ("not_reported", 0),
                                              ("ASTCT2019", -1), ("CTCAE4", "")])
def test_impossible_grade_lists_valid_grades(scale, grade):
    with pytest.raises(InputError, match="impossible grade") as error:
        grading.astct_grades(scale, grade)
    assert "1, 2, 3, 4, 5" in str(error.value)


def test_unknown_scale_lists_scales():
    with pytest.raises(InputError, match="unknown grading scale 'WHO'") as error:
        grading.astct_grades("WHO", 2)
    assert all(scale in str(error.value) for scale in grading.SCALES)


HYPOTENSION = {"none": 0, "fluids": 2, "one_pressor": 3, "multiple_pressors": 4}
OXYGEN = {"none": 0, "low_flow": 2, "high_flow": 3, "positive_pressure": 4}
# Worse-of-two table written out by hand (rows: hypotension, columns: oxygen none/low/high/positive).
WORST = {
    "none": [0, 2, 3, 4],
    "fluids": [2, 2, 3, 4],
    "one_pressor": [3, 3, 3, 4],
    "multiple_pressors": [4, 4, 4, 4],
}


@pytest.mark.parametrize(("fever", "hypotension", "oxygen"),
                         list(itertools.product([True, False], HYPOTENSION, OXYGEN)))
def test_regrading_every_combination(fever, hypotension, oxygen):
    expected = WORST[hypotension][list(OXYGEN).index(oxygen)] or (1 if fever else 0)
    assert grading.regrade_astct(fever, hypotension, oxygen) == expected


def test_regrading_named_cases():
    assert grading.regrade_astct(True, "none", "none") == 1
    assert grading.regrade_astct(False, "none", "none") == 0
    # After tocilizumab or steroids fever may be masked: hypotension/hypoxia still grade.
    assert grading.regrade_astct(False, "one_pressor", "none") == 3
    # Consensus example: a febrile patient on one vasopressor and low-flow cannula is grade 3.
    assert grading.regrade_astct(True, "one_pressor", "low_flow") == 3


@pytest.mark.parametrize(("hypotension", "oxygen", "bad"), [("pressor", "none", "hypotension"),
                                                             ("none", "CPAP", "oxygen"),
                                                             ("Fluids", "none", "hypotension")])
def test_regrading_refuses_unknown_categories(hypotension, oxygen, bad):
    with pytest.raises(InputError, match=f"unknown {bad} category") as error:
        grading.regrade_astct(True, hypotension, oxygen)
    assert "one of" in str(error.value)


@pytest.mark.parametrize(("grades", "text"), [(frozenset({4, 1, 3}), "1|3|4"), (frozenset({2}), "2"),
                                              (frozenset(), ""), (frozenset(range(6)), "0|1|2|3|4|5")])
def test_format_and_parse_grades_round_trip(grades, text):
    assert grading.format_grades(grades) == text
    assert grading.parse_grades(text) == grades


@pytest.mark.parametrize("text", ["1|x", "6", "1,3", "-1", "1||3"])
def test_parse_grades_refuses_bad_text(text):
    with pytest.raises(InputError, match="ASTCT grades"):
        grading.parse_grades(text)


def _write_mapping(tmp_path, mutate):
    document = yaml.safe_load(grading.MAPPING_FILE.read_text(encoding="utf-8"))
    mutate(document)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["scales"].pop("Penn"), "exactly the known scales"),
        (lambda d: d["scales"]["Lee2014"]["grades"]["3"].update(astct=[1, 7]), "malformed"),
        (lambda d: d["scales"]["Lee2014"]["grades"]["3"].update(astct=[]), "malformed"),
        (lambda d: d["scales"]["Lee2014"]["grades"]["3"].pop("reasoning"), "malformed"),
        (lambda d: d["scales"]["MSKCC"].pop("source"), "source"),
        (lambda d: d["scales"]["MSKCC"]["grades"].update({"x": d["scales"]["MSKCC"]["grades"]["1"]}), "malformed grade"),
    ],
)
def test_malformed_mapping_files_are_refused(tmp_path, mutate, message):
    with pytest.raises(InputError, match=message):
        grading.load_mapping(_write_mapping(tmp_path, mutate))
