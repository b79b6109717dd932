"""The living review's history: a compact snapshot of every run that changed the data or the
settings, and what changed since the snapshot before.

A snapshot (``results/history/snapshots/<id>/``) keeps the main analysis' estimates, the row
audit's counts, each study's file hash, the data and config hashes, the analyses' gate verdicts and
its date. It is written in a temporary directory beside its place and renamed into it, so a failed
job leaves no half snapshot; a run whose data and config hashes equal the latest snapshot's adds
none. What changed is always the latest snapshot against the one before it, so a rerun that
changed nothing reports the same comparison again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from crsmeta import __version__, tables
from crsmeta.errors import InputError
from crsmeta.io import files_hash, write_text

META_FILE = "snapshot.json"
STUDIES_FILE = "studies.tsv"
EFFECTS_FILE = "effects.tsv"
INCLUSION_FILE = "inclusion.tsv"
META_KEYS = ("id", "sequence", "date", "data_hash", "config_hash", "synthetic", "gates", "crsmeta_version")
DIRECTORY_MODE = 0o755
P_REDUCTION_THRESHOLDS = (0.9, 0.95)
SINGLE_STUDY = 1
"""An estimate of at most this many studies carries the report's single-study warning."""
NO_REASON = "no reason given"
THETA_COLUMNS = {"median": "theta_median", "lo95": "theta_lo95", "hi95": "theta_hi95"}


@dataclass(frozen=True, eq=False)
class Snapshot:
    """One run's state as the history keeps it; ``sequence`` is its place, set when recorded."""

    created: datetime
    data_hash: str
    config_hash: str
    studies: pd.DataFrame
    effects: pd.DataFrame
    inclusion: pd.DataFrame
    gates: Mapping[str, str] = field(default_factory=dict)
    sequence: int = 0
    version: str = __version__

    @property
    def id(self) -> str:
        """``0003-20260301T120000Z``: sorts in the order the snapshots were recorded."""
        return f"{self.sequence:04d}-{self.created:%Y%m%dT%H%M%SZ}"

    @property
    def date(self) -> str:
        return self.created.strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def label(self) -> str:
        return f"snapshot {self.sequence} of {self.created:%Y-%m-%d %H:%M} UTC"

    @property
    def synthetic(self) -> bool:
        return bool(self.effects["synthetic"].any())

    def meta(self) -> dict[str, Any]:
        """What snapshot.json holds (and the comparison's JSON shows of each snapshot)."""
        return {"id": self.id, "sequence": self.sequence, "date": self.date, "label": self.label,
                "data_hash": self.data_hash, "config_hash": self.config_hash, "synthetic": self.synthetic,
                "gates": dict(sorted(self.gates.items())), "crsmeta_version": self.version,
                "n_studies": len(self.studies), "n_estimates": len(self.effects)}


# --------------------------------------------------------------------------- building a snapshot


def build_snapshot(
    *,
    effects: pd.DataFrame,
    rows: pd.DataFrame,
    diagnostics: pd.DataFrame,
    study_files: Mapping[str, Sequence[str | Path]],
    settings: Mapping[str, Any],
    now: datetime,
) -> Snapshot:
    """The run's snapshot from the main effects (``tables.EFFECTS``), the row audit, the collected
    diagnostics, each study's files (study file first, then its source tables) and the settings."""
    studies = study_hashes(study_files)
    return Snapshot(
        created=now.astimezone(timezone.utc).replace(microsecond=0),
        data_hash=data_hash(studies),
        config_hash=config_hash(settings),
        studies=studies,
        effects=snapshot_effects(effects),
        inclusion=inclusion_counts(rows),
        gates=gate_verdicts(diagnostics),
    )


def study_hashes(study_files: Mapping[str, Sequence[str | Path]]) -> pd.DataFrame:
    """Each study's id and the hash of its files' bytes (``tables.SNAPSHOT_STUDIES``)."""
    records = [(study_id, files_hash(paths)) for study_id, paths in sorted(study_files.items())]
    return tables.frame(tables.SNAPSHOT_STUDIES, records)


def data_hash(studies: pd.DataFrame) -> str:
    """One hash of the study list and every study's file hash."""
    lines = sorted(f"{study_id}\t{digest}\n" for study_id, digest in zip(studies["study_id"], studies["file_hash"]))
    return _digest("".join(lines))


