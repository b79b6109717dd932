"""Frequentist cross-check: textbook agreement (REML, DL, Knapp–Hartung), k=1, rows without a
variance, and the like-for-like rules: censored patients by maximum likelihood, the σ²/2 shift."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crsmeta import tables
from crsmeta.model.frequentist import RANDOM_EFFECTS_COLUMNS, random_effects
from crsmeta.study_estimates import PER_STUDY_COLUMNS, censored_normal_fit, per_study_estimates
from crsmeta.report.tables import frequentist_comparison

# BCG vaccine trials (Colditz et al. 1994; metafor's dat.bcg): tpos, tneg, cpos, cneg.
BCG = np.array([
    [4, 119, 11, 128], [6, 300, 29, 274], [3, 228, 11, 209], [62, 13536, 248, 12619],
    [33, 5036, 47, 5761], [180, 1361, 372, 1079], [8, 2537, 10, 619], [505, 87886, 499, 87892],
    [29, 7470, 45, 7232], [17, 1699, 65, 1600], [186, 50448, 141, 27197], [5, 2493, 3, 2338],
    [27, 16886, 29, 17825],
], dtype=float)


def studies(yi, vi, intervention="tocilizumab", marker="IL-6") -> pd.DataFrame:
    """Stage 1's estimates (:data:`crsmeta.tables.PER_STUDY`), every one pooled."""
    return tables.frame(tables.PER_STUDY, pd.DataFrame({
        "study_id": [f"s{i:02d}" for i in range(len(yi))], "intervention": intervention,
        "marker": marker, "population": "car_t_crs", "yi": yi, "vi": vi, "lo95": np.nan, "hi95": np.nan, "n": 10.0,
        "source": "summary", "method": "se_reported", "shift": 0.0, "pooled": True, "synthetic": False,
        "note": "",
    }))


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


def changes_table(values: dict[str, list[float]], censored: int = 0, bound: float = -3.5) -> pd.DataFrame:
    """Exact changes per study, and ``censored`` left-censored ones (true change <= ``bound``)."""
    rows = []
    for study, changes in values.items():
        rows += [change_record(study, f"p{number}", change, change, change, "none")
                 for number, change in enumerate(changes)]
        rows += [change_record(study, f"c{number}", math.nan, -math.inf, bound, "left") for number in range(censored)]
    return tables.frame(tables.CHANGES, rows)


def change_record(study: str, patient: str, change: float, lower: float, upper: float, censoring: str) -> dict:
    """One patient's tocilizumab IL-6 change (:data:`crsmeta.tables.CHANGES`), the rest left empty."""
    return {"study_id": study, "patient_id": patient, "population": "car_t_crs", "intervention": "tocilizumab",
            "co_interventions": "", "marker": "IL-6", "astct_grades": "", "pre_value": math.nan,
            "post_value": math.nan, "pre_censoring": "", "post_censoring": "", "hours": math.nan, "change": change,
            "change_lower": lower, "change_upper": upper, "censoring": censoring, "digitised": False, "flags": "",
            "source_rows": "", "synthetic": False, "selection": "", "unit": "log_ratio"}


def observations(**columns) -> pd.DataFrame:
    """Summary comparisons as crsmeta.comparisons gives them (:data:`crsmeta.tables.OBSERVATIONS`):
    ``columns`` and, for the columns stage 1 does not read, defaults (``n_effective`` is ``n``)."""
    defaults = {"arm": "", "population": "car_t_crs", "intervention": "tocilizumab", "co_interventions": "",
                "marker": "IL-6", "kind": "effect", "pre_value": np.nan, "se_known": np.nan, "disp_pre": np.nan,
                "disp_post": np.nan, "mean_shift": np.nan, "se_upper": np.inf, "se_lower": 0.0, "efficiency": 1.0,
                "extra_var": 0.0, "mean_weight": 0.0, "source_rows": "", "digitised": False, "flags": "",
                "synthetic": False, "method": "se_reported"}
    frame = pd.DataFrame(defaults | columns)
    return tables.frame(tables.OBSERVATIONS, frame.assign(n_effective=frame["n"]))


