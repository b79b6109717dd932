"""The bundled literature (config/studies, resources/literature) against the curated shared data.

Every row of the two shared CSVs must land in exactly one bundled table row, with its verbatim quote
and its value as printed (or as one of the documented transcriptions below), and every bundled row
must trace back to a shared row (the one documented addition is Supady2021_CYCOV's between-arm
contrast, printed in the same quote). The shared data sit outside the repository; the tests that
need them are skipped where they are absent (set CRSMETA_SHARED_DATA to point elsewhere).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
import yaml

from crsmeta.extract import (
    CASE_COLUMNS, REQUIRED_LONG_CASE_COLUMNS, REQUIRED_SUMMARY_COLUMNS, SUMMARY_COLUMNS,
)
from crsmeta.io import read_table
from crsmeta.studies import STUDY_SCHEMA

PROJECT = Path(__file__).resolve().parents[1]
STUDY_DIR = PROJECT / "config" / "studies"
SHARED = Path(os.environ.get("CRSMETA_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

MODELLED_MARKERS = {
    "IL-6", "IFN-gamma", "IL-10", "IL-2", "TNF-alpha", "IL-1beta", "IL-8", "IL-18", "sIL-2R",
    "CXCL9", "CXCL10", "MCP-1", "GM-CSF", "ferritin", "CRP", "temperature",
}
NON_MODELLED_MARKERS = {
    "vasopressor_count", "blood_pressure", "fluid_balance", "exchange_volume", "car_t_cell_count",
    "car_t_cd3_ratio", "response_rate", "survival", "patient_count", "time_to_event",
    "crs_grade_distribution", "icans", "normalisation_rate", "multi_analyte_panel", "age",
}
INTERVENTIONS = {
    "plasma_exchange", "emapalumab", "tocilizumab", "siltuximab", "anakinra", "ruxolitinib",
    "corticosteroids", "hemoadsorption", "crrt", "etoposide", "standard_care",
}
PREPRINTS = {"Authorea711693_nd", "SRSpreprint533327_nd", "HamburgCytoSorbRCT_preprint_nd"}

# (study_id, value as in the shared data) -> (bundled column, text there). Number words and
# censored text become the form the workflow reads; printed % changes of summary rows go to
# `estimate`. The printed text stays in the quote.
TRANSCRIPTIONS = {
    ("Authorea711693_nd", "over 5000"): ("value", ">5000"),
    ("FrontOncol2025_1543622_nd", "four"): ("value", "4"),
    ("SRSpreprint533327_nd", ">10,000"): ("value", ">10000"),
    ("Esposito2025", "One"): ("value", "1"),
    ("GalanGomez2025", "Nine patients treated with siltuximab (47%)"): (
        "value", "9 patients treated with siltuximab (47%)",
    ),
    ("ZhuQ2022", "five"): ("value", "5"),
    ("ZhuQ2022", "Three"): ("value", "3"),
    ("ZhuQ2022", "eleven"): ("value", "11"),
    ("JMedVirol2020_jmv26191_nd", "-95"): ("estimate", "-95"),
    ("HamburgCytoSorbRCT_preprint_nd", "-83"): ("estimate", "-83"),
    ("HamburgCytoSorbRCT_preprint_nd", "-46"): ("estimate", "-46"),
}
# Bundled rows with no shared row of their own: (study_id, column, text), each printed in a shared quote.
DOCUMENTED_ADDITIONS = Counter({("Supady2021_CYCOV", "estimate", "0.30"): 1})


def study_files() -> list[Path]:
    return sorted(STUDY_DIR.glob("*.yaml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def bundled_tables() -> dict[tuple[str, str], pd.DataFrame]:
    """(study_id, 'cases'|'summaries') -> table, for every table a study file names."""
    tables = {}
    for path in study_files():
        study = load(path)
        for kind in ("cases", "summaries"):
            if kind in study:
                tables[(study["id"], kind)] = read_table(PROJECT / study[kind]["file"])
    return tables


def read_shared(name: str) -> pd.DataFrame:
    if not (SHARED / name).is_file():
        pytest.skip(f"shared data not found at {SHARED}")
    return pd.read_csv(SHARED / name, dtype=str, keep_default_na=False)


def bundled_key(study_id: str, row: pd.Series) -> tuple[str, str, str, str]:
    """What a bundled row carries of its source: the quote and the value (or the estimate)."""
    column = "value" if row["value"] != "" or "estimate" not in row else "estimate"
    return study_id, row["quote"], column, row[column]


def shared_key(row: pd.Series) -> tuple[str, str, str, str]:
    column, text = TRANSCRIPTIONS.get((row["study_id"], row["value"]), ("value", row["value"]))
    return row["study_id"], row["source_quote"], column, text


@pytest.mark.parametrize("path", study_files(), ids=lambda path: path.stem)
def test_study_file_is_valid(path: Path) -> None:
    study = load(path)
    jsonschema.validate(study, load(STUDY_SCHEMA))
    assert study["id"] == path.stem
    for kind, known, required in (("cases", CASE_COLUMNS, REQUIRED_LONG_CASE_COLUMNS),
                                  ("summaries", SUMMARY_COLUMNS, REQUIRED_SUMMARY_COLUMNS)):
        if kind not in study:
            continue
        assert study[kind]["file"] == f"resources/literature/{study['id']}/{kind}.csv"
        table = read_table(PROJECT / study[kind]["file"])
        assert set(required) <= set(table.columns) <= set(known)
        assert len(table) > 0
    assert study.get("caveats"), "every study carries the curator's caveats"
    assert study.get("peer_reviewed", True) is (study["id"] not in PREPRINTS)
    if study["id"].endswith("_nd"):
        assert "url" in study, "_nd studies cite what was seen"


@pytest.mark.parametrize("key", sorted(bundled_tables()), ids=lambda key: f"{key[0]}-{key[1]}")
def test_rows_are_complete_and_canonical(key: tuple[str, str]) -> None:
    table = bundled_tables()[key]
    assert (table["quote"] != "").all() and (table["locator"] != "").all()
    assert set(table["digitised"]) <= {"true", "false"}
    assert set(table["timepoint"]) <= {"pre", "post", "change"}
    assert set(table["marker"]) <= MODELLED_MARKERS | NON_MODELLED_MARKERS
    assert set(table["intervention"]) <= INTERVENTIONS | {""}
    for names in table["co_interventions"]:
        assert set(filter(None, names.split(";"))) <= INTERVENTIONS
    for hours in table["hours"]:
        assert hours == "" or float(hours) >= 0
    if "n" in table:
        assert all(n == "" or re.fullmatch(r"[1-9][0-9]*", n) for n in table["n"])
    included = table[(table["exclude"] == "") & table["marker"].isin(MODELLED_MARKERS)]
    assert (included["intervention"] != "").all(), "a modelled row needs its salvage intervention"


def test_every_shared_row_lands_in_exactly_one_bundled_row() -> None:
    shared = pd.concat(
        [read_shared("literature_cases.csv"), read_shared("literature_summaries.csv")], ignore_index=True
    )
    expected = Counter(shared_key(row) for _, row in shared.iterrows())
    found = Counter(
        bundled_key(study_id, row)
        for (study_id, _), table in bundled_tables().items()
        for _, row in table.iterrows()
    )
    additions = Counter(
        {key: count for key, count in found.items() if (key[0], key[2], key[3]) in DOCUMENTED_ADDITIONS}
    )
    assert Counter({(key[0], key[2], key[3]): count for key, count in additions.items()}) == DOCUMENTED_ADDITIONS
    shared_quotes = set(zip(shared["study_id"], shared["source_quote"]))
    assert all((key[0], key[1]) in shared_quotes for key in additions), "an addition is printed in a shared quote"
    assert found - additions == expected, {
        "missing": expected - (found - additions), "unexplained": (found - additions) - expected,
    }


def test_every_shared_study_has_a_study_file() -> None:
    shared_ids = set(read_shared("literature_cases.csv")["study_id"]) | set(
        read_shared("literature_summaries.csv")["study_id"]
    )
    assert shared_ids == {path.stem for path in study_files()}


def test_padala_values_are_marked_reconstructed_and_not_paired() -> None:
    table = bundled_tables()[("Padala2020", "cases")]
    assert table["flags"].str.contains("curator_reconstructed").all()
    assert table["flags"].str.contains("timing_uncertain").all()
    assert (table["exclude"] != "").all(), "Day 1 is not known to precede the filter start"
    assert not (table["timepoint"] == "pre").any()


def test_zhangj2026_p_values_follow_the_seed_abstract() -> None:
    table = bundled_tables()[("ZhangJ2026", "summaries")]
    ifn = table[table["marker"] == "IFN-gamma"]
    assert list(ifn["p_value"]) == ["<0.001", "<0.001"]
    caveats = " ".join(load(STUDY_DIR / "ZhangJ2026.yaml")["caveats"])
    assert "UNRESOLVED" in caveats
