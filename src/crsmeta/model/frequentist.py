"""Two-stage frequentist random-effects cross-check of the Bayesian model, on the same inputs.

Stage 1 is the changes stage's per-study table (crsmeta.study_estimates: one effect ``yi`` and
sampling variance ``vi`` per study, like for like with the model). Stage 2
(:func:`random_effects`) pools per (intervention, marker) with PyMARE: REML
(``VarianceBasedLikelihoodEstimator(method="REML")``) and DerSimonian–Laird, each with Wald
(normal) 95% intervals and Hartung–Knapp–Sidik–Jonkman ones (``small_sample_correction=
"knapp-hartung"``: the variance scaled by the weighted residual Q/(k − 1), a t reference with
k − 1 df; metafor's ``test="knha"``). statsmodels' ``combine_effects`` offers DL and Paule–Mandel
but no REML, and its DL τ² is not truncated at zero, so PyMARE is used for all. With one study τ²
is not identifiable (REML would wander off zero): both columns then hold the fixed-effect
estimate, which is the study's own, τ² and the HKSJ interval are NaN, with a ``note``.

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
from crsmeta.study_estimates import P_VALUE_EXACT, POOL_KEYS

RANDOM_EFFECTS_COLUMNS = tables.RANDOM_EFFECTS.columns
ALPHA = 0.05


def random_effects(per_study: pd.DataFrame) -> pd.DataFrame:
    """REML and DerSimonian–Laird pooled estimates per (intervention, marker), with Wald and
    Hartung–Knapp–Sidik–Jonkman intervals, from stage 1's estimates typed as ``tables.read`` gives
    them (:data:`crsmeta.tables.PER_STUDY`)."""
    tables.check(tables.PER_STUDY, per_study)
    usable = per_study[per_study["pooled"] & (per_study["vi"] > 0)]
    rows = [
        _pool(keys, group["yi"].to_numpy(), group["vi"].to_numpy())
        | {"synthetic": bool(group["synthetic"].any()), "note": _cell_note(group)}
        for keys, group in usable.groupby(POOL_KEYS, sort=True)
    ]
    return tables.frame(tables.RANDOM_EFFECTS, rows)


# --- stage 2 ---------------------------------------------------------------------------------


def _pool(keys: tuple, yi: np.ndarray, vi: np.ndarray) -> dict:
    k = len(yi)
    dataset = Dataset(y=yi, v=vi)
    if k == 1:
        fixed = _fit(WeightedLeastSquares(tau2=0.0, small_sample_correction="wald"), dataset)
        reml = dl = {**fixed, "tau2": np.nan}
        reml_hksj = dl_hksj = {"lo95": np.nan, "hi95": np.nan}
    else:
        reml = _fit(VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction="wald"), dataset)
        dl = _fit(DerSimonianLaird(small_sample_correction="wald"), dataset)
        reml_hksj = _fit(VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction="knapp-hartung"),
                         dataset)
        dl_hksj = _fit(DerSimonianLaird(small_sample_correction="knapp-hartung"), dataset)
    return {
        **dict(zip(POOL_KEYS, keys)), "k": k,
        **{f"reml_{name}": value for name, value in reml.items()},
        **{f"dl_{name}": value for name, value in dl.items()},
        "reml_hksj_lo95": reml_hksj["lo95"], "reml_hksj_hi95": reml_hksj["hi95"],
        "dl_hksj_lo95": dl_hksj["lo95"], "dl_hksj_hi95": dl_hksj["hi95"],
    }


def _cell_note(group: pd.DataFrame) -> str:
    """What a reader of the pooled row must know: one study, SEs from P values, unshifted rows."""
    notes = []
    if len(group) == 1:
        notes.append("one study: the estimate is that study's own, tau² is not estimable (nor an HKSJ interval)")
    from_p = int(group["method"].eq(P_VALUE_EXACT).sum())
    if from_p:
        notes.append(f"{from_p} of {len(group)} SE(s) from exact P values: read the HKSJ interval")
    unshifted = int(group["shift"].isna().sum())
    if unshifted:
        notes.append(f"{unshifted} ratio(s) of means left without the σ²/2 shift (no case data give σ²)")
    return "; ".join(notes)


def _fit(estimator: object, dataset: Dataset) -> dict:
    summary = estimator.fit_dataset(dataset).summary()
    stats_ = summary.get_fe_stats(alpha=ALPHA)
    return {
        "estimate": float(stats_["est"].squeeze()),
        "lo95": float(stats_["ci_l"].squeeze()),
        "hi95": float(stats_["ci_u"].squeeze()),
        "tau2": float(np.asarray(summary.tau2).squeeze()),
    }