def test_case_level_estimates_are_mean_and_variance_of_the_mean():
    per_study = per_study_estimates(changes_table({"a": [-1.0, -2.0, -3.0], "b": [-0.5]}))
    assert list(per_study.columns) == PER_STUDY_COLUMNS
    a, b = per_study.iloc[0], per_study.iloc[1]
    assert (a["yi"], a["vi"], a["n"], a["source"]) == (-2.0, pytest.approx(1.0 / 3), 3, "cases")
    assert a["method"] == "cases_mean" and a["shift"] == 0 and a["note"] == ""
    assert b["yi"] == -0.5 and math.isnan(b["vi"]) and not b["pooled"]
    assert "no within-study variance" in b["note"]


def test_summary_rows_without_a_known_se_are_kept_and_noted():
    aggregate = observations(study_id=["c", "d"], n=[20.0, 12.0], y=[-1.2, -0.7], se_known=[0.3, np.nan],
                             method=["se_reported", "dispersion_from_data"], synthetic=[True, False])
    per_study = per_study_estimates(changes_table({"a": [-1.0, -2.0, -3.0]}), aggregate)
    summary = per_study[per_study["source"] == "summary"].set_index("study_id")
    # a reported SE of 20 patients' changes, times the model's (t quantile with 19 df / 1.96)²
    assert summary.loc["c", "vi"] == pytest.approx(0.09 * (stats.t.ppf(0.975, 19) / stats.norm.ppf(0.975)) ** 2)
    assert "as in the model" in summary.loc["c", "note"]
    assert math.isnan(summary.loc["d", "vi"])
    assert "left to the Bayesian model" in summary.loc["d", "note"]
    table = random_effects(per_study)
    assert list(table.columns) == RANDOM_EFFECTS_COLUMNS
    assert table.iloc[0]["k"] == 2
    assert table.iloc[0]["synthetic"], "a SYNTHETIC study makes the pooled row synthetic"


def test_a_study_with_case_and_summary_estimates_is_pooled_once():
    aggregate = observations(study_id=["a"], n=[3.0], y=[-2.0], se_known=[0.5])
    per_study = per_study_estimates(changes_table({"a": [-1.0, -2.0, -3.0]}), aggregate)
    assert list(per_study["pooled"]) == [True, False]
    assert "another estimate of this study is pooled" in per_study.iloc[1]["note"]
    assert random_effects(per_study).iloc[0]["k"] == 1


# --- censored patients: censored-normal maximum likelihood -------------------------------------


def brute_force_maximum(loglik, centre: tuple[float, float]) -> tuple[float, float]:
    """(μ, σ) maximising ``loglik`` on a coarse grid, then a fine one around the best point."""
    (mu0, sigma0), best = centre, None
    for half_width, step in ((0.8, 0.01), (0.02, 0.0002)):
        mus = np.arange(mu0 - half_width, mu0 + half_width, step)
        sigmas = np.arange(max(sigma0 - half_width, 0.05), sigma0 + half_width, step)
        grid = loglik(mus[:, None, None], sigmas[None, :, None])
        i, j = np.unravel_index(np.argmax(grid), grid.shape)
        mu0, sigma0 = best = mus[i], sigmas[j]
    return best


def censored_sample(seed: int = 20240611):
    """30 normal changes, left-censored below −1.8 and right-censored above −0.3 (a detection
    limit on either side), and the first two known only to an interval of width 0.5."""
    x = np.random.default_rng(seed).normal(-1.2, 0.9, 30)
    lower, upper = x.copy(), x.copy()
    lower[x < -1.8], upper[x < -1.8] = -np.inf, -1.8
    lower[x > -0.3], upper[x > -0.3] = -0.3, np.inf
    lower[:2], upper[:2] = np.floor(x[:2] * 2) / 2, np.floor(x[:2] * 2) / 2 + 0.5
    exact = lower == upper
    return x[exact], lower[~exact], upper[~exact]


