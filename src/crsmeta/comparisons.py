"""Harmonised summary rows → one comparison per arm and marker (a before/after pair or a printed
change): the summary half of the changes stage, as ``crsmeta.changes`` is its case half.

Which rows are compared follows the same rule as a patient's change (config ``changes``,
:func:`crsmeta.changes.post_rule`): the pre summary is the latest one before the intervention,
the post summary (or the printed change) the one the rule chooses within the window; every row
left out goes to the audit with the reason. A printed change of an arm is used before a pre/post
pair of the same arm (both describe the same patients' change).

Every comparison carries what the likelihood needs to weight it (docs/model.md, "Summary-level
likelihood"):

    se² = efficiency · (d_pre² + d_post² − 2r·d_pre·d_post) / n + extra_var

(r = ρ for means, (2/π)·arcsin ρ for medians: crsmeta.model.build.summary_change_variance)

with ``d`` the dispersion on the effect scale (coefficient of variation ≈ SD of the log for
markers, SD in °C for temperature). ``method`` records which route each row took:

- ``se_reported`` / ``ci_reported``: a reported change with its SE or CI → ``se_known``;
- ``sd_reported``: SD or SE printed for both (or one) side(s) → ``disp_pre``/``disp_post``, ρ prior;
- ``iqr_log`` / ``range_log``: medians with IQR/range → dispersion of the log (log-normal quantiles,
  Wan et al. 2014 denominators) with the median's efficiency π/2; ``iqr`` / ``range`` for
  temperature (Wan et al. on the °C scale);
- ``p_value_exact``: se = |y| / t⁻¹_{n−1}(1 − p/2) (paired t test assumed) → ``se_known``; the
  model uses it as the prior mean of a learned se² (a raw-scale test's P value does not pin the
  SE of a log ratio);
- ``p_value_bound``: p printed as ``<`` → ``se_upper``, as ``>`` → ``se_lower``; the dispersion is
  learned from the data within that bound. A bound of two levels (or of a % change) of a marker
  bounds nothing on the log scale: ``dispersion_from_data``, flagged ``p_above_not_a_floor`` or
  ``p_below_not_a_ceiling``;
- ``dispersion_from_data``: nothing printed → the dispersion is learned from the data.

Rows that cannot enter are returned in an audit frame with the reason; none is dropped silently.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from crsmeta import tables
from crsmeta.changes import Pairing, PostRule, choose_post, choose_pre, post_rule
from crsmeta.cv_shift import SHIFT_FROM_CVS_FLAG
from crsmeta.vocabulary import ChangeScale, change_scale

MEDIAN_EFFICIENCY = math.pi / 2
# A "p > x" or "p < x" printed with two levels (or a % change) of a log-ratio marker: no floor, or
# no ceiling, on the log ratio's SE (the P value tests the levels).
P_ABOVE_NOT_A_FLOOR_FLAG = "p_above_not_a_floor"
P_BELOW_NOT_A_CEILING_FLAG = "p_below_not_a_ceiling"
# Probability that a level is an arithmetic mean, by printed statistic: a log ratio of arithmetic
# means of log-normal levels estimates θ + σ²/2 (build.py adds mean_weight · σ[marker]²/2).
MEAN_WEIGHT = {"mean": 1.0, "median": 0.0}
NOT_STATED_MEAN_WEIGHT = 0.5
Z95 = float(stats.norm.ppf(0.975))
SE_REPORTED = "se_reported"  # the method of a reported change printed with its SE

PAIR_KEYS = ["study_id", "arm", "intervention", "marker", "co_interventions"]
PRINTED_CHANGE_USED = ("the arm's printed change entered instead: a pre/post pair and a printed change of the "
                       "same arm and marker describe the same patients (one observation per arm and marker)")
# A row flagged n_is_cohort_total prints the cohort's size, not how many had the value measured:
# that number m is taken as uniform between this fraction of n and n (config
# changes.cohort_total_min_fraction), and the row's variance divides by n_effective = 1/E[1/m].
DEFAULT_COHORT_TOTAL_MIN_FRACTION = 0.5
COHORT_TOTAL_FLAG = "n_is_cohort_total"


def summary_comparisons(
    summaries: pd.DataFrame, rule: PostRule | None = None,
    cohort_total_min_fraction: float = DEFAULT_COHORT_TOTAL_MIN_FRACTION,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One comparison per arm and marker (:data:`crsmeta.tables.OBSERVATIONS`), and the audit of
    the summary rows that make none (:data:`crsmeta.tables.SUMMARY_AUDIT`); ``rule`` chooses the
    post value and the printed change (the config's defaults when None);
    ``cohort_total_min_fraction`` is the least share of a cohort total taken to have been measured
    (:func:`effective_n`). ``summaries`` are typed as :data:`crsmeta.tables.HARMONISED_SUMMARIES`
    (as ``tables.read`` gives them)."""
    tables.check(tables.HARMONISED_SUMMARIES, summaries)
    rule = rule or post_rule()
    if not 0 < cohort_total_min_fraction <= 1:
        raise ValueError(f"changes.cohort_total_min_fraction must lie in (0, 1], not {cohort_total_min_fraction}")
    rows = summaries
    observations: list[dict] = []
    audit: list[dict] = []
    unusable = rows["n"].isna()
    for _, row in rows[unusable].iterrows():
        audit.append(_audit(row, "n not reported: the row cannot be weighted"))
    rows = rows[~unusable]
    log_ratio = rows["marker"].map(change_scale) == ChangeScale.LOG_RATIO
    nonpositive = log_ratio & (rows["timepoint"] != "change") & ~(rows["value"] > 0)
    for _, row in rows[nonpositive].iterrows():
        audit.append(_audit(row, "value missing or not positive: no log ratio"))
    rows = rows[~nonpositive]
    timed = rows["timepoint"].isin(["pre", "post", "change"])
    for _, row in rows[~timed].iterrows():
        audit.append(_audit(row, f"timepoint {row['timepoint']!r} is not pre, post or change"))
    for _, group in rows[timed].groupby(PAIR_KEYS, sort=True, dropna=False):
        result = _arm_comparison(group, rule, cohort_total_min_fraction)
        if result.change is not None:
            observations.append(result.change)
        audit.extend(_audit(row, reason) for row, reason in result.left_out)
    return tables.frame(tables.OBSERVATIONS, observations), tables.frame(tables.SUMMARY_AUDIT, audit)


