"""Each study's own estimate of a change, like for like with the Bayesian model: the changes
stage's third table (rule study_estimates, ``results/model/study_estimates.tsv``), read by the
frequentist cross-check (crsmeta.model.frequentist) and by the forest plots.

:func:`per_study_estimates` turns each study's data into one effect ``yi`` (log ratio, or °C
difference for temperature) with its sampling variance ``vi`` and a 95% interval (docs/model.md;
the rules are listed in docs/validation.md, "The frequentist cross-check"):

* case-level changes: the mean change and its variance. With no censored patient these are the
  sample mean and s²/n. A censored change (``left``: ≤ ``change_upper``, ``right``: ≥
  ``change_lower``, ``interval``: between them) enters as the model enters it, by its probability
  under a normal: mean and SD are the maximum-likelihood estimates of the censored normal
  (:func:`censored_normal_fit`), the variance of the mean the inverse observed information,
  both times n/(n − 1) so that the route meets s²/n when nothing is censored; the interval is
  t-based (n − 1 df);
* summary comparisons (``crsmeta.comparisons.summary_comparisons``) with a known standard error
  (reported SE or CI, or an exact P value): ``y`` and ``se_known²``, with the model's σ²/2
  shift: a log ratio of arithmetic means estimates θ + shift, so ``yi = y − w·shift`` with
  ``w`` the row's ``mean_weight`` and shift the row's own ``mean_shift`` where it has one (plus,
  where it comes from the row's CVs, its small-sample correction at σ̂, crsmeta.cv_shift), else
  σ̂²/2, σ̂² the pooled within-study variance of that marker's case changes
  (:func:`within_study_variance`); ``vi`` gains w(1 − w)·shift² (an unstated statistic), as in
  the model, and a reported SE's ``se_known²`` is times the model's κ(n) = (t₀.₉₇₅,ₙ₋₁/1.96)²
  (a CI's SE has its t quantile already); the interval is normal. Where no case data inform σ² the row stays unshifted, with
  ``shift`` empty and a note. Rows whose SE is only bounded (``p < x``, ``p > x``) or depends on
  parameters the model learns (ρ, σ) keep ``vi`` NaN with the reason in ``note``.

``synthetic`` is carried through so that simulator output stays labelled in every table.

A study that gives more than one usable estimate for the same intervention and marker (case-level
and summary, or several arms in one population) has only the first pooled (``pooled`` False on the
others), because pooling both would count the study twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import differentiate, optimize, special, stats

from crsmeta import cv_shift, mean_spread, tables
from crsmeta.comparisons import SE_REPORTED

STUDY_KEYS = ["study_id", "intervention", "marker", "population"]
POOL_KEYS = ["intervention", "marker"]  # one pooled estimate per cell
PER_STUDY_COLUMNS = tables.PER_STUDY.columns
LEVEL = 0.95
DUPLICATE_NOTE = "another estimate of this study is pooled"
P_VALUE_EXACT = "p_value_exact"
P_VALUE_NOTE = ("SE from an exact P value (paired t test assumed), taken as known; the Bayesian "
                "model learns it around that value (see the HKSJ interval)")
NOT_KNOWN = {
    "p_value_bound": "the P value is printed as a bound (p < x or p > x), which bounds the SE on one side "
                     "only: not a known SE, left to the Bayesian model",
    "dispersion_from_data": "nothing printed fixes the SE (the Bayesian model learns it from σ): "
                            "left to the Bayesian model",
}
RHO_NOTE = ("the SE depends on the pre/post correlation ρ, which the Bayesian model learns: "
            "left to the Bayesian model")
UNSHIFTED_NOTE = ("left unshifted: no case data of this marker give σ², so the σ²/2 a ratio of means "
                  "carries is unknown here (the Bayesian model takes it from σ's prior)")
BASELINE_BIAS_NOTE = ("the Bayesian model shifts it by b(s, σ, n) more, what the log of a cohort's mean falls "
                      "short by, which needs the baseline's spread s that only it learns (crsmeta.cohort_log_ratio)")
CASE_METHODS = ("cases_mean", "cases_censored_ml")


def per_study_estimates(
    changes: pd.DataFrame, aggregate: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One effect, its sampling variance and 95% interval per study, intervention, marker and
    population (:data:`crsmeta.tables.PER_STUDY`), from the changes stage's tables typed as
    ``tables.read`` gives them (:data:`crsmeta.tables.CHANGES`, :data:`crsmeta.tables.OBSERVATIONS`)."""
    tables.check(tables.CHANGES, changes)
    if aggregate is not None:
        tables.check(tables.OBSERVATIONS, aggregate)
    cases = _case_estimates(changes)
    parts = [cases]
    if aggregate is not None:
        parts.append(_summary_estimates(aggregate, within_study_variance(cases)))
    frame = pd.concat([part for part in parts if not part.empty] or parts, ignore_index=True)
    frame = frame.sort_values([*STUDY_KEYS, "source"], kind="stable").reset_index(drop=True)
    # typed (the interval still empty) before the interval is computed from yi, vi and n
    estimates = tables.frame(tables.PER_STUDY, _mark_pooled(frame).assign(lo95=np.nan, hi95=np.nan))
    return tables.frame(tables.PER_STUDY, _with_interval(estimates))


