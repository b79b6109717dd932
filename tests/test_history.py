"""The living review's history (crsmeta.history): snapshots kept once per data and settings,
written whole or not at all, and what changed since the snapshot before. All tables are SYNTHETIC."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup

from crsmeta import history, tables
from crsmeta.report import ReportInputs
from crsmeta.report.render import report_html
from fixtures.report.build import write_fixture_project

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
SETTINGS = {"seed": 1, "sampler": {"chains": 2, "draws": 100}}


def estimate(intervention="tocilizumab", marker="IL-6", median=-0.5, lo=-1.0, hi=-0.1, p=0.95, n_studies=2) -> dict:
    """One SYNTHETIC main-effects row (the columns a snapshot keeps)."""
    return {"intervention": intervention, "marker": marker, "scale": "log_ratio", "n_studies": n_studies,
            "n_patients": 10 * n_studies, "theta_median": median, "theta_lo95": lo, "theta_hi95": hi,
            "p_reduction": p, "synthetic": True}


def audit_rows(counts: dict[str, tuple[int, int]]) -> pd.DataFrame:
    """A SYNTHETIC row audit: per study, that many included rows and excluded ('not a modelled marker')."""
    rows = []
    for study_id, (included, excluded) in counts.items():
        rows += [{"study_id": study_id, "status": "included", "reason": ""}] * included
        rows += [{"study_id": study_id, "status": "excluded", "reason": "not a modelled marker"}] * excluded
    return pd.DataFrame(rows)


def diagnostics(gates: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"analysis": list(gates), "kind": "fit", "gate": list(gates.values())})


def study_files(root: Path, contents: dict[str, str]) -> dict[str, list[Path]]:
    """SYNTHETIC study files with the given text, one per study id."""
    files = {}
    for study_id, text in contents.items():
        path = root / "studies" / f"{study_id}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"id: {study_id}\nsynthetic: true\n{text}\n", encoding="utf-8")
        files[study_id] = [path]
    return files


def snapshot(root: Path, *, studies=None, effects=None, settings=SETTINGS, rows=None, gates=None,
             minutes: int = 0) -> history.Snapshot:
    studies = studies or {"s1": "a", "s2": "b"}
    return history.build_snapshot(
        effects=pd.DataFrame(effects or [estimate()]),
        rows=audit_rows(rows or {study_id: (3, 1) for study_id in studies}),
        diagnostics=diagnostics(gates or {"main": "passed"}),
        study_files=study_files(root, studies), settings=settings, now=START + timedelta(minutes=minutes),
    )


def record(root: Path, **options) -> list[history.Snapshot]:
    return history.record_snapshot(snapshot(root, **options), root / "snapshots")


# --------------------------------------------------------------------------- snapshots


def test_first_run_has_nothing_to_compare_with(tmp_path: Path) -> None:
    recorded = record(tmp_path)
    assert [s.id for s in recorded] == ["0001-20260301T120000Z"]
    previous, current = history.latest_pair(recorded)
    assert previous is None
    assert history.compare(previous, current).empty
    summary = history.comparison_summary(recorded)
    assert summary["previous"] is None and summary["snapshots"] == 1 and not summary["config_changed"]
    assert history.summary_lines(summary, history.compare(previous, current)) == []


def test_same_data_and_settings_add_no_snapshot(tmp_path: Path) -> None:
    record(tmp_path)
    again = record(tmp_path, minutes=5)
    assert [s.sequence for s in again] == [1]
    assert len(list((tmp_path / "snapshots").iterdir())) == 1
    settings_changed = record(tmp_path, settings={**SETTINGS, "seed": 2}, minutes=10)
    assert [s.sequence for s in settings_changed] == [1, 2]
    # the comparison stays the latest against the one before when a rerun changes nothing
    rerun = record(tmp_path, settings={**SETTINGS, "seed": 2}, minutes=15)
    previous, current = history.latest_pair(rerun)
    assert (previous.sequence, current.sequence) == (1, 2)
    assert history.comparison_summary(rerun)["config_changed"]


def test_config_hash_ignores_key_order_and_data_hash_sees_every_byte(tmp_path: Path) -> None:
    assert history.config_hash({"a": 1, "b": {"c": 2, "d": 3}}) == history.config_hash({"b": {"d": 3, "c": 2}, "a": 1})
    assert history.config_hash({"a": 1}) != history.config_hash({"a": 2})
    one = history.study_hashes(study_files(tmp_path / "one", {"s1": "a"}))
    other = history.study_hashes(study_files(tmp_path / "other", {"s1": "a "}))
    assert history.data_hash(one) != history.data_hash(other)


def test_a_snapshot_reads_back_as_written(tmp_path: Path) -> None:
    written = record(tmp_path, gates={"main": "passed", "student_t": "failed"})[-1]
    read = history.read_history(tmp_path / "snapshots")[-1]
    assert read.meta() == written.meta()
    for name in ("studies", "effects", "inclusion"):
        pd.testing.assert_frame_equal(getattr(read, name), getattr(written, name), check_dtype=False)


def test_a_failed_write_leaves_no_half_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written, write = [], tables.write

    def write_then_fail(table, data, path):
        if table is tables.SNAPSHOT_INCLUSION:
            raise OSError("disk full (simulated)")
        written.append(Path(path))
        write(table, data, path)

    monkeypatch.setattr(tables, "write", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        record(tmp_path)
    assert written, "the snapshot failed before writing any file: the test checks nothing"
    assert list((tmp_path / "snapshots").iterdir()) == []
    assert history.read_history(tmp_path / "snapshots") == []


def test_a_leftover_temporary_directory_is_not_a_snapshot(tmp_path: Path) -> None:
    (tmp_path / "snapshots/.0001-20260301T120000Z.abc.tmp").mkdir(parents=True)
    assert history.read_history(tmp_path / "snapshots") == []
    assert [s.sequence for s in record(tmp_path)] == [1]


# --------------------------------------------------------------------------- what changed


def test_studies_added_removed_and_edited(tmp_path: Path) -> None:
    record(tmp_path, studies={"kept": "x", "edited": "y", "dropped": "z"})
    recorded = record(tmp_path, studies={"kept": "x", "edited": "y, corrected", "new": "w"}, minutes=1)
    changes = history.compare(*history.latest_pair(recorded))
    studies = changes[changes["item"] == "study"].set_index("study_id")
    assert studies["change"].to_dict() == {"dropped": "removed", "edited": "edited", "new": "added"}
    assert studies.loc["new", "previous_hash"] == "" and studies.loc["new", "current_hash"] != ""
    assert studies.loc["edited", "previous_hash"] != studies.loc["edited", "current_hash"]
    lines = history.summary_lines(history.comparison_summary(recorded), changes)
    assert "1 study added: new." in lines and "1 study removed: dropped." in lines
    assert "1 study edited: edited." in lines


def crossing(before: dict, after: dict) -> dict:
    return history.estimate_change(before, after)


@pytest.mark.parametrize(("p_before", "p_after", "p90", "p95", "words"), [
    (0.85, 0.92, True, False, "P(reduction) reached 0.9 (0.85 → 0.92)"),
    (0.92, 0.97, False, True, "P(reduction) reached 0.95 (0.92 → 0.97)"),
    (0.80, 0.97, True, True, "P(reduction) reached 0.9 and 0.95 (0.80 → 0.97)"),
    (0.96, 0.85, True, True, "P(reduction) fell below 0.9 and 0.95 (0.96 → 0.85)"),
    (0.91, 0.93, False, False, ""),
])
def test_p_reduction_crossing_0_9_or_0_95(p_before, p_after, p90, p95, words) -> None:
    change = crossing(estimate(p=p_before), estimate(p=p_after))
    assert (change["crossed_p90"], change["crossed_p95"]) == (p90, p95)
    assert change["conclusions"] == words
    assert change["change"] == "moved"


@pytest.mark.parametrize(("before", "after", "words"), [
    ((-1.0, 0.2), (-1.0, -0.1), "95% CrI now below 0 (was includes 0)"),
    ((-1.0, -0.1), (-1.0, 0.2), "95% CrI now includes 0 (was below 0)"),
    ((0.1, 0.5), (-0.2, 0.5), "95% CrI now includes 0 (was above 0)"),
])
def test_the_interval_crossing_zero(before, after, words) -> None:
    change = crossing(estimate(lo=before[0], hi=before[1], p=0.5), estimate(lo=after[0], hi=after[1], p=0.5))
    assert change["crossed_sign"] and not change["crossed_p90"]
    assert change["conclusions"] == words
    assert change["lo95_shift"] == pytest.approx(after[0] - before[0])
    assert change["hi95_shift"] == pytest.approx(after[1] - before[1])


@pytest.mark.parametrize(("n_before", "n_after", "words"), [
    (1, 2, "single-study warning gone (1 → 2 studies)"),
    (3, 1, "single-study warning appeared (3 → 1 studies)"),
])
def test_the_single_study_warning_appearing_or_going(n_before, n_after, words) -> None:
    change = crossing(estimate(n_studies=n_before), estimate(n_studies=n_after))
    assert change["crossed_single_study"] and change["conclusions"] == words
    assert crossing(estimate(n_studies=2), estimate(n_studies=3))["crossed_single_study"] is False


def test_an_unchanged_estimate_crosses_nothing() -> None:
    change = crossing(estimate(), estimate())
    assert change["change"] == "unchanged" and change["median_shift"] == 0.0
    assert not any(change[flag] for flag in ("crossed_p90", "crossed_p95", "crossed_sign", "crossed_single_study"))


def test_estimates_that_appear_or_disappear(tmp_path: Path) -> None:
    record(tmp_path, effects=[estimate(p=0.93), estimate(marker="ferritin")])
    recorded = record(tmp_path, studies={"s1": "a", "s2": "b", "s3": "c"}, minutes=1,
                      effects=[estimate(median=-0.6, p=0.97), estimate(marker="CRP", n_studies=1)])
    changes = history.compare(*history.latest_pair(recorded))
    estimates = changes[changes["item"] == "estimate"].set_index("marker")
    assert estimates["change"].to_dict() == {"CRP": "added", "IL-6": "moved", "ferritin": "removed"}
    assert math.isnan(estimates.loc["CRP", "previous_median"]) and estimates.loc["CRP", "current_n_studies"] == 1
    assert estimates.loc["IL-6", "median_shift"] == pytest.approx(-0.1)
    assert estimates.loc["IL-6", "crossed_p95"]
    moved = history.moved_estimates(changes)
    assert moved.iloc[0]["marker"] == "IL-6" and moved.iloc[0]["crossed"]
    lines = history.summary_lines(history.comparison_summary(recorded), changes)
    assert "1 of 2 earlier estimates moved, 1 new, 1 no longer estimated." in lines
    assert any(line.startswith("1 estimate crossed a threshold") for line in lines)


def test_changes_table_keeps_its_contract_through_a_file(tmp_path: Path) -> None:
    record(tmp_path, effects=[estimate()])
    recorded = record(tmp_path, settings={"seed": 2}, effects=[estimate(p=0.85), estimate(marker="CRP")], minutes=1)
    changes = history.compare(*history.latest_pair(recorded))
    tables.write(tables.HISTORY_CHANGES, changes, tmp_path / "changes.tsv")
    read = tables.read(tables.HISTORY_CHANGES, tmp_path / "changes.tsv")
    assert read["change"].tolist() == changes["change"].tolist()
    assert read["previous_n_studies"].isna().tolist() == [True, False]


def test_a_change_of_the_failing_analyses_is_said(tmp_path: Path) -> None:
    record(tmp_path, gates={"main": "passed", "student_t": "passed"})
    recorded = record(tmp_path, settings={"seed": 9}, gates={"main": "passed", "student_t": "failed"}, minutes=1)
    lines = history.summary_lines(history.comparison_summary(recorded), history.compare(*history.latest_pair(recorded)))
    assert "Analyses failing the convergence gate: student_t (before: none)." in lines
    assert any(line.startswith("The analysis settings changed") for line in lines)


# --------------------------------------------------------------------------- inclusion per snapshot


def test_inclusion_flow_per_snapshot(tmp_path: Path) -> None:
    record(tmp_path, studies={"s1": "a", "s2": "b"}, rows={"s1": (3, 1), "s2": (2, 0)})
    recorded = record(tmp_path, studies={"s1": "a", "s2": "b, corrected", "s3": "c"}, minutes=1,
                      rows={"s1": (3, 1), "s2": (2, 1), "s3": (4, 2)})
    inclusion = history.inclusion_history(recorded)
    tables.check(tables.INCLUSION_HISTORY, inclusion)
    overview = history.inclusion_overview(inclusion).set_index("snapshot")
    first, second = (s.id for s in recorded)
    counts = ["studies", "studies_added", "rows_in", "rows_new", "included", "excluded"]
    assert overview.loc[first, counts].tolist() == [2, 2, 6, 6, 5, 1]
    # the new rows are those of the added study (s3: 6) and the edited one (s2: 3)
    assert overview.loc[second, ["studies", "studies_added", "studies_edited", "rows_in", "rows_new", "included",
                                 "excluded"]].tolist() == [3, 1, 1, 13, 9, 9, 4]
    reasons = history.exclusion_reasons(inclusion).set_index("reason")
    assert reasons.loc["not a modelled marker", [first, second]].tolist() == [1, 4]


# --------------------------------------------------------------------------- in the report


def history_outputs(root: Path, recorded: list[history.Snapshot]) -> dict[str, Path]:
    """The rule's three outputs from a recorded history, as ReportInputs.from_paths takes them."""
    paths = {name: root / "results/history" / file for name, file in (
        ("history_changes", "changes.tsv"), ("history_comparison", "comparison.json"),
        ("history_inclusion", "inclusion.tsv"))}
    tables.write(tables.HISTORY_CHANGES, history.compare(*history.latest_pair(recorded)), paths["history_changes"])
    paths["history_comparison"].write_text(json.dumps(history.comparison_summary(recorded)), encoding="utf-8")
    tables.write(tables.INCLUSION_HISTORY, history.inclusion_history(recorded), paths["history_inclusion"])
    return paths