def independent_loglik(exact, lower, upper):
    """The censored normal log-likelihood written out with scipy.stats' cdf (not log_ndtr)."""
    def loglik(mu, sigma):
        with np.errstate(divide="ignore"):  # far corners of the brute-force grid
            censored = np.log(stats.norm.cdf(upper, mu, sigma) - stats.norm.cdf(lower, mu, sigma))
        return stats.norm.logpdf(exact, mu, sigma).sum(axis=-1) + censored.sum(axis=-1)
    return loglik


def test_censored_fit_is_the_likelihood_maximum_with_its_observed_information():
    exact, lower, upper = censored_sample()
    assert len(lower) >= 10 and np.isinf(lower).any() and np.isinf(upper).any(), "all three kinds censored"
    fit = censored_normal_fit(exact, lower, upper)
    loglik = independent_loglik(exact, lower, upper)
    mu, sigma = brute_force_maximum(loglik, (exact.mean(), exact.std()))
    assert (fit.mean, fit.sd) == (pytest.approx(mu, abs=5e-4), pytest.approx(sigma, abs=5e-4))
    left, right = upper[np.isinf(lower)], lower[np.isinf(upper)]
    interval = stats.CensoredData(uncensored=exact, left=left, right=right,
                                  interval=np.column_stack([lower, upper])[np.isfinite(lower) & np.isfinite(upper)])
    assert stats.norm.fit(interval) == (pytest.approx(fit.mean, abs=1e-3), pytest.approx(fit.sd, abs=1e-3))
    # observed information by central differences in (μ, σ): the μ element of its inverse
    h = 1e-3
    f = lambda dm, ds: float(loglik(fit.mean + dm, fit.sd + ds))  # noqa: E731
    d_mm = (f(h, 0) - 2 * f(0, 0) + f(-h, 0)) / h**2
    d_ss = (f(0, h) - 2 * f(0, 0) + f(0, -h)) / h**2
    d_ms = (f(h, h) - f(h, -h) - f(-h, h) + f(-h, -h)) / (4 * h**2)
    assert fit.var_mean == pytest.approx(np.linalg.inv(-np.array([[d_mm, d_ms], [d_ms, d_ss]]))[0, 0], rel=1e-3)
    assert fit.n == 30


def test_without_censoring_the_fit_is_the_sample_mean_and_its_ml_variance():
    x = np.random.default_rng(5).normal(0.4, 1.3, 12)
    fit = censored_normal_fit(x, np.array([]), np.array([]))
    assert fit.mean == pytest.approx(x.mean(), abs=1e-7)
    assert fit.sd == pytest.approx(x.std(ddof=0), rel=1e-6)
    assert fit.var_mean == pytest.approx(x.var(ddof=0) / 12, rel=1e-5)


def test_no_censored_patient_is_dropped_silently():
    exact = [-1.0, -2.0, -3.0, -2.5]
    per_study = per_study_estimates(changes_table({"a": exact}, censored=2, bound=-3.5))
    row = per_study.iloc[0]
    fit = censored_normal_fit(np.array(exact), np.full(2, -np.inf), np.full(2, -3.5))
    assert row["n"] == 6 and row["method"] == "cases_censored_ml" and row["pooled"]
    assert row["yi"] == pytest.approx(fit.mean) and row["yi"] < np.mean(exact), "the censored fall counts"
    assert row["vi"] == pytest.approx(fit.var_mean * 6 / 5)
    assert "2 censored patient(s) entered by their bounds" in row["note"]
    lonely = per_study_estimates(changes_table({"b": [-1.0]}, censored=3)).iloc[0]
    assert lonely["n"] == 4 and math.isnan(lonely["vi"]) and not lonely["pooled"]
    assert "3 censored and 1 exact patient(s)" in lonely["note"] and "not poolable" in lonely["note"]


# --- the σ²/2 shift of ratios of means ----------------------------------------------------------


