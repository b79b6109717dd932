"""Canonical names of interventions and markers, synonyms, suggestions and clash detection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from crsmeta import grading, tables, vocabulary
from crsmeta.changes import DEFAULT_SELECTION, DEFAULT_TARGET_HOURS, DEFAULT_WINDOW_HOURS, derive_changes
from crsmeta.errors import InputError
from crsmeta.extract import extract_cases, extract_summaries
from crsmeta.harmonise import harmonise_study
from crsmeta.studies import load_study
from crsmeta.vocabulary import ChangeScale, MarkerInfo


def _names(path, section):
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [(canonical, name) for canonical, entry in document[section].items()
            for name in (canonical, *entry["synonyms"])]


INTERVENTION_NAMES = _names(vocabulary.INTERVENTIONS_FILE, "interventions")
MARKER_NAMES = _names(vocabulary.MARKERS_FILE, "markers")
CYTOKINE_FAMILY = ("{description: d, accepted_units: [pg/mL], change_scale: log_ratio, "
                   "implausible_hints: {below: b, above: a}}")


@pytest.mark.parametrize(("canonical", "name"), INTERVENTION_NAMES)
def test_every_intervention_synonym(canonical, name):
    assert vocabulary.canonical_intervention(name) == canonical
    assert vocabulary.canonical_intervention(name.upper()) == canonical
    assert vocabulary.canonical_intervention(f"  {name.lower()} ") == canonical


@pytest.mark.parametrize(("canonical", "name"), MARKER_NAMES)
def test_every_marker_synonym(canonical, name):
    assert vocabulary.canonical_marker(name) == canonical
    assert vocabulary.canonical_marker(name.lower()) == canonical


@pytest.mark.parametrize("name", ["il6", "IL 6", "Il-6", "IL_6", "il-6", "Interleukin 6", "interleukin-6"])
def test_spacing_hyphen_and_case_variants(name):
    assert vocabulary.canonical_marker(name) == "IL-6"


@pytest.mark.parametrize(("name", "canonical"), [("IFN-γ", "IFN-gamma"), ("IFNγ", "IFN-gamma"), ("ifn gamma", "IFN-gamma"),
                                                 ("TNF-α", "TNF-alpha"), ("IL-1β", "IL-1beta"),
                                                 ("Plasma Exchange", "plasma_exchange"), ("cytosorb", "hemoadsorption"),
                                                 ("Therapeutic plasma-exchange", "plasma_exchange")])
def test_greek_letters_and_mixed_forms(name, canonical):
    lookup = vocabulary.canonical_marker if canonical[0].isupper() else vocabulary.canonical_intervention
    assert lookup(name) == canonical


def test_unknown_intervention_suggests_the_closest():
    with pytest.raises(InputError) as error:
        vocabulary.canonical_intervention("Plasmapheresiss")
    assert error.value.problem == "unknown intervention 'Plasmapheresiss'"
    assert error.value.expected.startswith("a known intervention, e.g. the closest: plasma_exchange (plasmapheresis)")
    assert error.value.expected.endswith("or add it to src/crsmeta/data/interventions.yaml")


def test_unknown_marker_suggests_the_closest():
    with pytest.raises(InputError) as error:
        vocabulary.canonical_marker("ferritine")
    assert "the closest: ferritin" in error.value.expected
    assert "src/crsmeta/data/markers.yaml" in error.value.expected


def test_a_suggestion_outside_the_working_directory_names_the_whole_path(tmp_path, monkeypatch):
    # an installed package's vocabulary lies in site-packages, not in the project Snakemake runs in
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as error:
        vocabulary.canonical_intervention("Plasmapheresiss")
    assert error.value.expected.endswith(f"or add it to {vocabulary.INTERVENTIONS_FILE.resolve()}")


def test_unknown_name_without_close_match_lists_all_canonical_names():
    with pytest.raises(InputError) as error:
        vocabulary.canonical_intervention("xyzzy")
    assert "one of: plasma_exchange, emapalumab" in error.value.expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("   ", ()),
        ("tocilizumab", ("tocilizumab",)),
        ("dexamethasone; tocilizumab", ("corticosteroids", "tocilizumab")),
        ("toci + CytoSorb, steroids", ("corticosteroids", "hemoadsorption", "tocilizumab")),
        ("dexamethasone; methylprednisolone; Actemra", ("corticosteroids", "tocilizumab")),
        ("CRRT; TPE; ruxolitinib;", ("crrt", "plasma_exchange", "ruxolitinib")),
    ],
)
def test_co_interventions(text, expected):
    assert vocabulary.canonical_co_interventions(text) == expected


def test_co_interventions_refuse_unknown_names():
    with pytest.raises(InputError, match="unknown intervention 'magic'"):
        vocabulary.canonical_co_interventions("tocilizumab; magic")


def test_marker_info_of_modelled_marker():
    assert vocabulary.marker_info("il6") == MarkerInfo(
        "IL-6", True, None, "pg/mL", "cytokine", (0.0, 1e7), ChangeScale.LOG_RATIO)
    assert vocabulary.marker_info("Tmax").plausible_range == (33.0, 43.0)
    assert vocabulary.marker_info("C-reactive protein").family == "acute_phase"


def test_marker_info_of_non_modelled_entry():
    info = vocabulary.marker_info("vasopressors")
    assert info.name == "vasopressor_count" and not info.modelled
    assert info.reason == "clinical parameter, not a circulating marker or temperature"
    assert (info.unit, info.family, info.plausible_range, info.change_scale) == (None, None, None, None)
    assert "many analytes" in vocabulary.marker_info("multi_analyte_panel").reason


@pytest.mark.parametrize("name", ["IL-6", "IFN-gamma", "IL-10", "IL-2", "TNF-alpha", "IL-1beta", "IL-8", "IL-18",
                                  "sIL-2R", "CXCL9", "CXCL10", "MCP-1", "GM-CSF", "ferritin", "CRP", "temperature"])
def test_modelled_markers(name):
    assert vocabulary.is_modelled(name)


@pytest.mark.parametrize("name", ["vasopressor_count", "blood_pressure", "fluid_balance", "exchange_volume",
                                  "car_t_cell_count", "car_t_cd3_ratio", "response_rate", "survival",
                                  "patient_count", "time_to_event", "crs_grade_distribution", "normalisation_rate",
                                  "multi_analyte_panel", "age"])
def test_non_modelled_entries(name):
    assert not vocabulary.is_modelled(name)
    assert vocabulary.marker_info(name).reason


def test_every_modelled_marker_has_unit_family_and_range():
    for info in vocabulary.load_markers().markers.values():
        if info.modelled:
            assert info.unit and info.family in vocabulary.load_markers().families
            low, high = info.plausible_range
            assert low < high


@pytest.mark.parametrize(("name", "scale", "unit"), [
    ("temperature", ChangeScale.DIFFERENCE, "degC_difference"), ("Tmax", ChangeScale.DIFFERENCE, "degC_difference"),
    ("IL-6", ChangeScale.LOG_RATIO, "log_ratio"), ("interferon gamma", ChangeScale.LOG_RATIO, "log_ratio"),
    ("ferritin", ChangeScale.LOG_RATIO, "log_ratio"), ("CRP", ChangeScale.LOG_RATIO, "log_ratio"),
])
def test_change_scale_and_unit_come_from_the_family(name, scale, unit):
    assert vocabulary.change_scale(name) is scale
    assert vocabulary.change_unit(name) == unit


def test_change_scale_of_an_unknown_marker_names_it_and_the_vocabulary():
    with pytest.raises(InputError) as error:
        vocabulary.change_scale("IL-99")
    assert "unknown marker 'IL-99'" in str(error.value)
    assert "src/crsmeta/data/markers.yaml" in str(error.value)


def test_a_marker_that_is_not_modelled_has_no_change_scale():
    with pytest.raises(InputError, match="'vasopressor_count' is not modelled .* no change scale") as error:
        vocabulary.change_scale("vasopressors")
    assert "src/crsmeta/data/markers.yaml" in str(error.value)


@pytest.mark.parametrize(("family", "message"), [
    ("{description: d, accepted_units: [pg/mL]}", "has no valid change_scale"),
    (CYTOKINE_FAMILY.replace("log_ratio", "ratio"), "has no valid change_scale"),
    (CYTOKINE_FAMILY.replace("above: a", "higher: a"), "has no implausible_hints"),
])
def test_a_family_without_a_valid_change_scale_or_hints_is_refused(tmp_path, family, message):
    text = (f"families:\n  cytokine: {family}\nmarkers:\n"
            "  X: {modelled: true, family: cytokine, unit: pg/mL, plausible_range: [0.0, 1.0], synonyms: []}\n")
    path = _write(tmp_path, text)
    with pytest.raises(InputError, match=f"family 'cytokine' {message}") as error:
        vocabulary.load_markers(path)
    assert str(path) in str(error.value)


def _write(tmp_path, text):
    path = tmp_path / "vocabulary.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_duplicate_synonym_across_interventions_is_refused(tmp_path):
    path = _write(tmp_path, "interventions:\n  a:\n    synonyms: [PE]\n  b:\n    synonyms: [p-e]\n")
    with pytest.raises(InputError, match="'p-e' of 'b' is already a name of 'a'") as error:
        vocabulary.load_interventions(path)
    assert str(path) in str(error.value)


def test_synonym_equal_to_another_canonical_name_is_refused(tmp_path):
    path = _write(tmp_path, "interventions:\n  steroids:\n    synonyms: []\n  corticosteroids:\n    synonyms: [Steroids]\n")
    with pytest.raises(InputError, match="already a name of 'steroids'"):
        vocabulary.load_interventions(path)


def test_a_synonym_repeating_its_own_canonical_name_is_fine(tmp_path):
    path = _write(tmp_path, "interventions:\n  plasma_exchange:\n    synonyms: [plasma exchange, Plasma-Exchange]\n")
    assert vocabulary.load_interventions(path).canonical("PLASMA EXCHANGE") == "plasma_exchange"


def test_duplicate_marker_synonym_is_refused(tmp_path):
    text = """