def _arm_comparison(group: pd.DataFrame, rule: PostRule, min_fraction: float) -> Pairing:
    """One arm and marker: its printed change if the rule chooses one that can enter (the other
    rows then describe the same patients), else its pre/post pair."""
    result = Pairing()
    effects = group[group["timepoint"] == "change"]
    levels = group[group["timepoint"].isin(["pre", "post"])]
    if not effects.empty:
        chosen = choose_post(effects, rule, result, kind="printed change")
        observation = None if chosen is None else _effect_observation(chosen, min_fraction)
        if isinstance(observation, str):
            result.leave_out([chosen], observation)
        elif observation is not None:
            result.change = observation
            result.leave_out(levels, PRINTED_CHANGE_USED)
            return result
    pre = choose_pre(levels[levels["timepoint"] == "pre"], result)
    post_rows = levels[levels["timepoint"] == "post"]
    post = choose_post(post_rows, rule, result, kind="post")
    if pre is not None and post is not None:
        result.change = _pair_observation(pre, post, min_fraction)
    elif post is not None:
        result.leave_out([post], "no pre summary to pair with (same study, arm, intervention, marker)")
    elif pre is not None:
        reason = ("no post summary to pair with (same study, arm, intervention, marker)" if post_rows.empty
                  else f"no post summary chosen within the window ({rule.describe()})")
        result.leave_out([pre], reason)
    return result