def test_ratios_of_means_lose_the_shift_the_model_gives_them():
    # σ̂²[IL-6]: s² = 1 (a, 2 df) and 1/3 (b, 3 df) pooled with weights n − 1 → 0.6, shift 0.3
    changes = changes_table({"a": [-1.0, -2.0, -3.0], "b": [-0.5, -1.5, -0.5, -1.5]})
    aggregate = observations(
        study_id=["c", "d", "e", "f", "g"], marker=["IL-6", "IL-6", "IL-6", "CRP", "temperature"],
        n=20.0, y=-1.2, se_known=0.3, mean_weight=[1.0, 0.5, 1.0, 1.0, 0.0],
        mean_shift=[np.nan, np.nan, 0.1, np.nan, np.nan],
        method=["sd_reported", "p_value_exact", "se_reported", "se_reported", "se_reported"],
    )
    per_study = per_study_estimates(changes, aggregate).set_index("study_id")
    assert per_study.loc["c", "yi"] == pytest.approx(-1.5) and per_study.loc["c", "shift"] == pytest.approx(0.3)
    assert per_study.loc["c", "vi"] == pytest.approx(0.09)
    # an unstated statistic: half the shift, and the variance of not knowing which (model's w(1 − w)·shift²)
    assert per_study.loc["d", "yi"] == pytest.approx(-1.35)
    assert per_study.loc["d", "vi"] == pytest.approx(0.09 + 0.25 * 0.3**2)
    assert per_study.loc["e", "yi"] == pytest.approx(-1.3), "the row's own CVs before σ̂²"
    assert per_study.loc["f", "yi"] == -1.2 and math.isnan(per_study.loc["f", "shift"])
    assert "left unshifted" in per_study.loc["f", "note"] and per_study.loc["f", "pooled"]
    assert per_study.loc["g", "yi"] == -1.2 and per_study.loc["g", "shift"] == 0
    cells = random_effects(per_study.reset_index()).set_index("marker")
    assert "without the σ²/2 shift" in cells.loc["CRP", "note"]
    assert "1 of 5 SE(s) from exact P values" in cells.loc["IL-6", "note"]


def test_a_shift_from_the_rows_cvs_gets_the_models_small_sample_correction_at_sigma_hat():
    """As the model adds the correction at σ[marker] (crsmeta.cv_shift), the cross-check adds it
    at σ̂; without case data of the marker it notes that it could not."""
    from crsmeta import cv_shift

    changes = changes_table({"a": [-1.0, -2.0, -3.0], "b": [-0.5, -1.5, -0.5, -1.5]})  # σ̂²[IL-6] = 0.6
    aggregate = observations(study_id=["c", "f"], marker=["IL-6", "CRP"], n=20.0, y=-1.2, mean_weight=1.0,
                             mean_shift=0.1, disp_pre=1.5, flags="shift_from_cvs", method="sd_reported")
    per_study = per_study_estimates(changes, aggregate).set_index("study_id")
    correction = np.interp(math.sqrt(0.6), cv_shift.SIGMA_GRID, cv_shift.cv_shift_tables(1.5, 20)[0])
    assert correction > 0.05
    assert per_study.loc["c", "shift"] == pytest.approx(0.1 + correction)
    assert per_study.loc["f", "shift"] == pytest.approx(0.1)
    assert "correction not applied" in per_study.loc["f", "note"]


def test_p_value_bounds_stay_out_with_their_reason():
    aggregate = observations(study_id=["c", "d"], n=20.0, y=[-1.2, -0.9], se_known=[np.nan, 0.4],
                             method=["p_value_bound", "p_value_exact"])
    per_study = per_study_estimates(changes_table({}), aggregate).set_index("study_id")
    assert not per_study.loc["c", "pooled"] and "printed as a bound" in per_study.loc["c", "note"]
    assert per_study.loc["d", "pooled"] and "exact P value" in per_study.loc["d", "note"]


# --- Hartung–Knapp–Sidik–Jonkman intervals ------------------------------------------------------


