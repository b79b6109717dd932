"""Two-stage frequentist random-effects cross-check of the Bayesian model.

Stage 1 (:func:`per_study_estimates`) turns each study's data into one effect ``yi`` (log ratio,
or °C difference for temperature) with its sampling variance ``vi``:

* case-level changes with at least two uncensored patients: mean change, variance s²/n
  (censored patients cannot enter a mean and are counted in ``note``);
* summary-level observations from ``crsmeta.comparisons.summary_comparisons`` with a known
  standard error (reported SE or CI, or an exact P value): ``y`` and ``se_known²``.

``synthetic`` is carried through so that simulator output stays labelled in every table.

Rows without a usable variance stay in the table with ``vi`` NaN and a ``note``; a study that
gives more than one usable estimate for the same intervention and marker (case-level and summary,
or several arms in one population) has only the first pooled (``pooled`` False on the others),
because pooling both would count the study twice.

Stage 2 (:func:`random_effects`) pools per (intervention, marker) with PyMARE: REML
(``VarianceBasedLikelihoodEstimator(method="REML")``) and DerSimonian–Laird, both with Wald
(normal) 95% intervals. statsmodels' ``combine_effects`` offers DL and Paule–Mandel but no REML,
and its DL τ² is not truncated at zero, so PyMARE is used for both. With one study τ² is not
identifiable (REML would wander off zero): both columns then hold the fixed-effect estimate, which
is the study's own, and τ² is NaN with a ``note``.

A before/after change is not a treatment effect: these pooled changes sit beside the Bayesian
estimates as a check of the computation, not of causality.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pymare import Dataset
from pymare.estimators import (
    DerSimonianLaird,
    VarianceBasedLikelihoodEstimator,
    WeightedLeastSquares,
)

from crsmeta import tables

STUDY_KEYS = ["study_id", "intervention", "marker", "population"]
POOL_KEYS = ["intervention", "marker"]
PER_STUDY_COLUMNS = tables.PER_STUDY.columns
RANDOM_EFFECTS_COLUMNS = tables.RANDOM_EFFECTS.columns
ALPHA = 0.05
AGGREGATE_COLUMNS = [*STUDY_KEYS, "y", "se_known", "n", "synthetic"]  # what stage 1 reads of tables.OBSERVATIONS
DUPLICATE_NOTE = "another estimate of this study is pooled"


def per_study_estimates(
    changes: pd.DataFrame, aggregate: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One effect and sampling variance per study, intervention, marker and population."""
    parts = [_case_estimates(changes)]
    if aggregate is not None:
        parts.append(_summary_estimates(aggregate))
    frame = pd.concat([part for part in parts if not part.empty] or parts, ignore_index=True)
    frame = frame.sort_values([*STUDY_KEYS, "source"], kind="stable").reset_index(drop=True)
    return tables.frame(tables.PER_STUDY, _mark_pooled(frame))


def random_effects(per_study: pd.DataFrame) -> pd.DataFrame:
    """REML and DerSimonian–Laird pooled estimates per (intervention, marker)."""
    usable = per_study[_pooled(per_study) & (per_study["vi"].astype(float) > 0)]
    rows = [
        _pool(keys, group["yi"].astype(float).to_numpy(), group["vi"].astype(float).to_numpy())
        | {"synthetic": bool(_true(group["synthetic"]).any())}
        for keys, group in usable.groupby(POOL_KEYS, sort=True)
    ]
    return tables.frame(tables.RANDOM_EFFECTS, rows)


def cross_check(changes: pd.DataFrame, aggregate: pd.DataFrame | None) -> pd.DataFrame:
    """The frequentist table written to ``results/model/frequentist.tsv``."""
    return random_effects(per_study_estimates(changes, aggregate))


# --- stage 1 ---------------------------------------------------------------------------------


def _case_estimates(changes: pd.DataFrame) -> pd.DataFrame:
    rows = changes.assign(
        change=pd.to_numeric(changes["change"], errors="coerce"),
        synthetic=_true(changes["synthetic"]),
    )
    rows["exact"] = rows["censoring"].eq("none") & np.isfinite(rows["change"])
    records = [
        _case_record(keys, group["change"][group["exact"]], int((~group["exact"]).sum()))
        | {"synthetic": bool(group["synthetic"].any())}
        for keys, group in rows.groupby(STUDY_KEYS, sort=True)
    ]
    return pd.DataFrame(records, columns=tables.PER_STUDY.columns)


