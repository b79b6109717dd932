"""Per-patient changes from the harmonised case table, and the pairing audit.

For each (study, patient, intervention, marker) one change is derived from a ``pre`` and a ``post``
measurement, or passed through from a ``change`` row that the source printed:

* markers: the log ratio ``log(post / pre)`` (unit ``log_ratio``);
* temperature: the difference ``post - pre`` in °C (unit ``degC_difference``).

A marker's scale and the unit of its change come from the marker vocabulary
(:func:`crsmeta.vocabulary.change_scale`, :func:`~crsmeta.vocabulary.change_unit`).

Which values are paired
    The ``pre`` value is the latest one before the intervention (largest ``hours <= 0``), or the
    only pre row when hours are not reported. Several pre rows whose order cannot be told (blank
    hours) are ambiguous: no change is made and the rows go to the pairing audit. The ``post``
    value is chosen among rows with hours inside the window ``[lo, hi]`` by the configured rule:
    ``first_in_window`` (smallest hours) or ``closest_to_target`` (smallest ``|hours - target|``,
    the earlier one on a tie). A post row without hours is used only when it is the patient's
    only post row for that marker; the change then carries the flag ``hours not reported``.
    Two candidates equally good under the rule are ambiguous and are not guessed between.

Censoring
    A censored input is a bound: ``left`` means the true value is <= the printed value, ``right``
    that it is >= it. The change is increasing in ``post`` and decreasing in ``pre``, so with
    ``c`` = the change computed from the printed values:

    ========  =========  ==============================  =====================
    pre       post       true change                     change ``censoring``
    ========  =========  ==============================  =====================
    none      none       = c                             ``none``
    none      left       <= c                            ``left``
    none      right      >= c                            ``right``
    left      none       >= c                            ``right``
    right     none       <= c                            ``left``
    left      right      >= c                            ``right``
    right     left       <= c                            ``left``
    left      left       unbounded on both sides         (no change; audited)
    right     right      unbounded on both sides         (no change; audited)
    ========  =========  ==============================  =====================

    So for the *change*, ``left`` means "true change <= change_upper" (``change_lower`` = -inf)
    and ``right`` means "true change >= change_lower" (``change_upper`` = +inf); for an exact
    change ``change_lower == change_upper == change``. ``change`` itself is filled only when the
    change is exact. ``interval`` (both bounds finite, not equal) is part of the contract for
    inputs that carry an interval; single-bound inputs as harmonised today never produce it.

Every harmonised case row ends up either in some change's ``source_rows`` or in the pairing
audit with a reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from crsmeta import tables
from crsmeta.vocabulary import ChangeScale, change_scale, change_unit

Selection = Literal["first_in_window", "closest_to_target"]
SELECTIONS = ("first_in_window", "closest_to_target")
# the defaults of config ``changes`` (case changes and summary comparisons alike)
DEFAULT_SELECTION: Selection = "closest_to_target"
DEFAULT_WINDOW_HOURS = (0.0, 168.0)
DEFAULT_TARGET_HOURS = 24.0
PASSED_THROUGH = "reported_change"
HOURS_NOT_REPORTED = "hours not reported"
GROUP_KEYS = ["study_id", "patient_id", "intervention", "marker"]

TIMEPOINTS = ("pre", "post", "change")


@dataclass
class Pairing:
    """What one patient-marker group yields: at most one change, and the rows left out."""

    change: dict | None = None
    left_out: list[tuple[pd.Series, str]] = field(default_factory=list)

    def leave_out(self, rows: pd.DataFrame | list[pd.Series], reason: str) -> None:
        records = [row for _, row in rows.iterrows()] if isinstance(rows, pd.DataFrame) else rows
        self.left_out.extend((row, reason) for row in records)


def derive_changes(
    cases: pd.DataFrame,
    *,
    selection: Selection = DEFAULT_SELECTION,
    window_hours: tuple[float, float] = DEFAULT_WINDOW_HOURS,
    target_hours: float | None = DEFAULT_TARGET_HOURS,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-patient changes and the pairing audit from the harmonised case table.

    ``cases`` is typed as :data:`crsmeta.tables.HARMONISED_CASES` (as ``tables.read`` gives it).
    Returns ``(changes, pairing)`` as :data:`~crsmeta.tables.CHANGES` and
    :data:`~crsmeta.tables.PAIRING`, sorted.
    """
    rule = post_rule(selection, window_hours, target_hours)
    tables.check(tables.HARMONISED_CASES, cases)
    changes: list[dict] = []
    pairing = [
        _audit_record(row, f"timepoint '{row['timepoint']}' is not pre, post or change")
        for _, row in cases[~cases["timepoint"].isin(TIMEPOINTS)].iterrows()
    ]
    usable = cases[cases["timepoint"].isin(TIMEPOINTS)]
    for _, group in usable.groupby(GROUP_KEYS, sort=True, dropna=False):
        result = _pair_group(group, rule)
        if result.change is not None:
            changes.append(result.change)
        pairing.extend(_audit_record(row, reason) for row, reason in result.left_out)
    return _changes_frame(changes), _pairing_frame(pairing)