def rendered(root: Path, recorded: list[history.Snapshot]) -> BeautifulSoup:
    inputs = ReportInputs.from_paths(**write_fixture_project(root / "project"), **history_outputs(root, recorded))
    return BeautifulSoup(report_html(inputs), "html.parser")


@pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")
def test_the_report_opens_with_what_changed(tmp_path: Path) -> None:
    first = rendered(tmp_path / "first", record(tmp_path))
    section = first.find(id="what-changed")
    assert section is not None and first.find(id="history-first-run") is not None
    assert "nothing to compare with" in section.get_text()
    figure = first.select_one("#inclusion-history ~ figure")
    assert figure.find("svg") is not None and "SYNTHETIC" in str(figure)

    recorded = record(tmp_path, studies={"s1": "a", "s2": "b", "s3": "SYNTHETIC new"}, minutes=1,
                      effects=[estimate(p=0.97, hi=0.2, n_studies=3), estimate(marker="CRP", n_studies=1)])
    soup = rendered(tmp_path / "second", recorded)
    heading = soup.select_one("#what-changed h2").get_text()
    assert heading == "What changed since snapshot 1 of 2026-03-01 12:00 UTC"
    summary = [li.get_text() for li in soup.select("#history-summary li")]
    assert "1 study added: s3." in summary
    rows = soup.select("#history-table tbody tr")
    assert [row["data-change"] for row in rows] == ["moved", "added"]
    assert "crossed" in rows[0].get("class", []) and "95% CrI now includes 0" in rows[0].get_text()
    assert [len(row.find_all("td")) for row in soup.select("#inclusion-history-table tbody tr")] == [10, 10]
    # the report's first sections: the failed-analyses alert (when any), then what changed, then the summary
    sections = [s["id"] for s in soup.find_all("section")]
    assert sections[:2] == ["what-changed", "summary"]
