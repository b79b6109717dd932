"""The row audit's promise: every extracted cell is accounted for exactly once."""

from __future__ import annotations

from typing import Iterable

import pandas as pd

from crsmeta import tables

AUDIT_KEY = list(tables.PROVENANCE)


def check_audit_complete(audit: pd.DataFrame, extracted: Iterable[pd.DataFrame]) -> None:
    """Raise if any extracted row is missing from the audit or audited twice.

    Harmonisation either includes or excludes each row; this check guards that promise against
    future changes that might drop rows on the way.
    """
    frames = [frame[AUDIT_KEY] for frame in extracted if not frame.empty]
    expected = pd.concat(frames, ignore_index=True).astype(str) if frames else pd.DataFrame(columns=AUDIT_KEY)
    audited = audit[AUDIT_KEY].astype(str)
    doubled = audited[audited.duplicated(keep=False)]
    if not doubled.empty:
        raise AssertionError(f"rows audited twice:\n{doubled.to_string(index=False)}")
    missing = expected.merge(audited, how="left", on=AUDIT_KEY, indicator=True)
    missing = missing[missing["_merge"] == "left_only"]
    if not missing.empty:
        raise AssertionError(f"extracted rows missing from the audit:\n{missing[AUDIT_KEY].to_string(index=False)}")
    if len(audited) != len(expected):
        raise AssertionError(f"the audit has {len(audited)} rows for {len(expected)} extracted rows")


def inclusion_counts(audit: pd.DataFrame) -> pd.DataFrame:
    """Rows in, included, and excluded by reason, per table: the inclusion flow of the report."""
    counts = audit.groupby(["table", "status", "reason"], dropna=False).size()
    return counts.rename("rows").reset_index()
