"""Recovery of a simulated truth: do the posterior's central intervals of θ cover it?

Only meaningful on SYNTHETIC data, where the simulator wrote the true θ[intervention, marker]
(``truth.tsv`` beside the demo's study files). The workflow runs it on the demo's main analysis
(rule ``recover_truth``); ``validation/recovery.py`` runs it over many simulation seeds.
"""

from __future__ import annotations

import arviz as az
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