def source_reference(row: pd.Series) -> str:
    """``study:file:row:column``; the column is needed because a wide table holds pre and post
    values on one source row."""
    return f"{row['study_id']}:{row['source_file']}:{row['source_row']}:{row['source_column']}"


# --- input -----------------------------------------------------------------------------------


def post_rule(
    selection: str = DEFAULT_SELECTION, window_hours: tuple[float, float] = DEFAULT_WINDOW_HOURS,
    target_hours: float | None = DEFAULT_TARGET_HOURS,
) -> PostRule:
    """The rule choosing a post value (config ``changes``), checked."""
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be one of {SELECTIONS}, not {selection!r}")
    low, high = window_hours
    if not low <= high:
        raise ValueError(f"window_hours must be (low, high) with low <= high, not {window_hours!r}")
    if selection == "closest_to_target" and target_hours is None:
        raise ValueError("selection 'closest_to_target' needs target_hours")
    return PostRule(selection, (float(low), float(high)), target_hours)


# --- pairing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostRule:
    selection: Selection
    window: tuple[float, float]
    target: float | None

    @property
    def window_text(self) -> str:
        low, high = (f"{bound:g}" for bound in self.window)
        return f"{low}–{high} h"

    def describe(self) -> str:
        if self.selection == "first_in_window":
            return f"first_in_window {self.window_text}"
        return f"closest_to_target {self.target:g} h in {self.window_text}"

    def rank(self, hours: pd.Series) -> pd.Series:
        """Smaller is better; ties on the rank are ambiguous."""
        if self.selection == "first_in_window":
            return hours
        return (hours - self.target).abs()


def _pair_group(group: pd.DataFrame, rule: PostRule) -> Pairing:
    result = Pairing()
    pre_rows = group[group["timepoint"] == "pre"]
    post_rows = group[group["timepoint"] == "post"]
    change_rows = group[group["timepoint"] == "change"]
    pre = choose_pre(pre_rows, result)
    post = choose_post(post_rows, rule, result, kind="post")
    if pre is not None and post is not None:
        result.change = _paired_change(pre, post, rule, result)
    elif pre is None and post is not None:
        reason = "pre value missing" if pre_rows.empty else "no usable pre value (see the pre rows)"
        result.leave_out([post], reason)
    elif pre is not None:
        result.leave_out([pre], _why_no_post(post_rows, rule))
    _pass_through_reported(change_rows, rule, result)
    return result


def _why_no_post(post_rows: pd.DataFrame, rule: PostRule) -> str:
    if post_rows.empty:
        return "only a pre value"
    if post_rows["hours"].between(*rule.window).any():
        return "no usable post value (see the post rows)"
    return f"no post value within the window {rule.window_text}"


def choose_pre(rows: pd.DataFrame, result: Pairing) -> pd.Series | None:
    after_start = rows["hours"] > 0
    result.leave_out(rows[after_start], "pre value recorded after the start of the intervention")
    rows = rows[~after_start]
    if len(rows) <= 1:
        return rows.iloc[0] if len(rows) else None
    if rows["hours"].isna().any():
        result.leave_out(rows, "several pre values whose order is not reported: ambiguous")
        return None
    latest = rows[rows["hours"] == rows["hours"].max()]
    if len(latest) > 1:
        result.leave_out(rows, "several pre values at the same hours: ambiguous")
        return None
    result.leave_out(
        rows.drop(index=latest.index),
        "earlier pre value superseded by the one closest to the intervention",
    )
    return latest.iloc[0]


def choose_post(
    rows: pd.DataFrame, rule: PostRule, result: Pairing, *, kind: str
) -> pd.Series | None:
    """The post (or reported-change) row chosen by the rule; the others are left out."""
    if len(rows) == 1 and pd.isna(rows["hours"].iloc[0]):
        return rows.iloc[0]
    timed = rows[rows["hours"].notna()]
    result.leave_out(
        rows[rows["hours"].isna()],
        f"{kind} value without hours beside other {kind} values: its timing cannot be compared",
    )
    low, high = rule.window
    inside = timed[timed["hours"].between(low, high)]
    result.leave_out(
        timed.drop(index=inside.index), f"{kind} value outside the window {rule.window_text}"
    )
    if inside.empty:
        return None
    rank = rule.rank(inside["hours"])
    best = inside[rank == rank.min()]
    if rule.selection == "closest_to_target" and len(best) > 1:
        best = best[best["hours"] == best["hours"].min()]
    if len(best) > 1:
        result.leave_out(
            inside, f"several {kind} values equally chosen by {rule.describe()}: ambiguous"
        )
        return None
    result.leave_out(
        inside.drop(index=best.index),
        f"{kind} value outside the selection rule: another {kind} value was chosen "
        f"({rule.describe()})",
    )
    return best.iloc[0]


