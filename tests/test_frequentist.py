"""Frequentist cross-check: textbook agreement, REML vs DL, k=1, rows without a variance."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crsmeta.model.frequentist import (
    PER_STUDY_COLUMNS,
    RANDOM_EFFECTS_COLUMNS,
    cross_check,
    per_study_estimates,
    random_effects,
)

# BCG vaccine trials (Colditz et al. 1994; metafor's dat.bcg): tpos, tneg, cpos, cneg.
BCG = np.array([
    [4, 119, 11, 128], [6, 300, 29, 274], [3, 228, 11, 209], [62, 13536, 248, 12619],
    [33, 5036, 47, 5761], [180, 1361, 372, 1079], [8, 2537, 10, 619], [505, 87886, 499, 87892],
    [29, 7470, 45, 7232], [17, 1699, 65, 1600], [186, 50448, 141, 27197], [5, 2493, 3, 2338],
    [27, 16886, 29, 17825],
], dtype=float)


def studies(yi, vi, intervention="tocilizumab", marker="IL-6") -> pd.DataFrame:
    return pd.DataFrame({
        "study_id": [f"s{i:02d}" for i in range(len(yi))], "intervention": intervention,
        "marker": marker, "population": "car_t_crs", "yi": yi, "vi": vi, "n": 10,
        "source": "summary", "pooled": True, "synthetic": False, "note": "",
    })


def bcg() -> pd.DataFrame:
    tpos, tneg, cpos, cneg = BCG.T
    yi = np.log((tpos / (tpos + tneg)) / (cpos / (cpos + cneg)))
    vi = 1 / tpos - 1 / (tpos + tneg) + 1 / cpos - 1 / (cpos + cneg)
    return studies(yi, vi)


def dersimonian_laird_by_formula(yi: np.ndarray, vi: np.ndarray) -> tuple[float, float, float]:
    """Estimate, its SE and τ² by the DerSimonian–Laird (1986) formulas, for comparison."""
    w = 1 / vi
    fixed = np.sum(w * yi) / np.sum(w)
    q = np.sum(w * (yi - fixed) ** 2)
    tau2 = max(0.0, (q - (len(yi) - 1)) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    w_star = 1 / (vi + tau2)
    return np.sum(w_star * yi) / np.sum(w_star), math.sqrt(1 / np.sum(w_star)), tau2


def test_dersimonian_laird_agrees_with_the_formula_on_the_bcg_trials():
    data = bcg()
    row = random_effects(data).iloc[0]
    estimate, se, tau2 = dersimonian_laird_by_formula(data["yi"].to_numpy(), data["vi"].to_numpy())
    z = stats.norm.ppf(0.975)
    assert row["k"] == 13
    assert row["dl_tau2"] == pytest.approx(tau2, rel=1e-6)
    assert row["dl_estimate"] == pytest.approx(estimate, rel=1e-6)
    assert row["dl_lo95"] == pytest.approx(estimate - z * se, rel=1e-6)
    assert row["dl_hi95"] == pytest.approx(estimate + z * se, rel=1e-6)
    # Published values (metafor, method="DL"): tau² = 0.3088, estimate = -0.7141.
    assert row["dl_tau2"] == pytest.approx(0.3088, abs=5e-4)


def test_reml_matches_the_published_bcg_fit():
    """metafor rma(yi, vi) on dat.bcg: REML tau² = 0.3132, estimate = -0.7145 (SE 0.1798)."""
    row = random_effects(bcg()).iloc[0]
    assert row["reml_tau2"] == pytest.approx(0.3132, abs=5e-4)
    assert row["reml_estimate"] == pytest.approx(-0.7145, abs=5e-4)
    z = stats.norm.ppf(0.975)
    assert row["reml_lo95"] == pytest.approx(-0.7145 - z * 0.1798, abs=1e-3)


def test_reml_and_dl_differ_under_heterogeneity_and_agree_without_it():
    heterogeneous = random_effects(studies([-2.0, -0.2, -1.0, 0.5], [0.05, 0.4, 0.1, 0.02])).iloc[0]
    assert heterogeneous["reml_tau2"] > 0 and heterogeneous["dl_tau2"] > 0
    assert abs(heterogeneous["reml_tau2"] - heterogeneous["dl_tau2"]) > 0.05
    assert heterogeneous["reml_estimate"] != pytest.approx(heterogeneous["dl_estimate"], abs=1e-3)
    homogeneous = random_effects(studies([-1.0, -1.01, -0.99], [0.1, 0.2, 0.1])).iloc[0]
    assert homogeneous["reml_tau2"] == pytest.approx(0, abs=1e-6)
    assert homogeneous["dl_tau2"] == 0
    assert homogeneous["reml_estimate"] == pytest.approx(homogeneous["dl_estimate"], abs=1e-6)


def test_one_study_gives_its_own_estimate_and_no_tau2():
    row = random_effects(studies([-0.8], [0.04])).iloc[0]
    assert row["k"] == 1
    for method in ("reml", "dl"):
        assert row[f"{method}_estimate"] == pytest.approx(-0.8)
        assert row[f"{method}_lo95"] == pytest.approx(-0.8 - stats.norm.ppf(0.975) * 0.2)
        assert math.isnan(row[f"{method}_tau2"])
    assert "tau² is not estimable" in row["note"]


def changes_table(values: dict[str, list[float]], censored: int = 0) -> pd.DataFrame:
    rows = []
    for study, changes in values.items():
        for number, change in enumerate(changes):
            rows.append({"study_id": study, "patient_id": f"p{number}",
                         "intervention": "tocilizumab", "marker": "IL-6",
                         "population": "car_t_crs", "change": str(change), "censoring": "none",
                         "synthetic": "False"})
        rows += [{"study_id": study, "patient_id": f"c{number}", "intervention": "tocilizumab",
                  "marker": "IL-6", "population": "car_t_crs", "change": "",
                  "censoring": "left", "synthetic": "False"} for number in range(censored)]
    return pd.DataFrame(rows)


def test_case_level_estimates_are_mean_and_variance_of_the_mean():
    per_study = per_study_estimates(changes_table({"a": [-1.0, -2.0, -3.0], "b": [-0.5]},
                                                  censored=1))
    assert list(per_study.columns) == PER_STUDY_COLUMNS
    a, b = per_study.iloc[0], per_study.iloc[1]
    assert (a["yi"], a["vi"], a["n"], a["source"]) == (-2.0, pytest.approx(1.0 / 3), 3, "cases")
    assert "1 censored patient(s) left out" in a["note"]
    assert b["yi"] == -0.5 and math.isnan(b["vi"]) and not b["pooled"]
    assert "no within-study variance" in b["note"]


def test_summary_rows_without_a_known_se_are_kept_and_noted():
    aggregate = pd.DataFrame({
        "study_id": ["c", "d"], "arm": ["", ""], "population": "car_t_crs",
        "intervention": "tocilizumab", "marker": "IL-6", "n": [20.0, 12.0], "y": [-1.2, -0.7],
        "se_known": [0.3, np.nan], "synthetic": [True, False],
    })
    per_study = per_study_estimates(changes_table({"a": [-1.0, -2.0, -3.0]}), aggregate)
    summary = per_study[per_study["source"] == "summary"].set_index("study_id")
    assert summary.loc["c", "vi"] == pytest.approx(0.09)
    assert math.isnan(summary.loc["d", "vi"])
    assert "no known standard error" in summary.loc["d", "note"]
    table = cross_check(changes_table({"a": [-1.0, -2.0, -3.0]}), aggregate)
    assert list(table.columns) == RANDOM_EFFECTS_COLUMNS
    assert table.iloc[0]["k"] == 2
    assert table.iloc[0]["synthetic"], "a SYNTHETIC study makes the pooled row synthetic"


def test_a_study_with_case_and_summary_estimates_is_pooled_once():
    aggregate = pd.DataFrame({
        "study_id": ["a"], "population": "car_t_crs", "intervention": "tocilizumab",
        "marker": "IL-6", "n": [3.0], "y": [-2.0], "se_known": [0.5], "synthetic": [False],
    })
    per_study = per_study_estimates(changes_table({"a": [-1.0, -2.0, -3.0]}), aggregate)
    assert list(per_study["pooled"]) == [True, False]
    assert "another estimate of this study is pooled" in per_study.iloc[1]["note"]
    assert random_effects(per_study).iloc[0]["k"] == 1