def _case_record(keys: tuple, values: pd.Series, censored: int) -> dict:
    n = len(values)
    notes = [f"{censored} censored patient(s) left out of the mean"] if censored else []
    yi = float(values.mean()) if n else np.nan
    vi = float(values.var(ddof=1)) / n if n >= 2 else np.nan
    if n < 2:
        notes.append(f"{n} uncensored patient(s): no within-study variance")
    elif vi == 0:
        vi = np.nan
        notes.append("all patients have the same change: variance zero, not poolable")
    return {**dict(zip(STUDY_KEYS, keys)), "yi": yi, "vi": vi, "n": n, "source": "cases",
            "note": "; ".join(notes)}


def _summary_estimates(aggregate: pd.DataFrame) -> pd.DataFrame:
    missing = sorted(set(AGGREGATE_COLUMNS) - set(aggregate.columns))
    if missing:
        raise ValueError(f"aggregate observations lack the columns {missing}")
    se = pd.to_numeric(aggregate["se_known"], errors="coerce")
    known = np.isfinite(se) & (se > 0)
    frame = aggregate[STUDY_KEYS].assign(
        yi=pd.to_numeric(aggregate["y"], errors="coerce"),
        vi=(se**2).where(known),
        n=pd.to_numeric(aggregate["n"], errors="coerce"),
        source="summary",
        synthetic=_true(aggregate["synthetic"]),
        note=np.where(known, "", "no known standard error: only the Bayesian model can use it"),
    )
    return frame.reset_index(drop=True)


def _mark_pooled(frame: pd.DataFrame) -> pd.DataFrame:
    """Pool one usable estimate per study, intervention and marker (cases before summaries)."""
    usable = frame["vi"].astype(float) > 0
    first = ~frame[usable].duplicated(["study_id", *POOL_KEYS], keep="first")
    pooled = pd.Series(False, index=frame.index)
    pooled[first.index] = first
    duplicate = usable & ~pooled
    note = [
        "; ".join(filter(None, [text, DUPLICATE_NOTE])) if again else text
        for text, again in zip(frame["note"], duplicate)
    ]
    return frame.assign(pooled=pooled, note=note)


def _pooled(per_study: pd.DataFrame) -> pd.Series:
    return _true(per_study["pooled"])


def _true(flags: pd.Series) -> pd.Series:
    """Booleans from a column typed or read back from a TSV as 'True'/'False'."""
    return flags.astype(str).str.lower().eq("true")


# --- stage 2 ---------------------------------------------------------------------------------


def _pool(keys: tuple, yi: np.ndarray, vi: np.ndarray) -> dict:
    k = len(yi)
    dataset = Dataset(y=yi, v=vi)
    if k == 1:
        fixed = _fit(WeightedLeastSquares(tau2=0.0, small_sample_correction="wald"), dataset)
        reml = dl = {**fixed, "tau2": np.nan}
        note = "one study: the estimate is that study's own, tau² is not estimable"
    else:
        reml = _fit(
            VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction="wald"),
            dataset,
        )
        dl = _fit(DerSimonianLaird(small_sample_correction="wald"), dataset)
        note = ""
    return {
        **dict(zip(POOL_KEYS, keys)), "k": k,
        **{f"reml_{name}": value for name, value in reml.items()},
        **{f"dl_{name}": value for name, value in dl.items()},
        "note": note,
    }


def _fit(estimator: object, dataset: Dataset) -> dict:
    summary = estimator.fit_dataset(dataset).summary()
    stats = summary.get_fe_stats(alpha=ALPHA)
    return {
        "estimate": float(stats["est"].squeeze()),
        "lo95": float(stats["ci_l"].squeeze()),
        "hi95": float(stats["ci_u"].squeeze()),
        "tau2": float(np.asarray(summary.tau2).squeeze()),
    }
