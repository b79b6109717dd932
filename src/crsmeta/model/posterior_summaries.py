"""Posterior summaries beside the effects table: τ per marker and the pairwise superiority of
interventions, written by each fit so that the report reads tables instead of draws."""

from __future__ import annotations

from collections.abc import Collection

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from crsmeta import tables

TAU_INTERVAL = 0.95
"""The mass of τ's central interval (the report's one credible-interval mass)."""
TAU_GROUPS = ("prior", "posterior")


def tau_summaries(idata: az.InferenceData, markers: Collection[str] | None = None) -> pd.DataFrame:
    """τ per marker from the prior and the posterior draws: median and central 95% interval
    (:data:`crsmeta.tables.TAU_SUMMARIES`); a group without draws of τ by marker has no rows.
    ``markers``: only these (an analysis' markers with rows; a marker another analysis' rows
    brought into the model has τ's prior alone), or every marker when None."""
    tail = (1 - TAU_INTERVAL) / 2
    rows = []
    for group in TAU_GROUPS:
        tau = posterior_variable(idata, "tau", group)
        if tau is None or "marker" not in tau.dims:
            continue
        quantiles = tau.quantile([tail, 0.5, 1 - tail], dim=[d for d in tau.dims if d != "marker"])
        rows += [{"group": group, "marker": str(marker), "lo": float(quantiles.sel(quantile=tail, marker=marker)),
                  "median": float(quantiles.sel(quantile=0.5, marker=marker)),
                  "hi": float(quantiles.sel(quantile=1 - tail, marker=marker))}
                 for marker in tau.coords["marker"].values if markers is None or marker in markers]
    return tables.frame(tables.TAU_SUMMARIES, rows)


def superiority(idata: az.InferenceData, effects: pd.DataFrame) -> pd.DataFrame:
    """P(θ[intervention] < θ[comparator]) per marker, for every ordered pair of the interventions
    with an estimate for it in ``effects`` (:data:`crsmeta.tables.SUPERIORITY`): the probability
    that the intervention lowers the marker more than the comparator."""
    theta = posterior_variable(idata, "theta")
    if theta is None or not {"intervention", "marker"} <= set(theta.dims):
        return tables.frame(tables.SUPERIORITY)
    rows = []
    for marker in sorted(set(effects["marker"]) & set(theta.coords["marker"].values)):
        names = sorted(set(effects.loc[effects["marker"] == marker, "intervention"])
                       & set(theta.coords["intervention"].values))
        if len(names) < 2:
            continue
        draws = (theta.sel(marker=marker, intervention=names).stack(sample=("chain", "draw"))
                 .transpose("intervention", "sample").values)
        lower = (draws[:, None, :] < draws[None, :, :]).mean(axis=2)
        rows += [{"marker": marker, "intervention": row, "comparator": column, "p_lower": float(lower[i, j])}
                 for i, row in enumerate(names) for j, column in enumerate(names) if i != j]
    return tables.frame(tables.SUPERIORITY, rows)


def posterior_variable(idata: az.InferenceData | None, name: str, group: str = "posterior") -> xr.DataArray | None:
    """``idata.<group>[name]``, or None when the data, the group or the variable is missing."""
    if idata is None or group not in idata.groups():
        return None
    dataset = getattr(idata, group)
    return dataset[name] if name in dataset.data_vars else None