def effective_n(n: float, cohort_total: bool, min_fraction: float = DEFAULT_COHORT_TOTAL_MIN_FRACTION) -> float:
    """The n a row's variance divides by: n itself, or for a cohort total 1/E[1/m] with the number
    measured m uniform on ⌈min_fraction·n⌉, …, n. A mean of m values has variance σ²/m, so over
    the unknown m its variance is σ²·E[1/m] (docs/model.md; Monte Carlo check in the tests)."""
    if not cohort_total:
        return float(n)
    measured = np.arange(max(1, math.ceil(min_fraction * n - 1e-9)), int(n) + 1, dtype=float)
    return float(1.0 / np.mean(1.0 / measured))


def se_from_p_value(y: float, p: float, n: float) -> float:
    """SE of a paired mean difference from its two-sided P value (paired t test, n − 1 df).

    The critical value is the upper tail's inverse (``isf``) at p/2: ``ppf(1 − p/2)`` loses the
    P value's digits, and below p ≈ 2e-16 reads 1 − p/2 as 1, an infinite t and an SE of 0, which
    made such a row exact and left its θ cell a funnel in τ (docs/validation.md)."""
    return abs(y) / float(stats.t.isf(p / 2, df=max(n - 1, 1)))


def se_from_ci(low: float, high: float, level: float = 0.95) -> float:
    """SE from a symmetric confidence interval on the effect scale."""
    return (high - low) / (2 * float(stats.norm.ppf(0.5 + level / 2)))


def log_sd_from_quantiles(low: float, high: float, n: float, spread_type: str) -> float:
    """SD of the log from an IQR or range, treating the marker as log-normal.

    The denominators are those of Wan et al. (2014, BMC Med Res Methodol 14:135) applied to
    log-transformed quantiles: 2Φ⁻¹((0.75n − 0.125)/(n + 0.25)) for an IQR and
    2Φ⁻¹((n − 0.375)/(n + 0.25)) for a range.
    """
    return (math.log(high) - math.log(low)) / wan_denominator(n, spread_type)


def sd_from_quantiles(low: float, high: float, n: float, spread_type: str) -> float:
    """SD from an IQR or range on the natural scale (Wan et al. 2014), for temperature."""
    return (high - low) / wan_denominator(n, spread_type)


def wan_denominator(n: float, spread_type: str) -> float:
    """Wan et al.'s (2014) expected width, in SDs, of a normal sample's IQR or range of n."""
    if spread_type == "iqr":
        return 2 * float(stats.norm.ppf((0.75 * n - 0.125) / (n + 0.25)))
    return 2 * float(stats.norm.ppf((n - 0.375) / (n + 0.25)))


def _base(row: pd.Series, rows: list[pd.Series], min_fraction: float) -> dict:
    """What every comparison carries; ``n_effective`` stands for the number measured wherever a
    conversion needs it (SE to SD, quantiles to SD, a P value's degrees of freedom)."""
    flags = sorted({flag for r in rows for flag in r["flags"].split(";") if flag})
    n = float(min(r["n"] for r in rows))
    return {
        "study_id": row["study_id"], "arm": row["arm"], "population": row["population"],
        "intervention": row["intervention"], "co_interventions": row["co_interventions"],
        "marker": row["marker"],
        "n": n, "n_effective": effective_n(n, COHORT_TOTAL_FLAG in flags, min_fraction),
        "pre_value": np.nan, "se_known": np.nan, "disp_pre": np.nan, "disp_post": np.nan, "mean_shift": np.nan,
        "se_upper": np.inf, "se_lower": 0.0,
        "efficiency": _efficiency(rows, flags), "extra_var": 0.0,
        "mean_weight": _mean_weight(rows),
        "source_rows": ";".join(f"{r['source_file']}:{r['source_row']}" for r in rows),
        "digitised": any(r["digitised"] for r in rows),
        "synthetic": any(r["synthetic"] for r in rows),
        "flags": flags,
    }