def _paired_change(
    pre: pd.Series, post: pd.Series, rule: PostRule, result: Pairing
) -> dict | None:
    log_ratio = change_scale(pre["marker"]) is ChangeScale.LOG_RATIO
    if log_ratio and (pre["value"] <= 0 or post["value"] <= 0):
        result.leave_out([pre, post], "a value <= 0: the log ratio is undefined")
        return None
    censoring = _change_censoring(pre["censoring"], post["censoring"])
    if censoring is None:
        result.leave_out(
            [pre, post], "both values censored in the same direction: change unbounded"
        )
        return None
    estimate = (
        math.log(post["value"] / pre["value"]) if log_ratio else post["value"] - pre["value"]
    )
    extra_flags = [HOURS_NOT_REPORTED] if pd.isna(post["hours"]) else []
    return {
        **_identity(post, rows=[pre, post], grades_from=pre),
        "pre_value": pre["value"],
        "post_value": post["value"],
        "pre_censoring": pre["censoring"],
        "post_censoring": post["censoring"],
        "hours": post["hours"],
        **_bounds(estimate, censoring),
        "flags": _joined_flags([pre, post], extra_flags),
        "selection": rule.selection,
        "unit": change_unit(pre["marker"]),
    }


def _pass_through_reported(rows: pd.DataFrame, rule: PostRule, result: Pairing) -> None:
    """Reported changes enter only when no change could be derived from pre and post values."""
    if rows.empty:
        return
    if result.change is not None:
        result.leave_out(rows, "the change was derived from the patient's pre and post values")
        return
    chosen = choose_post(rows, rule, result, kind="change")
    if chosen is None:
        return
    extra_flags = [HOURS_NOT_REPORTED] if pd.isna(chosen["hours"]) else []
    result.change = {
        **_identity(chosen, rows=[chosen], grades_from=chosen),
        "pre_value": np.nan,
        "post_value": np.nan,
        "pre_censoring": "",
        "post_censoring": "",
        "hours": chosen["hours"],
        **_bounds(chosen["value"], chosen["censoring"]),
        "flags": _joined_flags([chosen], extra_flags),
        "selection": PASSED_THROUGH,
        "unit": change_unit(chosen["marker"]),
    }


def _change_censoring(pre: str, post: str) -> str | None:
    """Direction of the bound on the change (see the module docstring); None when unbounded."""
    from_post = {"none": "none", "left": "left", "right": "right"}[post]
    from_pre = {"none": "none", "left": "right", "right": "left"}[pre]
    if from_pre == "none":
        return from_post
    if from_post == "none" or from_post == from_pre:
        return from_pre
    return None


def _bounds(estimate: float, censoring: str) -> dict:
    lower = -math.inf if censoring == "left" else estimate
    upper = math.inf if censoring == "right" else estimate
    return {
        "change": estimate if censoring == "none" else np.nan,
        "change_lower": lower,
        "change_upper": upper,
        "censoring": censoring,
    }


def _identity(row: pd.Series, *, rows: list[pd.Series], grades_from: pd.Series) -> dict:
    co_interventions = sorted({
        name for used in rows for name in used["co_interventions"].split(";") if name
    })
    return {
        "study_id": row["study_id"],
        "patient_id": row["patient_id"],
        "population": row["population"],
        "intervention": row["intervention"],
        "co_interventions": ";".join(co_interventions),
        "marker": row["marker"],
        "astct_grades": grades_from["astct_grades"] or row["astct_grades"],
        "digitised": any(bool(used["digitised"]) for used in rows),
        "source_rows": ";".join(source_reference(used) for used in rows),
        "synthetic": any(bool(used["synthetic"]) for used in rows),
    }


def _joined_flags(rows: list[pd.Series], extra: list[str]) -> str:
    flags = {flag for row in rows for flag in row["flags"].split(";") if flag}
    return ";".join(sorted(flags | set(extra)))


# --- output ----------------------------------------------------------------------------------


def _audit_record(row: pd.Series, reason: str) -> dict:
    record = {column: row[column] for column in tables.PAIRING.columns if column != "reason"}
    return {**record, "reason": reason}


def _changes_frame(records: list[dict]) -> pd.DataFrame:
    frame = tables.frame(tables.CHANGES, records)
    return frame.sort_values(GROUP_KEYS, kind="stable").reset_index(drop=True)


def _pairing_frame(records: list[dict]) -> pd.DataFrame:
    frame = tables.frame(tables.PAIRING, records)
    order = ["study_id", "patient_id", "intervention", "marker", "source_file", "source_row", "source_column"]
    return frame.sort_values(order, kind="stable").reset_index(drop=True)