def _with_interval(frame: pd.DataFrame) -> pd.DataFrame:
    """yi ± q·√vi: q of a t with n − 1 df for a mean of patients' changes, of a normal for a
    summary comparison (its SE is taken as known); ``frame`` is typed (:data:`crsmeta.tables.PER_STUDY`)."""
    n = frame["n"].to_numpy()
    cases = (frame["source"] == "cases").to_numpy()
    quantile = np.where(cases, stats.t.ppf(0.5 + LEVEL / 2, np.maximum(n - 1, 1)), stats.norm.ppf(0.5 + LEVEL / 2))
    half = quantile * np.sqrt(frame["vi"].to_numpy())
    return frame.assign(lo95=frame["yi"] - half, hi95=frame["yi"] + half)


# --- case-level changes ------------------------------------------------------------


@dataclass(frozen=True)
class CensoredFit:
    """Maximum-likelihood fit of a normal to exact and censored values."""

    mean: float
    sd: float  # the ML estimate (divisor n)
    var_mean: float  # inverse observed information of the mean (divisor n)
    n: int


def censored_normal_fit(
    exact: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> CensoredFit:
    """Mean and SD of a normal by maximum likelihood from ``exact`` values and censored ones
    known only to lie in ``[lower, upper]`` (−inf/inf for an open side), and the variance of
    the mean from the observed information (numerical Hessian of the log-likelihood in
    (μ, log σ) at the maximum; the μ element of its inverse does not depend on how σ is
    parametrised). Raises ValueError when the likelihood has no interior maximum."""
    exact, lower, upper = (np.asarray(a, dtype=float) for a in (exact, lower, upper))
    if np.unique(exact).size < 2:
        raise ValueError("fewer than two distinct exact values: the SD is not identified")
    if np.any(~(lower < upper)):
        raise ValueError("a censored value has lower >= upper")

    def negative_loglik(params: np.ndarray) -> np.ndarray:
        return -_censored_loglik(params[0], np.exp(params[1]), exact, lower, upper)

    start = np.array([exact.mean(), math.log(exact.std(ddof=1))])
    fit = optimize.minimize(negative_loglik, start, method="BFGS", options={"gtol": 1e-9})
    if not np.all(np.isfinite(fit.x)) or np.max(np.abs(fit.jac)) > 1e-4:
        raise ValueError(f"the likelihood maximisation did not converge ({fit.message})")
    hessian = differentiate.hessian(negative_loglik, fit.x, initial_step=0.1)
    information = np.asarray(hessian.ddf, dtype=float)
    if not np.all(np.isfinite(information)) or np.any(np.linalg.eigvalsh(information) <= 0):
        raise ValueError("the observed information is not positive definite")
    var_mean = float(np.linalg.inv(information)[0, 0])
    return CensoredFit(float(fit.x[0]), float(np.exp(fit.x[1])), var_mean, len(exact) + len(lower))


def _censored_loglik(mu, sigma, exact, lower, upper):
    """Σ log φ for exact values + Σ log P(lower < X < upper) for censored ones; ``mu`` and
    ``sigma`` may carry trailing axes (scipy.differentiate evaluates several points at once)."""
    mu, sigma = np.asarray(mu)[..., None], np.asarray(sigma)[..., None]
    total = stats.norm.logpdf(exact, mu, sigma).sum(axis=-1)
    if lower.size:
        a, b = (lower - mu) / sigma, (upper - mu) / sigma
        # log(Φ(b) − Φ(a)) on the side of the smaller tail, so that no tail underflows
        upper_side = a > -b
        log_big = np.where(upper_side, special.log_ndtr(-a), special.log_ndtr(b))
        log_small = np.where(upper_side, special.log_ndtr(-b), special.log_ndtr(a))
        total = total + (log_big + np.log1p(-np.exp(log_small - log_big))).sum(axis=-1)
    return total


def _case_estimates(changes: pd.DataFrame) -> pd.DataFrame:
    rows = changes.assign(lower=changes["change_lower"], upper=changes["change_upper"])
    rows["exact"] = rows["censoring"].eq("none") & np.isfinite(rows["change"])
    rows["bounded"] = ~rows["exact"] & (np.isfinite(rows["lower"]) | np.isfinite(rows["upper"]))
    records = [
        _case_record(keys, group) | {"synthetic": bool(group["synthetic"].any())}
        for keys, group in rows.groupby(STUDY_KEYS, sort=True)
    ]
    return pd.DataFrame(records, columns=[*tables.PER_STUDY.columns, "s2"])


def _case_record(keys: tuple, group: pd.DataFrame) -> dict:
    """A study's mean change: the sample mean without censoring, the censored-normal ML
    estimate with it; ``s2`` (the within-study variance of patients' changes, for σ̂²) beside."""
    exact = group.loc[group["exact"], "change"].to_numpy(dtype=float)
    censored = group[group["bounded"]]
    notes = []
    unusable = int((~group["exact"] & ~group["bounded"]).sum())
    if unusable:
        notes.append(f"{unusable} patient(s) with neither a change nor a bound: left out")
    base = {**dict(zip(STUDY_KEYS, keys)), "source": "cases", "shift": 0.0}
    if censored.empty:
        return base | _mean_record(exact, notes)
    n = len(exact) + len(censored)
    try:
        fit = censored_normal_fit(exact, censored["lower"].to_numpy(float), censored["upper"].to_numpy(float))
    except ValueError as error:
        notes.append(f"{len(censored)} censored and {len(exact)} exact patient(s): no censored-normal "
                     f"estimate ({error}); not poolable")
        return base | {"yi": np.nan, "vi": np.nan, "n": n, "method": "cases_censored_ml",
                       "note": "; ".join(notes), "s2": np.nan}
    correction = n / (n - 1)
    notes.append(f"{len(censored)} censored patient(s) entered by their bounds (censored-normal "
                 f"maximum likelihood, variance from the observed information × n/(n − 1))")
    return base | {"yi": fit.mean, "vi": fit.var_mean * correction, "n": n,
                   "method": "cases_censored_ml", "note": "; ".join(notes),
                   "s2": fit.sd**2 * correction}


def _mean_record(values: np.ndarray, notes: list[str]) -> dict:
    n = len(values)
    yi = float(values.mean()) if n else np.nan
    s2 = float(values.var(ddof=1)) if n >= 2 else np.nan
    vi = s2 / n if n >= 2 else np.nan
    if n < 2:
        notes.append(f"{n} patient(s): no within-study variance")
    elif vi == 0:
        vi = s2 = np.nan
        notes.append("all patients have the same change: variance zero, not poolable")
    return {"yi": yi, "vi": vi, "n": n, "method": "cases_mean", "note": "; ".join(notes), "s2": s2}


def within_study_variance(cases: pd.DataFrame) -> dict[str, float]:
    """σ̂² per marker: the within-study variances of patients' changes (``s2``: s², or the
    censored-normal ML σ̂² × n/(n − 1)) pooled over studies, interventions and populations with
    weights n − 1, the plug-in for the model's σ[marker]² (one σ per marker there too)."""
    usable = cases[np.isfinite(cases["s2"].astype(float)) & (cases["n"].astype(float) >= 2)]
    dof = usable["n"].astype(float) - 1
    weighted = (dof * usable["s2"].astype(float)).groupby(usable["marker"]).sum()
    return (weighted / dof.groupby(usable["marker"]).sum()).to_dict()


# --- stage 1: summary comparisons -----------------------------------------------------------


def _summary_estimates(aggregate: pd.DataFrame, sigma2: dict[str, float]) -> pd.DataFrame:
    rows = aggregate.reset_index(drop=True)
    records = [
        _summary_record(row, printed, sigma2) for (_, row), printed in zip(rows.iterrows(), rows["mean_shift"])
    ]
    return pd.DataFrame(records, columns=tables.PER_STUDY.columns)


def _summary_record(row: pd.Series, printed_shift: float, sigma2: dict[str, float]) -> dict:
    y, weight = float(row["y"]), float(row["mean_weight"])
    se = row["se_known"]
    method = row["method"]
    notes = []
    if weight == 0:
        shift = 0.0
    elif np.isfinite(printed_shift):
        shift = float(printed_shift)
        notes.append(f"shifted by mean_weight {weight:g} × the row's own (s_post² − s_pre²)/2")
        tables = cv_shift.observation_tables(row)
        if tables is not None:
            shift += _cv_shift_correction(row, tables[0], sigma2, notes)
    elif np.isfinite(sigma2.get(row["marker"], np.nan)):
        shift = sigma2[row["marker"]] / 2
        notes.append(f"shifted by mean_weight {weight:g} × σ̂²/2 = {shift:.3g} (σ̂² from the case data)"
                     f"; {BASELINE_BIAS_NOTE}")
    else:
        shift = np.nan
        notes.append(f"ratio of means (mean_weight {weight:g}) {UNSHIFTED_NOTE}")
    known = np.isfinite(se) and se > 0
    if known:
        vi = float(se) ** 2 * _reported_se_inflation(method, row["n_effective"], notes)
        vi += weight * (1 - weight) * shift**2 if np.isfinite(shift) else 0.0
        if method == P_VALUE_EXACT:
            notes.append(P_VALUE_NOTE)
    else:
        vi = np.nan
        notes.append(NOT_KNOWN.get(method, RHO_NOTE if method.startswith(("sd_", "iqr", "range"))
                                   else "no known standard error: only the Bayesian model can use it"))
    return {
        **{key: row[key] for key in STUDY_KEYS},
        "yi": y - weight * shift if np.isfinite(shift) else y,
        "vi": vi, "n": row["n"], "source": "summary",
        "method": method, "shift": weight * shift if np.isfinite(shift) else np.nan,
        "synthetic": bool(row["synthetic"]), "note": "; ".join(notes),
    }


def _reported_se_inflation(method: str, n: float, notes: list[str]) -> float:
    """The model's κ(n) of a change printed with its SE (crsmeta.mean_spread.reported_se_inflation),
    1 for other rows; noted where it applies."""
    if method != SE_REPORTED:
        return 1.0
    inflation = float(mean_spread.reported_se_inflation(n))
    notes.append(f"SE² × {inflation:.3g} = (t quantile of its n − 1 df / 1.96)², as in the model")
    return inflation


def _cv_shift_correction(row: pd.Series, table: np.ndarray, sigma2: dict[str, float], notes: list[str]) -> float:
    """What a shift from the row's own CVs falls short by in a sample of its n (``table``, over
    crsmeta.cv_shift.SIGMA_GRID), at σ̂ as the model takes it at σ[marker]; 0, with a note, where
    no case data give σ̂."""
    if not np.isfinite(sigma2.get(row["marker"], np.nan)):
        notes.append("its small-sample correction not applied: no case data give σ̂ (the model applies it at σ)")
        return 0.0
    sigma_hat = math.sqrt(sigma2[row["marker"]])
    correction = float(np.interp(sigma_hat, cv_shift.SIGMA_GRID, table))
    notes.append(f"plus its small-sample correction at σ̂ = {sigma_hat:.3g}, {correction:+.3g}")
    return correction


def _mark_pooled(frame: pd.DataFrame) -> pd.DataFrame:
    """Pool one usable estimate per study, intervention and marker (cases before summaries)."""
    usable = frame["vi"] > 0
    first = ~frame[usable].duplicated(["study_id", *POOL_KEYS], keep="first")
    pooled = pd.Series(False, index=frame.index)
    pooled[first.index] = first
    duplicate = usable & ~pooled
    note = [
        "; ".join(filter(None, [text, DUPLICATE_NOTE])) if again else text
        for text, again in zip(frame["note"], duplicate)
    ]
    return frame.assign(pooled=pooled, note=note)