families:
  cytokine: {description: a cytokine, accepted_units: [pg/mL]}
markers:
  IL-6: {modelled: true, family: cytokine, unit: pg/mL, plausible_range: [0.0, 1.0e+7], synonyms: [IL6]}
  IL-66: {modelled: true, family: cytokine, unit: pg/mL, plausible_range: [0.0, 1.0e+7], synonyms: [il 6]}
"""
    with pytest.raises(InputError, match="already a name of 'IL-6'"):
        vocabulary.load_markers(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{modelled: false, synonyms: []}", "gives no reason"),
        ("{modelled: true, family: cytokine, unit: pg/mL, plausible_range: [0.0, 1e7], synonyms: []}",
         "malformed plausible_range"),
        ("{modelled: true, family: other, unit: pg/mL, plausible_range: [0.0, 1.0], synonyms: []}",
         "no valid family"),
        ("{family: cytokine, synonyms: []}", "modelled"),
        ("{modelled: false, reason: r, synonyms: IL6}", "malformed synonyms"),
    ],
)
def test_malformed_marker_entries_are_refused(tmp_path, entry, message):
    text = f"families:\n  cytokine: {CYTOKINE_FAMILY}\nmarkers:\n  X: {entry}\n"
    with pytest.raises(InputError, match=message):
        vocabulary.load_markers(_write(tmp_path, text))


# --- the files the workflow declares are the files read --------------------------------------

PROJECT_SYNONYM = "TCZ-project-synonym"
SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
RUN_SCRIPT = """
import json, runpy, sys
from types import SimpleNamespace
job = json.loads(sys.argv[1])
snakemake = SimpleNamespace(**{part: SimpleNamespace(**job[part]) for part in job}, log=[sys.argv[3]])
runpy.run_path(sys.argv[2], init_globals={"snakemake": snakemake})
"""


def _project_with_own_vocabulary(tmp_path: Path) -> tuple[Path, Path]:
    """A project whose own intervention vocabulary knows a synonym the package's does not, and a
    study that prints it; returns the vocabulary file and the study file."""
    document = yaml.safe_load(vocabulary.INTERVENTIONS_FILE.read_text(encoding="utf-8"))
    document["interventions"]["tocilizumab"]["synonyms"].append(PROJECT_SYNONYM)
    own = tmp_path / "resources" / "vocabulary" / "interventions.yaml"
    own.parent.mkdir(parents=True)
    own.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    table = tmp_path / "resources" / "s1" / "cases.csv"
    table.parent.mkdir(parents=True)
    table.write_text("patient,intervention,marker,timepoint,hours,value,unit,crs_grade,locator,quote\n"
                     f"P1,{PROJECT_SYNONYM},IL-6,pre,0,120,pg/mL,3,Table 1,quoted\n", encoding="utf-8")
    study = tmp_path / "config" / "studies" / "s1.yaml"
    study.parent.mkdir(parents=True)
    study.write_text("id: s1\ncitation: SYNTHETIC test study s1\nurl: https://example.org/s1\n"
                     "population: car_t_crs\ndesign: case_series\ngrading_scale: Lee2014\nsynthetic: true\n"
                     "cases: {file: resources/s1/cases.csv, layout: long}\n", encoding="utf-8")
    return own, study


def test_harmonise_reads_the_vocabulary_it_is_given(tmp_path: Path) -> None:
    own, study_file = _project_with_own_vocabulary(tmp_path)
    study = load_study(study_file, tmp_path)
    cases, summaries = extract_cases(study), extract_summaries(study)
    with pytest.raises(InputError, match=f"unknown intervention '{PROJECT_SYNONYM}'"):
        harmonise_study(study, cases, summaries)
    harmonised = harmonise_study(study, cases, summaries, interventions=own)
    assert list(harmonised.cases["intervention"]) == ["tocilizumab"]
    assert vocabulary.load_interventions().path == vocabulary.INTERVENTIONS_FILE, "the package's again after"


def test_the_rule_script_passes_its_declared_vocabulary_to_the_library(tmp_path: Path) -> None:
    """workflow/scripts/harmonise_study.py with a project's own file as its `interventions` input."""
    own, study_file = _project_with_own_vocabulary(tmp_path)
    study = load_study(study_file, tmp_path)
    extracted = {"cases": tmp_path / "cases.tsv", "summaries": tmp_path / "summaries.tsv"}
    tables.write(tables.EXTRACTED_CASES, extract_cases(study), extracted["cases"])
    tables.write(tables.EXTRACTED_SUMMARIES, extract_summaries(study), extracted["summaries"])
    outputs = {name: tmp_path / "out" / f"{name}.tsv" for name in ("cases", "summaries", "rows", "conversions")}
    job = {"input": {**extracted, "interventions": own, "markers": vocabulary.MARKERS_FILE,
                     "grade_mapping": grading.MAPPING_FILE},
           "output": outputs, "params": {"study": study_file, "project_dir": tmp_path}}
    _run_rule_script("harmonise_study.py", job, tmp_path / "harmonise.log")
    assert list(tables.read(tables.HARMONISED_CASES, outputs["cases"])["intervention"]) == ["tocilizumab"]