def config_hash(settings: Mapping[str, Any]) -> str:
    """One hash of the analysis settings (key order does not matter)."""
    return _digest(json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def snapshot_effects(effects: pd.DataFrame) -> pd.DataFrame:
    """The main estimates' columns a snapshot keeps, in intervention and marker order."""
    kept = effects.sort_values(["intervention", "marker"]).reset_index(drop=True)
    return tables.frame(tables.SNAPSHOT_EFFECTS, kept)


def inclusion_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """The row audit counted per study, status and reason (``tables.SNAPSHOT_INCLUSION``)."""
    counts = rows.groupby(["study_id", "status", "reason"], sort=True).size().rename("rows").reset_index()
    return tables.frame(tables.SNAPSHOT_INCLUSION, counts)


def gate_verdicts(diagnostics: pd.DataFrame) -> dict[str, str]:
    """Each analysis' gate verdict (the diagnostics' rows of kind ``fit``)."""
    fits = diagnostics[diagnostics["kind"] == "fit"]
    return dict(sorted(zip(fits["analysis"], fits["gate"])))


# --------------------------------------------------------------------------- storing snapshots


def same_state(one: Snapshot, other: Snapshot) -> bool:
    """Same data and same settings."""
    return (one.data_hash, one.config_hash) == (other.data_hash, other.config_hash)


def record_snapshot(snapshot: Snapshot, directory: str | Path) -> list[Snapshot]:
    """The history in order with the run's state last: ``snapshot`` is written as the next one,
    unless the latest snapshot has the same data and config hashes (then it is the state)."""
    history = read_history(directory)
    if history and same_state(history[-1], snapshot):
        return history
    recorded = dataclasses.replace(snapshot, sequence=history[-1].sequence + 1 if history else 1)
    write_snapshot(recorded, directory)
    return [*history, recorded]


def write_snapshot(snapshot: Snapshot, directory: str | Path) -> Path:
    """Write ``directory/<id>/`` whole or not at all: its files go to a temporary directory
    beside it (hidden, ignored by :func:`read_history`), which is then renamed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / snapshot.id
    if target.exists():
        raise FileExistsError(f"{target}: a snapshot of that id exists; snapshots are never overwritten")
    temporary = Path(tempfile.mkdtemp(dir=directory, prefix=f".{snapshot.id}.", suffix=".tmp"))
    try:
        tables.write(tables.SNAPSHOT_STUDIES, snapshot.studies, temporary / STUDIES_FILE)
        tables.write(tables.SNAPSHOT_EFFECTS, snapshot.effects, temporary / EFFECTS_FILE)
        tables.write(tables.SNAPSHOT_INCLUSION, snapshot.inclusion, temporary / INCLUSION_FILE)
        write_text(json.dumps(snapshot.meta(), indent=2) + "\n", temporary / META_FILE)
        os.chmod(temporary, DIRECTORY_MODE)  # mkdtemp makes it private; outputs are meant to be shared
        os.rename(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return target


def read_history(directory: str | Path) -> list[Snapshot]:
    """Every snapshot under ``directory`` in the order recorded (none when it does not exist)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    paths = [path for path in directory.iterdir() if path.is_dir() and not path.name.startswith(".")]
    return sorted((read_snapshot(path) for path in paths), key=lambda snapshot: snapshot.sequence)


def read_snapshot(path: str | Path) -> Snapshot:
    """A snapshot directory as :func:`write_snapshot` wrote it."""
    path = Path(path)
    meta_file = path / META_FILE
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the snapshot ({error})", data_file=meta_file,
                         expected=f"the JSON {META_FILE} of a snapshot written by crsmeta.history") from None
    missing = [key for key in META_KEYS if key not in meta]
    if missing:
        raise InputError(f"snapshot: key '{missing[0]}' is missing", data_file=meta_file,
                         expected=f"the keys {', '.join(META_KEYS)}")
    snapshot = Snapshot(
        created=datetime.strptime(meta["date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc),
        data_hash=meta["data_hash"], config_hash=meta["config_hash"],
        studies=tables.read(tables.SNAPSHOT_STUDIES, path / STUDIES_FILE),
        effects=tables.read(tables.SNAPSHOT_EFFECTS, path / EFFECTS_FILE),
        inclusion=tables.read(tables.SNAPSHOT_INCLUSION, path / INCLUSION_FILE),
        gates=meta["gates"], sequence=int(meta["sequence"]), version=meta["crsmeta_version"],
    )
    if snapshot.id != path.name:
        raise InputError(f"snapshot: its id {snapshot.id!r} is not its directory's name", data_file=meta_file,
                         expected="a snapshot directory named by its id, as crsmeta.history writes it")
    return snapshot


# --------------------------------------------------------------------------- what changed


def latest_pair(history: Sequence[Snapshot]) -> tuple[Snapshot | None, Snapshot]:
    """The snapshot before the latest (None when there is only one) and the latest."""
    return (history[-2] if len(history) > 1 else None), history[-1]


def compare(previous: Snapshot | None, current: Snapshot) -> pd.DataFrame:
    """``tables.HISTORY_CHANGES``: the studies added, removed or edited and every estimate of
    either snapshot; no rows when there is nothing to compare with."""
    if previous is None:
        return tables.frame(tables.HISTORY_CHANGES)
    records = [_record(previous, current, "study", **change) for change in study_changes(previous, current)]
    records += [_record(previous, current, "estimate", **change) for change in estimate_changes(previous, current)]
    return tables.frame(tables.HISTORY_CHANGES, records)


def _record(previous: Snapshot, current: Snapshot, item: str, **values: Any) -> dict[str, Any]:
    """A changes row: the values given, every other column empty (or False for a flag)."""
    record = {name: _empty(cell) for name, cell in tables.HISTORY_CHANGES.cells.items()}
    return {**record, "previous_snapshot": previous.id, "current_snapshot": current.id, "item": item, **values}


def _empty(cell: tables.Cell) -> Any:
    return {"str": "", "float64": math.nan, "Int64": pd.NA, "bool": False}[cell.dtype]


def study_changes(previous: Snapshot, current: Snapshot) -> list[dict[str, str]]:
    """The studies added, removed or edited (another file hash), by id."""
    before, after = _hashes(previous), _hashes(current)
    changes = []
    for study_id in sorted(before.keys() | after.keys()):
        if study_id not in before:
            change = "added"
        elif study_id not in after:
            change = "removed"
        elif before[study_id] != after[study_id]:
            change = "edited"
        else:
            continue
        changes.append({"change": change, "study_id": study_id, "previous_hash": before.get(study_id, ""),
                        "current_hash": after.get(study_id, "")})
    return changes


def _hashes(snapshot: Snapshot) -> dict[str, str]:
    return dict(zip(snapshot.studies["study_id"], snapshot.studies["file_hash"]))


def estimate_changes(previous: Snapshot, current: Snapshot) -> list[dict[str, Any]]:
    """One change per estimate (intervention × marker) of either snapshot."""
    key = ["intervention", "marker"]
    before = previous.effects.set_index(key)
    after = current.effects.set_index(key)
    changes = []
    for intervention, marker in sorted(set(before.index) | set(after.index)):
        old = before.loc[(intervention, marker)].to_dict() if (intervention, marker) in before.index else None
        new = after.loc[(intervention, marker)].to_dict() if (intervention, marker) in after.index else None
        changes.append({"intervention": intervention, "marker": marker, **estimate_change(old, new)})
    return changes


def estimate_change(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """How one estimate changed: its values before and now, the shifts of θ's median and 95% CrI,
    and the conclusions that crossed a threshold (flags, and in words). It ``moved`` when its
    median, interval, P(reduction) or number of studies is not the same as before."""
    values = {"scale": (after or before or {}).get("scale", "")}
    for prefix, row in (("previous", before), ("current", after)):
        if row is not None:
            values |= {f"{prefix}_{name}": row[column] for name, column in THETA_COLUMNS.items()}
            values |= {f"{prefix}_p_reduction": row["p_reduction"], f"{prefix}_n_studies": int(row["n_studies"])}
    if before is None or after is None:
        words = "new estimate" if before is None else "no longer estimated"
        return {**values, "change": "added" if before is None else "removed", "conclusions": words}
    shifts = {f"{name}_shift": after[column] - before[column] for name, column in THETA_COLUMNS.items()}
    crossings = conclusion_crossings(before, after)
    moved = any(shift != 0 for shift in shifts.values()) or any(
        before[column] != after[column] for column in ("p_reduction", "n_studies"))
    return {**values, **shifts, **crossings, "change": "moved" if moved else "unchanged"}


def conclusion_crossings(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Which conclusions crossed a threshold: P(reduction) across 0.9 or 0.95, the 95% CrI's
    side of 0, the single-study warning; as the flag columns and ``conclusions`` in words."""
    p_before, p_after = float(before["p_reduction"]), float(after["p_reduction"])
    crossed = [threshold for threshold in P_REDUCTION_THRESHOLDS if (p_before >= threshold) != (p_after >= threshold)]
    side_before = interval_side(before["theta_lo95"], before["theta_hi95"])
    side_after = interval_side(after["theta_lo95"], after["theta_hi95"])
    n_before, n_after = int(before["n_studies"]), int(after["n_studies"])
    single_before, single_after = n_before <= SINGLE_STUDY, n_after <= SINGLE_STUDY
    words = []
    if crossed:
        verb = "reached" if p_after > p_before else "fell below"
        thresholds = " and ".join(f"{threshold:g}" for threshold in crossed)
        words.append(f"P(reduction) {verb} {thresholds} ({p_before:.2f} → {p_after:.2f})")
    if side_before != side_after:
        words.append(f"95% CrI now {side_after} (was {side_before})")
    if single_before != single_after:
        state = "appeared" if single_after else "gone"
        words.append(f"single-study warning {state} ({n_before} → {n_after} studies)")
    return {
        "crossed_p90": 0.9 in crossed, "crossed_p95": 0.95 in crossed,
        "crossed_sign": side_before != side_after, "crossed_single_study": single_before != single_after,
        "conclusions": "; ".join(words),
    }


def interval_side(low: float, high: float) -> str:
    """Where a 95% CrI lies: ``below 0`` (the marker fell), ``above 0`` or ``includes 0``."""
    if high < 0:
        return "below 0"
    if low > 0:
        return "above 0"
    return "includes 0"


def comparison_summary(history: Sequence[Snapshot]) -> dict[str, Any]:
    """The comparison's JSON: the latest snapshot, the one before (None on the first run), and
    whether the settings changed between them."""
    previous, current = latest_pair(history)
    return {
        "snapshots": len(history),
        "current": current.meta(),
        "previous": None if previous is None else previous.meta(),
        "config_changed": previous is not None and previous.config_hash != current.config_hash,
    }


# --------------------------------------------------------------------------- inclusion per snapshot


def inclusion_history(history: Sequence[Snapshot]) -> pd.DataFrame:
    """``tables.INCLUSION_HISTORY``: the living inclusion flow, snapshot by snapshot."""
    records: list[dict[str, Any]] = []
    previous: Snapshot | None = None
    for snapshot in history:
        records += _inclusion_records(previous, snapshot)
        previous = snapshot
    return tables.frame(tables.INCLUSION_HISTORY, records)


def _inclusion_records(previous: Snapshot | None, snapshot: Snapshot) -> list[dict[str, Any]]:
    before = {} if previous is None else _hashes(previous)
    after = _hashes(snapshot)
    added, removed = after.keys() - before.keys(), before.keys() - after.keys()
    edited = {study_id for study_id in after.keys() & before.keys() if after[study_id] != before[study_id]}
    counts = snapshot.inclusion
    new = counts["study_id"].isin(added | edited)
    excluded = counts[counts["status"] == "excluded"]
    by_reason = excluded.assign(reason=excluded["reason"].replace("", NO_REASON)).groupby("reason")["rows"].sum()
    totals = {
        "studies": len(after), "studies_added": len(added), "studies_edited": len(edited),
        "studies_removed": len(removed), "rows_in": counts["rows"].sum(), "rows_new": counts.loc[new, "rows"].sum(),
        "included": counts.loc[counts["status"] == "included", "rows"].sum(),
    }
    stamp = {"snapshot": snapshot.id, "date": snapshot.date}
    return [{**stamp, "count": count, "reason": "", "n": int(n)} for count, n in totals.items()] + [
        {**stamp, "count": "excluded", "reason": reason, "n": int(n)} for reason, n in by_reason.items()
    ]


def inclusion_overview(inclusion: pd.DataFrame) -> pd.DataFrame:
    """One row per snapshot (in the table's order) with its ``number`` (its place in the history),
    date and every count, ``excluded`` summed over reasons."""
    order = list(dict.fromkeys(inclusion["snapshot"]))
    dates = inclusion.drop_duplicates("snapshot").set_index("snapshot")["date"]
    counts = inclusion.pivot_table(index="snapshot", columns="count", values="n", aggfunc="sum", fill_value=0)
    columns = [count for count in tables.INCLUSION_HISTORY.cells["count"].allowed]
    counts = counts.reindex(index=order, columns=columns, fill_value=0).astype(int).rename_axis(columns=None)
    overview = counts.reset_index().assign(
        number=lambda frame: frame["snapshot"].map(snapshot_number), date=lambda frame: frame["snapshot"].map(dates))
    return overview[["snapshot", "number", "date", *columns]]


def snapshot_number(snapshot_id: str) -> int:
    """A snapshot's place in the history, from its id (``0003-…`` → 3)."""
    return int(snapshot_id.split("-", 1)[0])


def exclusion_reasons(inclusion: pd.DataFrame) -> pd.DataFrame:
    """Rows excluded per reason (rows) and snapshot (columns, in the table's order)."""
    order = list(dict.fromkeys(inclusion["snapshot"]))
    excluded = inclusion[inclusion["count"] == "excluded"]
    table = excluded.pivot_table(index="reason", columns="snapshot", values="n", aggfunc="sum", fill_value=0)
    return table.reindex(columns=order, fill_value=0).astype(int).rename_axis(columns=None).reset_index()


# --------------------------------------------------------------------------- for the report


def summary_lines(comparison: Mapping[str, Any], changes: pd.DataFrame) -> list[str]:
    """The report's short list of what changed since the snapshot before (none on the first run)."""
    if comparison.get("previous") is None:
        return []
    studies = changes[changes["item"] == "study"]
    estimates = changes[changes["item"] == "estimate"]
    lines = []
    for change in ("added", "removed", "edited"):
        ids = sorted(studies.loc[studies["change"] == change, "study_id"])
        if ids:
            lines.append(f"{len(ids)} stud{'y' if len(ids) == 1 else 'ies'} {change}: {', '.join(ids)}.")
    if studies.empty:
        lines.append("No study was added, removed or edited.")
    if comparison.get("config_changed"):
        lines.append("The analysis settings changed (config hash "
                     f"{comparison['previous']['config_hash']} → {comparison['current']['config_hash']}).")
    counts = estimates["change"].value_counts()
    lines.append(f"{counts.get('moved', 0)} of {int((estimates['change'] != 'added').sum())} earlier estimates moved, "
                 f"{counts.get('added', 0)} new, {counts.get('removed', 0)} no longer estimated.")
    crossed = int(_crossed(estimates).sum())
    lines.append(f"{crossed} estimate{'' if crossed == 1 else 's'} crossed a threshold of a conclusion "
                 "(P(reduction) 0.9 or 0.95, the 95% CrI's side of 0, the single-study warning)."
                 if crossed else "No conclusion crossed a threshold.")
    lines += _gate_lines(comparison)
    return lines


def _crossed(changes: pd.DataFrame) -> pd.Series:
    flags = ["crossed_p90", "crossed_p95", "crossed_sign", "crossed_single_study"]
    return changes[flags].astype(bool).any(axis=1)


def _gate_lines(comparison: Mapping[str, Any]) -> list[str]:
    """A line when the analyses that failed the convergence gate are not the same as before."""
    failed = {
        when: sorted(name for name, gate in comparison[when]["gates"].items() if gate == "failed")
        for when in ("previous", "current")
    }
    if failed["previous"] == failed["current"]:
        return []
    shown = {when: ", ".join(names) or "none" for when, names in failed.items()}
    return [f"Analyses failing the convergence gate: {shown['current']} (before: {shown['previous']})."]


def moved_estimates(changes: pd.DataFrame) -> pd.DataFrame:
    """The estimates that moved, appeared or went, those whose conclusions crossed a threshold
    first, with a ``crossed`` column."""
    estimates = changes[(changes["item"] == "estimate") & (changes["change"] != "unchanged")]
    estimates = estimates.assign(crossed=_crossed(estimates))
    return estimates.sort_values(["crossed", "marker", "intervention"], ascending=[False, True, True])