def _efficiency(rows: list[pd.Series], flags: list[str]) -> float:
    """1 for means; π/2 for medians and for an unstated statistic (it may be a median)."""
    statistics = {r["statistic"] for r in rows}
    if "not_stated" in statistics:
        flags.append("statistic_not_stated")
    if statistics - {"mean"}:
        return MEDIAN_EFFICIENCY
    return 1.0


def _mean_weight(rows: list[pd.Series]) -> float:
    """How much of σ²/2 a log ratio of these levels carries: 1 for means, 0 for medians, 0.5
    for an unstated statistic (mean or median, equally likely); 0 for temperature (a difference
    of means is unbiased) and for reported mean log ratios (set by the caller)."""
    if any(change_scale(r["marker"]) is ChangeScale.DIFFERENCE for r in rows):
        return 0.0
    return float(np.mean([MEAN_WEIGHT.get(r["statistic"], NOT_STATED_MEAN_WEIGHT) for r in rows]))


def _effect_observation(row: pd.Series, min_fraction: float) -> dict | str:
    if row["effect_type"] not in ("log_ratio", "difference"):
        return f"effect type {row['effect_type']!r} is not a before/after change (not modelled)"
    if not np.isfinite(row["estimate"]):
        return "reported change without an estimate"
    obs = _base(row, [row], min_fraction) | {"y": float(row["estimate"]), "kind": "effect"}
    if row["source_effect_type"] == "percent_change":
        obs["flags"].append("percent_change")
    else:  # a mean log ratio (or °C difference) is the model's θ scale itself
        obs["mean_weight"] = 0.0
    if np.isfinite(row["se"]):
        obs |= {"se_known": float(row["se"]), "method": SE_REPORTED}
    elif np.isfinite(row["ci_low"]) and np.isfinite(row["ci_high"]):
        obs |= {"se_known": se_from_ci(row["ci_low"], row["ci_high"]), "method": "ci_reported"}
    else:  # a % change of means, like two levels, has its P value from a test of the levels
        _dispersion_from_p_or_data(obs, [row], bound_applies=row["source_effect_type"] != "percent_change")
    return _finish(obs)


def _pair_observation(pre: pd.Series, post: pd.Series, min_fraction: float) -> dict:
    difference = change_scale(post["marker"]) is ChangeScale.DIFFERENCE
    y = post["value"] - pre["value"] if difference else math.log(post["value"] / pre["value"])
    obs = _base(post, [pre, post], min_fraction) | {"y": float(y), "kind": "pre_post", "pre_value": float(pre["value"])}
    if pre["statistic"] != post["statistic"]:
        obs["flags"].append("statistic_mismatch")
    d_pre, d_post = (_dispersion(r, obs["n_effective"], difference) for r in (pre, post))
    known = [d for d in (d_pre, d_post) if d is not None]
    if known:
        spread_type = post["spread_type"] if d_post is not None else pre["spread_type"]
        method = {"iqr": "iqr", "range": "range"}.get(spread_type, "sd_reported")
        if method != "sd_reported" and not difference:
            method += "_log"
        if len(known) == 1:
            obs["flags"].append("dispersion_one_side")
        obs |= {"disp_pre": known[0] if d_pre is None else d_pre,
                "disp_post": known[-1] if d_post is None else d_post, "method": method}
        if not difference and len(known) == 2:
            obs["mean_shift"] = mean_shift(*(_log_sd(r, d) for r, d in ((pre, d_pre), (post, d_post))))
            if {pre["spread_type"], post["spread_type"]} <= {"sd", "se"}:
                obs["flags"].append(SHIFT_FROM_CVS_FLAG)
    else:
        _dispersion_from_p_or_data(obs, [post, pre], bound_applies=difference)
    return _finish(obs)


def mean_shift(log_sd_pre: float, log_sd_post: float) -> float:
    """log(mean post / mean pre) − (mean log post − mean log pre) for log-normal levels:
    (s_post² − s_pre²)/2 with s the SD of the log. What a log ratio of arithmetic means adds to
    the mean log ratio θ, from the row's own dispersions instead of the model's σ[marker]²/2."""
    return (log_sd_post**2 - log_sd_pre**2) / 2


