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


def _document():
    return yaml.safe_load(grading.MAPPING_FILE.read_text(encoding="utf-8"))


def _entries(document):
    return [(scale, grade, entry) for scale, body in document["scales"].items()
            for grade, entry in body["grades"].items()]


def test_every_entry_has_criteria_reasoning_and_every_scale_a_source():
    document = _document()
    for scale, entry in document["scales"].items():
        assert entry["source"]["citation"].strip()
        if scale != "not_reported":
            assert entry["source"].get("doi") or entry["source"].get("url")
        for grade in entry["grades"].values():
            assert grade["criteria"].strip() and grade["reasoning"].strip()


def test_every_entry_cites_its_definition_as_read():
    # Each grade of a published scale quotes its criteria verbatim with where they were read, or
    # says why no copy was found; a ref is a reference of the file or the scale's own source.
    document = _document()
    references = document["references"]
    for scale, grade, entry in _entries(document):
        if scale == "not_reported":
            assert "definition" not in entry, (scale, grade)
            continue
        assert entry["definition"], (scale, grade)
        for item in entry["definition"]:
            assert item["ref"] == "source" or item["ref"] in references, (scale, grade, item)
            assert item["locator"].strip(), (scale, grade)
            assert bool(item.get("quote", "").strip()) != bool(item.get("not_found", "").strip()), (scale, grade)


def test_definitions_not_found_are_only_the_ones_no_stored_copy_had():
    # Pinned so that a new gap is a deliberate change: CTCAE v5.0's CRS row and CTCAE v4.03
    # grade 5 were not in the stored corpora (docs/grading.md lists what was searched).
    document = _document()
    missing = {(scale, int(grade)) for scale, grade, entry in _entries(document)
               for item in entry.get("definition", []) if "not_found" in item}
    assert missing == {("CTCAE5", g) for g in range(1, 6)} | {("CTCAE4", 5)}


def test_every_entry_lists_the_cohorts_consulted():
    document = _document()
    cohorts = {ref for ref, entry in document["references"].items() if entry["kind"] == grading.COHORT}
    assert cohorts == {"schuster2020_juliet", "maziarz2019_ebmt_juliet", "pennisi2020"}
    for scale, grade, entry in _entries(document):
        consulted = entry["cohorts"]["consulted"]
        assert set(consulted) <= cohorts, (scale, grade)
        # The target maps onto itself; every other scale was checked against some regrading.
        assert bool(consulted) == (scale != "ASTCT2019"), (scale, grade)
    penn = document["scales"]["Penn"]["grades"]
    assert all("schuster2020_juliet" in penn[g]["cohorts"]["consulted"] for g in "1234")


def test_every_cohort_quotes_its_findings_with_where_they_were_read():
    for ref, entry in _document()["references"].items():
        assert entry["citation"].strip(), ref
        assert entry.get("doi") or entry.get("pmid") or entry.get("url_seen"), ref
        if entry["kind"] == grading.COHORT:
            assert entry["cross_tabulation"].strip(), ref
            assert all(f["locator"].strip() and f["quote"].strip() and f["shows"].strip()
                       for f in entry["findings"]), ref


# (scale, grade) -> ASTCT grades beyond the definitions that a cited cross-tabulation observed.
# Empty: the double-graded cohorts found (JULIET regrading, Schuster et al.; its EBMT 2019 report;
# Pennisi et al. 2020) were stored only as abstracts and reports of aggregates, so no cell of a
# (scale grade x ASTCT grade) table can be cited and, by the mapping's principles, no set widens.
WIDENED: dict[tuple[str, int], set[int]] = {}


def test_widened_sets_are_exactly_those_a_cited_cross_tabulation_shows():
    document = _document()
    widened = {}
    for scale, grade, entry in _entries(document):
        for cell in entry["cohorts"]["observed"]:
            assert set(cell["astct"]) <= grading.astct_grades(scale, grade), (scale, grade, cell)
            assert cell["ref"] in entry["cohorts"]["consulted"] and cell["locator"] and cell["quote"]
            if cell["beyond_definitions"]:
                widened.setdefault((scale, int(grade)), set()).update(cell["astct"])
    assert widened == WIDENED
    for (scale, grade), astct in WIDENED.items():
        assert astct <= grading.astct_grades(scale, grade)


def test_aggregate_regradings_widen_nothing():
    # A cohort whose cross-tabulation was not read supplies no observed cell anywhere.
    document = _document()
    aggregate_only = {ref for ref, entry in document["references"].items()
                      if entry["kind"] == grading.COHORT}
    for scale, grade, entry in _entries(document):
        assert not {cell["ref"] for cell in entry["cohorts"]["observed"]} & aggregate_only, (scale, grade)


