"""Recovery of a simulated truth: do the posterior's central intervals of θ cover it?

Only meaningful on SYNTHETIC data, where the simulator wrote the true θ[intervention, marker]
(``truth.tsv`` beside the demo's study files). The workflow runs it on the demo's main analysis
(rule ``recover_truth``); ``validation/recovery.py`` runs it over many simulation seeds.

One dataset's coverage is a smoke test, not a calibration check: its cells share parameters and
study effects, so even a calibrated model covers fewer than 90% of them on some datasets. What
"fewer" may mean for this design comes from the posterior itself: if the model is right, the truth
is distributed as a posterior draw, so the share of cells a draw of θ falls in is the distribution
the truth's coverage should follow (:func:`draw_coverage`), correlations between cells included.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd

from crsmeta import tables

LEVEL = 0.90


def truth_coverage(idata: az.InferenceData, truth: pd.DataFrame, data_cells: pd.DataFrame,
                   level: float = LEVEL) -> pd.DataFrame:
    """Per (intervention, marker) cell of the fit (:data:`crsmeta.tables.RECOVERY`, labelled
    SYNTHETIC): true θ, posterior median, central ``level`` interval, whether it covers the truth,
    and whether any row of data feeds the cell.

    ``truth`` is the simulator's (:data:`crsmeta.tables.TRUTH`, typed); ``data_cells`` lists the
    (intervention, marker) pairs with data (e.g. the effects table's rows). θ is the posterior's
    ``theta`` variable, the reference population's: the simulator has no population effect, so
    it is the truth in every population.
    """
    tables.check(tables.TRUTH, truth)
    theta = az.extract(idata, var_names="theta")
    tail = (1 - level) / 2
    table = pd.concat([
        theta.median(dim="sample").to_series().rename("median"),
        theta.quantile(tail, dim="sample").to_series().rename("lo"),
        theta.quantile(1 - tail, dim="sample").to_series().rename("hi"),
    ], axis=1).reset_index()
    table = table.drop(columns="quantile", errors="ignore")
    table = table.merge(truth[["intervention", "marker", "theta"]], on=["intervention", "marker"],
                        how="left", validate="one_to_one")
    if table["theta"].isna().any():
        missing = table.loc[table["theta"].isna(), ["intervention", "marker"]].to_records(index=False)
        raise ValueError(f"the truth has no θ for the fitted cell(s) {', '.join(map(str, missing))}")
    table["covered"] = (table["lo"] <= table["theta"]) & (table["theta"] <= table["hi"])
    observed = set(zip(data_cells["intervention"], data_cells["marker"]))
    table["has_data"] = [(i, m) in observed for i, m in zip(table["intervention"], table["marker"])]
    return tables.frame(tables.RECOVERY, table.assign(synthetic=True))


def coverage_summary(table: pd.DataFrame) -> dict[str, float | int]:
    """Cells and coverage among all cells and among the cells with data."""
    with_data = table[table["has_data"]]
    return {"cells": len(table), "covered": int(table["covered"].sum()),
            "coverage": float(table["covered"].mean()),
            "cells_with_data": len(with_data), "covered_with_data": int(with_data["covered"].sum()),
            "coverage_with_data": float(with_data["covered"].mean()) if len(with_data) else float("nan")}


def draw_coverage(idata: az.InferenceData, table: pd.DataFrame) -> np.ndarray:
    """For each posterior draw, the share of the cells with data whose θ falls inside the cell's
    interval in ``table`` (:func:`truth_coverage`'s): the coverage the truth would have, were it
    that draw."""
    cells = table[table["has_data"]]
    if cells.empty:
        return np.array([])
    theta = az.extract(idata, var_names="theta")
    draws = np.stack([theta.sel(intervention=i, marker=m).to_numpy()
                      for i, m in zip(cells["intervention"], cells["marker"])])
    inside = (cells["lo"].to_numpy()[:, None] <= draws) & (draws <= cells["hi"].to_numpy()[:, None])
    return inside.mean(axis=0)


def recovery_summary(idata: az.InferenceData, table: pd.DataFrame) -> pd.DataFrame:
    """:data:`crsmeta.tables.RECOVERY_SUMMARY`: the truth's coverage beside the 5th percentile of
    :func:`draw_coverage` and the share of draws covering as few cells or fewer (a value below 0.05
    says that the dataset's coverage is lower than the model itself expects)."""
    summary = coverage_summary(table)
    drawn = draw_coverage(idata, table)
    observed = summary["coverage_with_data"]
    reference = {"calibrated_p05": float(np.quantile(drawn, 0.05)) if drawn.size else float("nan"),
                 "p_as_low": float(np.mean(drawn <= observed + 1e-12)) if drawn.size else float("nan")}
    counts = {name: summary[name] for name in ("cells", "covered", "cells_with_data", "covered_with_data",
                                                "coverage_with_data")}
    return tables.frame(tables.RECOVERY_SUMMARY, [{**counts, **reference, "synthetic": True}])