def _run_rule_script(script: str, job: dict, log: Path) -> None:
    """Run workflow/scripts/<script> with Snakemake's `snakemake` object, as far as the script reads
    it (``job``: its input, output and params), in a process of its own (the script takes over
    logging and stderr)."""
    run = subprocess.run([sys.executable, "-c", RUN_SCRIPT, json.dumps(job, default=str), str(SCRIPTS / script),
                          str(log)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, log.read_text(encoding="utf-8") if log.is_file() else run.stderr


def _markers_with_cytokine_differences(tmp_path: Path) -> Path:
    """A project's own marker vocabulary in which a cytokine's change is a difference in its unit,
    where the package's is a log ratio."""
    document = yaml.safe_load(vocabulary.MARKERS_FILE.read_text(encoding="utf-8"))
    document["families"]["cytokine"]["change_scale"] = "difference"
    own = tmp_path / "resources" / "vocabulary" / "markers.yaml"
    own.parent.mkdir(parents=True)
    own.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return own


def _il6_before_and_after() -> pd.DataFrame:
    """One patient's IL-6, 1000 pg/mL before and 100 pg/mL 24 h after, as harmonised cases."""
    records = []
    for source_row, (timepoint, hours, value) in enumerate([("pre", "-2", "1000"), ("post", "24", "100")], start=2):
        record = dict.fromkeys(tables.HARMONISED_CASES.columns, "")
        record.update(study_id="s1", patient_id="p1", population="car_t_crs", design="case_report",
                      intervention="tocilizumab", marker="IL-6", timepoint=timepoint, hours=hours, value=value,
                      unit="pg/mL", censoring="none", digitised="False", synthetic="True",
                      source_file="cases.csv", source_row=str(source_row), source_column="value")
        records.append(record)
    return tables.parse(tables.HARMONISED_CASES, pd.DataFrame(records, dtype=str))


def test_the_changes_follow_the_marker_vocabulary_in_use(tmp_path: Path) -> None:
    own, cases = _markers_with_cytokine_differences(tmp_path), _il6_before_and_after()
    with vocabulary.files_in_use(markers=own):
        changes, _ = derive_changes(cases)
    assert list(changes["unit"]) == ["pg/mL_difference"]
    assert changes["change"].iloc[0] == pytest.approx(100 - 1000)
    changes, _ = derive_changes(cases)
    assert list(changes["unit"]) == ["log_ratio"], "the package's vocabulary again after"


def test_a_downstream_rule_script_reads_the_marker_vocabulary_it_declares(tmp_path: Path) -> None:
    """workflow/scripts/derive_changes.py with a project's own file as its `markers` input: IL-6's
    change is on that file's scale, not the package's (a log ratio)."""
    own = _markers_with_cytokine_differences(tmp_path)
    cases = tmp_path / "cases.tsv"
    tables.write(tables.HARMONISED_CASES, _il6_before_and_after(), cases)
    outputs = {name: tmp_path / "out" / f"{name}.tsv" for name in ("changes", "pairing")}
    job = {"input": {"cases": cases, "markers": own}, "output": outputs,
           "params": {"selection": DEFAULT_SELECTION, "window_hours": list(DEFAULT_WINDOW_HOURS),
                      "target_hours": DEFAULT_TARGET_HOURS}}
    _run_rule_script("derive_changes.py", job, tmp_path / "derive_changes.log")
    changes = tables.read(tables.CHANGES, outputs["changes"])
    assert list(changes["unit"]) == ["pg/mL_difference"]
    assert changes["change"].iloc[0] == pytest.approx(100 - 1000)
