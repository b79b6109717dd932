"""Summary rows → observations: each conversion against a hand-computed number."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import SUMMARY_COLUMNS, summary_row
from crsmeta.changes import post_rule
from crsmeta.comparisons import PRINTED_CHANGE_USED, summary_comparisons
from crsmeta.errors import InputError
from typed_tables import summary_frame


def observations(*rows):
    return summary_comparisons(summary_frame(list(rows), columns=SUMMARY_COLUMNS))


def test_summaries_of_cell_texts_are_refused_not_coerced():
    """The harmonised summaries come typed (tables.read): a frame of cell texts fails at its first
    column of the wrong type instead of being read as numbers."""
    text = pd.DataFrame([summary_row("z", "emapalumab", "IL-10", "pre", value=222.29, n=38),
                         summary_row("z", "emapalumab", "IL-10", "post", value=86.09, n=38)], columns=SUMMARY_COLUMNS)
    with pytest.raises(InputError, match="harmonised summaries"):
        summary_comparisons(text)


def test_exact_p_value_gives_the_paired_t_standard_error():
    obs, audit = observations(
        summary_row("z", "emapalumab", "IL-10", "pre", value=222.29, p_value=0.018, p_relation="=", n=38),
        summary_row("z", "emapalumab", "IL-10", "post", value=86.09, p_value=0.018, p_relation="=", n=38),
    )
    y = math.log(86.09 / 222.29)
    assert audit.empty
    assert obs.loc[0, "y"] == pytest.approx(y)
    assert obs.loc[0, "se_known"] == pytest.approx(abs(y) / stats.t.ppf(1 - 0.009, 37))
    assert obs.loc[0, "method"] == "p_value_exact"


def test_a_tiny_exact_p_value_gives_a_small_standard_error_not_zero():
    """A P value printed in full below 2e-16 (a simulated cohort's 0.000000000000000000032, or a
    paper's 1.3e-18): ``t.ppf(1 − p/2)`` read 1 − p/2 as 1, an infinite t and an SE of 0."""
    obs, _ = observations(
        summary_row("z", "tocilizumab", "ferritin", "pre", value=3000, p_value=3.2e-20, p_relation="=", n=26),
        summary_row("z", "tocilizumab", "ferritin", "post", value=390, p_value=3.2e-20, p_relation="=", n=26),
    )
    y = math.log(390 / 3000)
    assert obs.loc[0, "se_known"] == pytest.approx(abs(y) / stats.t.isf(1.6e-20, 25), rel=1e-12)
    assert 0.05 < obs.loc[0, "se_known"] < 0.1


def test_p_value_inequality_is_an_upper_bound_on_the_standard_error():
    obs, _ = observations(
        summary_row("z", "emapalumab", "temperature", "pre", value=39.61, p_value=0.001, p_relation="<", n=38),
        summary_row("z", "emapalumab", "temperature", "post", value=38.38, p_value=0.001, p_relation="<", n=38),
    )
    assert obs.loc[0, "y"] == pytest.approx(-1.23)
    assert np.isnan(obs.loc[0, "se_known"])
    assert obs.loc[0, "se_upper"] == pytest.approx(1.23 / stats.t.ppf(1 - 0.0005, 37))
    assert obs.loc[0, "method"] == "p_value_bound"


def test_median_with_iqr_uses_log_quantiles_and_the_median_efficiency():
    obs, _ = observations(
        summary_row("h", "hemoadsorption", "IL-6", "pre", value=2269, statistic="median", n=12,
                    spread_type="iqr", spread_low=948, spread_high=3679),
        summary_row("h", "hemoadsorption", "IL-6", "post", value=400, statistic="median", n=12,
                    spread_type="iqr", spread_low=200, spread_high=900),
    )
    denominator = 2 * stats.norm.ppf((0.75 * 12 - 0.125) / (12 + 0.25))
    assert obs.loc[0, "disp_pre"] == pytest.approx(math.log(3679 / 948) / denominator)
    assert obs.loc[0, "disp_post"] == pytest.approx(math.log(900 / 200) / denominator)
    assert obs.loc[0, "efficiency"] == pytest.approx(math.pi / 2)
    assert obs.loc[0, "method"] == "iqr_log"


def test_mean_with_sd_gives_the_coefficient_of_variation():
    obs, _ = observations(
        summary_row("m", "tocilizumab", "CRP", "pre", value=100, spread_type="sd", spread=50, n=10),
        summary_row("m", "tocilizumab", "CRP", "post", value=40, spread_type="se", spread=5, n=10),
    )
    assert obs.loc[0, "disp_pre"] == pytest.approx(0.5)
    assert obs.loc[0, "disp_post"] == pytest.approx(5 * math.sqrt(10) / 40)
    assert obs.loc[0, "method"] == "sd_reported"


def test_reported_effect_with_ci_enters_with_its_standard_error():
    obs, _ = observations(summary_row("c", "hemoadsorption", "IL-6", "change", n=17, effect_type="log_ratio",
                                      estimate=0.30, ci_low=-0.70, ci_high=1.30))
    assert obs.loc[0, "se_known"] == pytest.approx(2.0 / (2 * 1.959964), rel=1e-5)
    assert obs.loc[0, "kind"] == "effect" and obs.loc[0, "method"] == "ci_reported"


def test_percent_change_without_spread_learns_its_dispersion_and_is_flagged():
    obs, _ = observations(summary_row("h", "hemoadsorption", "IL-6", "change", n=12, statistic="not_stated",
                                      effect_type="log_ratio", estimate=math.log(1 - 0.83),
                                      source_effect_type="percent_change"))
    assert obs.loc[0, "y"] == pytest.approx(math.log(0.17))
    assert obs.loc[0, "method"] == "dispersion_from_data"
    assert obs.loc[0, "efficiency"] == pytest.approx(math.pi / 2)
    assert set(obs.loc[0, "flags"].split(";")) >= {"percent_change", "statistic_not_stated"}


def test_missing_n_and_missing_partner_go_to_the_audit_with_reasons():
    obs, audit = observations(
        summary_row("a", "tocilizumab", "IL-6", "pre", value=100, n=""),
        summary_row("a", "tocilizumab", "IL-6", "post", value=50, n=""),
        summary_row("b", "tocilizumab", "IL-6", "pre", value=100, n=5),
    )
    assert obs.empty
    reasons = list(audit["reason"])
    assert reasons.count("n not reported: the row cannot be weighted") == 2
    assert any(reason.startswith("no post summary to pair with") for reason in reasons)


def test_between_arm_effect_is_not_taken_for_a_change():
    obs, audit = observations(summary_row("c", "hemoadsorption", "IL-6", "change", n=17,
                                          effect_type="between_arm_log_ratio", estimate=0.3, se=0.5))
    assert obs.empty and "not a before/after change" in audit.loc[0, "reason"]


@pytest.mark.parametrize("statistic, marker, weight", [
    ("mean", "IL-6", 1.0), ("median", "IL-6", 0.0), ("not_stated", "IL-6", 0.5), ("mean", "temperature", 0.0),
])
def test_mean_weight_says_how_much_of_sigma_squared_over_two_a_log_ratio_carries(statistic, marker, weight):
    obs, _ = observations(
        summary_row("w", "tocilizumab", marker, "pre", value=39.0 if marker == "temperature" else 100,
                    statistic=statistic, n=10),
        summary_row("w", "tocilizumab", marker, "post", value=38.0 if marker == "temperature" else 50,
                    statistic=statistic, n=10),
    )
    assert obs.loc[0, "mean_weight"] == weight


def test_a_reported_mean_log_ratio_is_on_the_model_scale_but_a_percent_change_of_means_is_not():
    log_ratio, percent = (
        observations(summary_row("e", "tocilizumab", "IL-6", "change", n=12, effect_type="log_ratio",
                                 estimate=-0.5, se=0.1, source_effect_type=source))
        [0].loc[0, "mean_weight"] for source in ("log_ratio", "percent_change"))
    assert (log_ratio, percent) == (0.0, 1.0)


def test_a_p_value_of_one_carries_no_standard_error():
    obs, _ = observations(
        summary_row("p", "tocilizumab", "IL-6", "pre", value=100, p_value=1, p_relation="=", n=10),
        summary_row("p", "tocilizumab", "IL-6", "post", value=99, p_value=1, p_relation="=", n=10),
    )
    assert obs.loc[0, "method"] == "dispersion_from_data"
    assert "p_value_uninformative" in obs.loc[0, "flags"]


def test_a_printed_change_and_a_pre_post_pair_of_the_same_arm_enter_once():
    """Both describe the same patients' change: counting both would double their weight."""
    obs, audit = observations(
        summary_row("t", "hemoadsorption", "IL-6", "pre", value=2269, statistic="median", n=12),
        summary_row("t", "hemoadsorption", "IL-6", "post", hours=24, value=400, statistic="median", n=12),
        summary_row("t", "hemoadsorption", "IL-6", "change", hours=24, n=12, effect_type="log_ratio",
                    estimate=math.log(0.17), source_effect_type="percent_change"),
        summary_row("t", "standard_care", "IL-6", "pre", value=3747, statistic="median", n=12),
        summary_row("t", "standard_care", "IL-6", "post", hours=24, value=2000, statistic="median", n=12),
    )
    assert sorted(zip(obs["intervention"], obs["kind"])) == [("hemoadsorption", "effect"), ("standard_care", "pre_post")]
    assert list(audit["reason"]) == [PRINTED_CHANGE_USED] * 2
    assert set(audit["timepoint"]) == {"pre", "post"} and set(audit["intervention"]) == {"hemoadsorption"}


def test_of_several_printed_changes_of_one_arm_the_rule_chooses_one_and_audits_the_rest():
    """closest_to_target 24 h by default: the 24 h change enters, the 72 h one is audited."""
    obs, audit = observations(
        summary_row("t", "tocilizumab", "CRP", "change", hours=72, n=30, effect_type="log_ratio", estimate=-1.0, se=0.2),
        summary_row("t", "tocilizumab", "CRP", "change", hours=24, n=30, effect_type="log_ratio", estimate=-0.5, se=0.2),
    )
    assert list(obs["y"]) == [-0.5]
    assert list(audit["reason"]) == [
        "printed change value outside the selection rule: another printed change value was chosen "
        "(closest_to_target 24 h in 0–168 h)"]


def test_summary_pairs_follow_the_window_and_target_rule_of_case_changes():
    """The post summary closest to 24 h in 0–168 h and the latest pre; the rest audited with why."""
    rows = [
        summary_row("w", "tocilizumab", "IL-6", "pre", hours=-48, value=500, n=10),
        summary_row("w", "tocilizumab", "IL-6", "pre", hours=-2, value=800, n=10),
        summary_row("w", "tocilizumab", "IL-6", "post", hours=6, value=700, n=10),
        summary_row("w", "tocilizumab", "IL-6", "post", hours=30, value=300, n=10),
        summary_row("w", "tocilizumab", "IL-6", "post", hours=336, value=50, n=10),
    ]
    obs, audit = observations(*rows)
    assert obs.loc[0, "y"] == pytest.approx(math.log(300 / 800))
    reasons = sorted(zip(audit["timepoint"], audit["reason"]))
    assert [timepoint for timepoint, _ in reasons] == ["post", "post", "pre"]
    assert "outside the window 0–168 h" in reasons[0][1] + reasons[1][1]
    assert "outside the selection rule" in reasons[0][1] + reasons[1][1]
    assert "superseded" in reasons[2][1]


def test_first_in_window_rule_takes_the_earliest_post_summary():
    obs, _ = summary_comparisons(summary_frame([
        summary_row("w", "tocilizumab", "IL-6", "pre", hours=-2, value=800, n=10),
        summary_row("w", "tocilizumab", "IL-6", "post", hours=6, value=700, n=10),
        summary_row("w", "tocilizumab", "IL-6", "post", hours=30, value=300, n=10),
    ], columns=SUMMARY_COLUMNS), post_rule("first_in_window", (0, 168), None))
    assert obs.loc[0, "y"] == pytest.approx(math.log(700 / 800))


def test_a_pre_summary_whose_only_post_is_outside_the_window_makes_no_comparison():
    obs, audit = observations(
        summary_row("w", "tocilizumab", "IL-6", "pre", hours=0, value=800, n=10),
        summary_row("w", "tocilizumab", "IL-6", "post", hours=336, value=300, n=10),
    )
    assert obs.empty
    assert sorted(audit["reason"]) == [
        "no post summary chosen within the window (closest_to_target 24 h in 0–168 h)",
        "post value outside the window 0–168 h"]


def test_a_p_value_printed_as_greater_than_is_a_lower_bound_on_the_standard_error():
    obs, _ = observations(
        summary_row("z", "tocilizumab", "temperature", "pre", value=39.5, p_value=0.2, p_relation=">", n=12),
        summary_row("z", "tocilizumab", "temperature", "post", value=39.1, p_value=0.2, p_relation=">", n=12),
    )
    assert obs.loc[0, "se_lower"] == pytest.approx(0.4 / stats.t.ppf(1 - 0.1, 11))
    assert obs.loc[0, "se_upper"] == np.inf and obs.loc[0, "method"] == "p_value_bound"
    assert "p_value_lower_bound_unused" not in obs.loc[0, "flags"]


def test_a_reported_log_ratio_with_p_greater_than_keeps_its_floor():
    obs, _ = observations(summary_row("c", "tocilizumab", "IL-6", "change", n=12, effect_type="log_ratio",
                                      estimate=-0.4, p_value=0.2, p_relation=">", source_effect_type="log_ratio"))
    assert obs.loc[0, "se_lower"] == pytest.approx(0.4 / stats.t.ppf(1 - 0.1, 11))
    assert obs.loc[0, "method"] == "p_value_bound"


@pytest.mark.parametrize("relation, p_value, flag", [(">", 0.2, "p_above_not_a_floor"), ("<", 0.01, "p_below_not_a_ceiling")])
@pytest.mark.parametrize("source", ["levels", "percent_change"])
def test_a_p_value_bound_of_a_markers_levels_bounds_nothing_on_its_log_ratio(source, relation, p_value, flag):
    """The P value of two levels (or of their % change) tests the levels, not their log ratio. On
    skewed levels a raw-scale test that misses a fall says little about the log ratio's SE: the
    floor it implied, held against the data, made the p_bound SBC's σ far too high and θ too low.
    A significant one does not cap it either: the log ratio's sampling SD exceeds the implied
    ceiling in a quarter of such simulated rows (validation/p_bound_scale.py), and the ceiling pulled σ down and θ up
    (docs/validation.md). Such a row learns its SE as a row without a P value does."""
    if source == "levels":
        rows = [summary_row("z", "tocilizumab", "IL-6", side, value=value, p_value=p_value, p_relation=relation, n=12)
                for side, value in (("pre", 300), ("post", 150))]
    else:
        rows = [summary_row("c", "tocilizumab", "IL-6", "change", n=12, effect_type="log_ratio",
                            estimate=math.log(150 / 300), p_value=p_value, p_relation=relation,
                            source_effect_type="percent_change")]
    obs, audit = observations(*rows)
    assert audit.empty
    assert obs.loc[0, "method"] == "dispersion_from_data"
    assert obs.loc[0, "se_lower"] == 0.0 and obs.loc[0, "se_upper"] == np.inf
    assert flag in obs.loc[0, "flags"].split(";")


def test_means_with_printed_sds_carry_the_shift_of_their_own_cvs():
    """(s_post² − s_pre²)/2 with s² = log(1 + CV²): none where only one side's SD is printed."""
    both, _ = observations(
        summary_row("m", "tocilizumab", "CRP", "pre", value=100, spread_type="sd", spread=150, n=40),
        summary_row("m", "tocilizumab", "CRP", "post", value=40, spread_type="sd", spread=20, n=40),
    )
    assert both.loc[0, "mean_shift"] == pytest.approx((math.log1p(0.5**2) - math.log1p(1.5**2)) / 2)
    one_side, _ = observations(
        summary_row("m", "tocilizumab", "CRP", "pre", value=100, spread_type="sd", spread=150, n=40),
        summary_row("m", "tocilizumab", "CRP", "post", value=40, n=40),
    )
    assert np.isnan(one_side.loc[0, "mean_shift"])


def test_the_log_ratio_of_sample_means_minus_the_cv_shift_estimates_the_mean_log_ratio():
    """Monte Carlo: log-normal levels whose log-SD differs before and after (a change that
    depends on the baseline), cohorts of 400. The CV-based shift leaves a small bias (sample CVs
    of log-normal levels with a log-SD of 1.4 run low); σ²/2 of the patients' changes
    (σ = 0.6 here) would shift the wrong way, a bias of ~0.8."""
    rng = np.random.default_rng(7)
    theta, s_pre, s_post, n = -1.0, 1.4, 0.8, 400
    estimates, raw = [], []
    for _ in range(100):
        log_pre = 5.0 + s_pre * rng.standard_normal(n)
        log_post = log_pre + theta + (s_post / s_pre - 1.0) * (log_pre - 5.0)
        pre, post = np.exp(log_pre), np.exp(log_post)
        obs, _ = observations(
            summary_row("m", "tocilizumab", "CRP", "pre", value=pre.mean(), spread_type="sd", spread=pre.std(ddof=1), n=n),
            summary_row("m", "tocilizumab", "CRP", "post", value=post.mean(), spread_type="sd", spread=post.std(ddof=1), n=n),
        )
        estimates.append(obs.loc[0, "y"] - obs.loc[0, "mean_shift"])
        raw.append(obs.loc[0, "y"])
    assert np.mean(estimates) == pytest.approx(theta, abs=0.15)
    sigma_route = np.mean(raw) - (s_pre - s_post) ** 2 / 2
    assert abs(sigma_route - theta) > 0.6


# --- n printed as the cohort's total ------------------------------------------------------------


def cohort_rows(flags: str, n: int = 38) -> list[dict]:
    return [summary_row("z", "emapalumab", "IL-2", timepoint, value=value, n=n, flags=flags)
            for timepoint, value in (("pre", 32.35), ("post", 11.94))]


def test_a_cohort_total_weighs_like_the_patients_it_may_have_measured():
    """n = 38 printed as the cohort's size: between 19 and 38 had the value, so the row's variance
    divides by 1/E[1/m] (≈ 27.3), not 38; a row whose n is the number measured keeps it."""
    total, _ = observations(*cohort_rows("n_is_cohort_total"))
    measured, _ = observations(*cohort_rows(""))
    assert total.loc[0, "n"] == measured.loc[0, "n"] == 38
    assert total.loc[0, "n_effective"] == pytest.approx(1 / np.mean(1 / np.arange(19, 39)))
    assert 27 < total.loc[0, "n_effective"] < 28
    assert measured.loc[0, "n_effective"] == 38
    everyone, _ = summary_comparisons(summary_frame(cohort_rows("n_is_cohort_total"), columns=SUMMARY_COLUMNS),
                                      cohort_total_min_fraction=1.0)
    assert everyone.loc[0, "n_effective"] == 38
    with pytest.raises(ValueError, match="cohort_total_min_fraction"):
        summary_comparisons(summary_frame(cohort_rows(""), columns=SUMMARY_COLUMNS), cohort_total_min_fraction=0)


def test_the_variance_of_a_mean_over_an_unknown_number_measured_is_sigma_squared_over_n_effective():
    """Monte Carlo: cohorts of 40 of whom a uniform 20 to 40 had the value; the variance of their
    mean, over cohorts, is σ²/n_effective (within 2%, ~7 Monte Carlo SEs)."""
    from crsmeta.comparisons import effective_n

    rng = np.random.default_rng(7)
    sigma, n, cohorts = 1.3, 40, 100_000
    measured = rng.integers(20, n + 1, size=cohorts)
    values = sigma * rng.standard_normal((cohorts, n))
    means = np.where(np.arange(n) < measured[:, None], values, 0.0).sum(axis=1) / measured
    assert means.var() == pytest.approx(sigma**2 / effective_n(n, cohort_total=True, min_fraction=0.5), rel=0.02)
    assert effective_n(n, cohort_total=False) == n