def test_juliet_aggregates_as_quoted():
    # The numbers the file draws on, as printed in the abstract: 64 Penn-graded CRS events, 61 with
    # CRS by ASTCT (so at least 3 were ASTCT 0 at an unstated Penn grade), and 37 + 23 + 4 = 64.
    findings = " ".join(f["quote"] for f in _document()["references"]["schuster2020_juliet"]["findings"])
    assert "Sixty-four patients had CRS events graded per the Penn scale" in findings
    assert "63 and 61 patients had CRS events regraded per the Lee and ASTCT criteria" in findings
    assert "concordance for 37, lower grade for 23, and higher grade for 4 events" in findings
    # Unlocalised, these leave the sets as the definitions give them: no ASTCT 0 for a graded CRS,
    # and Penn 1-2 never ASTCT 3-4.
    assert all(0 not in grading.astct_grades("Penn", g) for g in range(1, 6))
    assert grading.astct_grades("Penn", 1) == grading.astct_grades("Penn", 2) == frozenset({1, 2})


@pytest.mark.parametrize(
    ("scale", "doi"),
    [("ASTCT2019", "10.1016/j.bbmt.2018.12.758"), ("Lee2014", "10.1182/blood-2014-05-552729"),
     ("Penn", "10.1186/s13045-018-0571-y"), ("MSKCC", "10.1056/NEJMoa1709919"),
     ("CARTOX", "10.1038/nrclinonc.2017.148")],
)
def test_sources_carry_their_doi(scale, doi):
    assert _document()["scales"][scale]["source"]["doi"] == doi


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
        (lambda d: d["scales"]["Penn"]["grades"]["2"].pop("definition"), "does not cite its definition"),
        (lambda d: d["scales"]["Penn"]["grades"]["2"]["definition"][0].pop("quote"), "definition item is incomplete"),
        (lambda d: d["scales"]["Penn"]["grades"]["2"]["definition"][0].update(not_found="no copy"),
         "definition item is incomplete"),
        (lambda d: d["scales"]["Penn"]["grades"]["2"]["definition"][0].update(ref="nowhere"),
         "definition item is incomplete"),
        (lambda d: d["scales"]["Lee2014"]["grades"]["3"].pop("cohorts"), "does not list the cohorts consulted"),
        (lambda d: d["scales"]["Lee2014"]["grades"]["3"]["cohorts"]["consulted"].append("liu_zhao_2018_table1"),
         "not a double-graded cohort"),
        (lambda d: d["references"]["pennisi2020"].pop("citation"), "reference 'pennisi2020' is incomplete"),
        (lambda d: d["references"]["pennisi2020"].update(findings=[]), "quotes no findings"),
        (lambda d: d.pop("references"), "no references"),
        (lambda d: d["scales"]["Penn"]["grades"]["2"]["cohorts"]["observed"].append(dict(_CELL)),
         r"observed ASTCT \[3\] outside the set \[1, 2\]"),
        (lambda d: d["scales"]["Penn"]["grades"]["2"]["cohorts"]["observed"].append(dict(_CELL, ref="pennisi2020x")),
         "observed cross-tabulation cell is incomplete"),
    ],
)
def test_malformed_mapping_files_are_refused(tmp_path, mutate, message):
    with pytest.raises(InputError, match=message):
        grading.load_mapping(_write_mapping(tmp_path, mutate))


def test_errors_name_the_key_and_line(tmp_path):
    path = _write_mapping(tmp_path, lambda d: d["scales"]["Penn"]["grades"]["2"]["definition"][0].pop("locator"))
    with pytest.raises(InputError) as error:
        grading.load_mapping(path)
    assert error.value.key == "scales.Penn.grades.2.definition.0" and error.value.line


# A cross-tabulation cell as a curator would cite it (SYNTHETIC: no such cell was read).
_CELL = {"ref": "schuster2020_juliet", "astct": [3], "locator": "Table 2, row Penn grade 2, column ASTCT grade 3",
         "quote": "SYNTHETIC test quote", "beyond_definitions": True}


def test_a_widened_set_loads_only_with_its_cell(tmp_path):
    # The mechanism a real cross-tabulation would use: the cell outside the definitions' set is
    # refused until the set holds it; then the widened set is what astct_grades reads.
    def widen(document):
        entry = document["scales"]["Penn"]["grades"]["2"]
        entry["cohorts"]["observed"].append(dict(_CELL))
        entry["astct"] = [1, 2, 3]

    mapping = grading.load_mapping(_write_mapping(tmp_path, widen))
    assert mapping["Penn"][2] == frozenset({1, 2, 3})