def test_knapp_hartung_matches_metafor_on_kacker_2004():
    """metafor rma(y, v, method="DL", test="knha") on Kacker (2004), as recorded in statsmodels'
    stats/tests/results/results_meta.py (exk1_dl_hksj): estimate 62.3901386044504, CI
    61.710383798052 to 63.0698934108488, τ² 0.288049246973751."""
    y = [61.0, 61.4, 62.21, 62.3, 62.34, 62.6, 62.7, 62.84, 65.9]
    v = [0.2025, 1.21, 0.09, 0.2025, 0.3844, 0.5625, 0.0676, 0.0225, 1.8225]
    row = random_effects(studies(y, v)).iloc[0]
    assert row["dl_estimate"] == pytest.approx(62.3901386044504, abs=1e-9)
    assert row["dl_tau2"] == pytest.approx(0.288049246973751, abs=1e-9)
    assert row["dl_hksj_lo95"] == pytest.approx(61.710383798052, abs=1e-8)
    assert row["dl_hksj_hi95"] == pytest.approx(63.0698934108488, abs=1e-8)


def test_reml_knapp_hartung_is_the_weighted_residual_scale_with_t_quantiles():
    data = bcg()
    row = random_effects(data).iloc[0]
    yi, vi = data["yi"].to_numpy(), data["vi"].to_numpy()
    w = 1 / (vi + row["reml_tau2"])
    estimate = np.sum(w * yi) / np.sum(w)
    q = np.sum(w * (yi - estimate) ** 2) / (len(yi) - 1)
    half = stats.t.ppf(0.975, len(yi) - 1) * math.sqrt(q / np.sum(w))
    assert row["reml_hksj_lo95"] == pytest.approx(estimate - half, rel=1e-6)
    assert row["reml_hksj_hi95"] == pytest.approx(estimate + half, rel=1e-6)
    few = random_effects(studies([-1.0, -0.4, -0.7], [0.04, 0.05, 0.03])).iloc[0]
    assert few["reml_hksj_hi95"] - few["reml_hksj_lo95"] > few["reml_hi95"] - few["reml_lo95"], \
        "with three studies the t interval is the wider"
    one = random_effects(studies([-0.8], [0.04])).iloc[0]
    assert math.isnan(one["reml_hksj_lo95"]) and math.isnan(one["dl_hksj_hi95"])


def test_the_report_shows_the_knapp_hartung_interval_beside_the_wald_ones():
    frequentist = random_effects(studies([-1.0, -0.4, -0.7], [0.04, 0.05, 0.03]))
    effects = pd.DataFrame({"intervention": ["tocilizumab"], "marker": ["IL-6"], "n_studies": [3],
                            "theta_median": [-0.7], "theta_lo95": [-1.1], "theta_hi95": [-0.3]})
    row = frequentist_comparison(effects, frequentist).iloc[0]
    low, high = (100 * math.expm1(frequentist.iloc[0][f"reml_hksj_{end}"]) for end in ("lo95", "hi95"))
    assert row["note"].startswith(f"REML with Knapp–Hartung 95% CI {low:+.0f}% to {high:+.0f}%")
    assert row["reml_hksj_lo95"] == pytest.approx(frequentist.iloc[0]["reml_hksj_lo95"])


def test_the_report_says_in_one_sentence_why_a_cell_differs_by_design():
    """Fewer studies pooled than the model uses; one study far from a pooled posterior; no known
    SE at all; and nothing where the two agree."""
    frequentist = pd.concat([random_effects(studies([-1.0, -0.4, -0.7], [0.04, 0.05, 0.03])),
                             random_effects(studies([-2.0], [0.04])).assign(marker="CRP")], ignore_index=True)
    effects = pd.DataFrame({"intervention": "tocilizumab", "marker": ["IL-6", "CRP", "ferritin", "IL-10"],
                            "n_studies": [3, 1, 2, 4], "theta_median": [-0.7, -1.0, -0.5, -0.9],
                            "theta_lo95": [-1.1, -1.6, -1.5, -1.5], "theta_hi95": [-0.3, -0.4, 0.5, -0.3]})
    frequentist = pd.concat([frequentist, random_effects(studies([-0.9, -0.8], [0.04, 0.05])).assign(marker="IL-10")],
                            ignore_index=True)
    why = frequentist_comparison(effects, frequentist).set_index("marker")["why"]
    assert why["IL-6"] == ""
    assert why["CRP"].startswith("One study")
    assert why["ferritin"].startswith("No study of this cell gives a known SE")
    assert why["IL-10"].startswith("The check pools 2 of the 4 studies")