def _log_sd(row: pd.Series, dispersion: float) -> float:
    """The SD of the log of a level: from its CV by the log-normal moments, √log(1 + CV²)
    (Higgins et al. 2008), where an SD or SE was printed; the dispersion itself where it came
    from quantiles (already the log's)."""
    if row["spread_type"] in ("sd", "se"):
        return math.sqrt(math.log1p(dispersion**2))
    return dispersion


def _dispersion(row: pd.Series, n: float, difference: bool) -> float | None:
    """Dispersion on the effect scale (``difference``: the raw one, else the log's) from a printed
    spread, or None when none was printed."""
    kind = row["spread_type"]
    if kind in ("sd", "se") and np.isfinite(row["spread"]):
        sd = row["spread"] * (math.sqrt(n) if kind == "se" else 1.0)
        return float(sd if difference else sd / row["value"])
    if kind in ("iqr", "range") and np.isfinite(row["spread_low"]) and np.isfinite(row["spread_high"]):
        if difference:
            return sd_from_quantiles(row["spread_low"], row["spread_high"], n, kind)
        if row["spread_low"] > 0:
            return log_sd_from_quantiles(row["spread_low"], row["spread_high"], n, kind)
    return None


def _dispersion_from_p_or_data(obs: dict, rows: list[pd.Series], *, bound_applies: bool) -> None:
    """The route of a row with no printed spread: its P value's SE, or a bound on it, else none.

    ``bound_applies``: whether a P value printed as a bound bounds the SE of ``y``. It does not
    for a log ratio of two printed levels (or their % change): their P value comes from a test of
    the levels (a raw-scale paired t or Wilcoxon test), not of the log ratio. On skewed levels a
    non-significant raw test says little about the log ratio's SE (no floor), and a significant
    one does not cap it either: in the simulator the log ratio's sampling SD exceeds the ceiling
    a ``p < x`` implies in a quarter of such rows (validation/p_bound_scale.py), and held as a
    ceiling it pulled σ down and θ up in the route SBC (docs/model.md, docs/validation.md). An
    exact P value only sets the prior mean of a learned se² (crsmeta.model.build), so it is kept.
    """
    with_p = [r for r in rows if np.isfinite(r["p_value"]) and r["p_relation"] in ("=", "<", ">")]
    if not with_p or obs["y"] == 0:
        obs["method"] = "dispersion_from_data"
        return
    row = with_p[0]
    if not 0 < row["p_value"] < 1:  # e.g. a printed "1": no information on the SE
        obs["method"] = "dispersion_from_data"
        obs["flags"].append("p_value_uninformative")
        return
    bound = se_from_p_value(obs["y"], row["p_value"], obs["n_effective"])
    if row["p_relation"] == "=":
        obs |= {"se_known": bound, "method": "p_value_exact"}
    elif not bound_applies:
        obs["method"] = "dispersion_from_data"
        obs["flags"].append(P_BELOW_NOT_A_CEILING_FLAG if row["p_relation"] == "<" else P_ABOVE_NOT_A_FLOOR_FLAG)
    elif row["p_relation"] == "<":  # |t| above the critical value: se below the bound
        obs |= {"se_upper": bound, "method": "p_value_bound"}
    else:  # "p > x": |t| below it, se above the bound
        obs |= {"se_lower": bound, "method": "p_value_bound"}


def _finish(obs: dict) -> dict:
    obs["flags"] = ";".join(sorted(set(obs["flags"])))
    return obs


def _audit(row: pd.Series, reason: str) -> dict:
    """The summary row's audit record (its ``source_row`` as text, as the audit keeps it)."""
    return ({column: row[column] for column in tables.SUMMARY_AUDIT.columns[:-1]}
            | {"source_row": str(row["source_row"]), "reason": reason})
