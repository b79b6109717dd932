"""Statistical validation on SYNTHETIC data: parameter recovery and agreement with REML.

Slow (each test samples a model, 2 chains x 300 draws); together well under 3 minutes on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from crsmeta.model import ModelSettings, fit_analysis
from crsmeta.model.frequentist import random_effects
from crsmeta.model.recovery import truth_coverage
from crsmeta.simulate import SimulationSpec
from crsmeta.simulate.pipeline import run_pipeline
from crsmeta.study_estimates import per_study_estimates

pytestmark = pytest.mark.slow

# gate off: these tests check recovery, not convergence, so a short fit is not extended
FEW_DRAWS = dict(chains=2, draws=300, tune=300, cores=2, prior_draws=20, seed=11, gate=False)

# Case-level design: 20 case series (4-10 patients, all markers), one population, with LOD censoring.
CASE_SPEC = SimulationSpec(
    n_case_reports=0, n_case_series=20, n_cohorts_mean_sd=0, n_cohorts_mean_p=0,
    n_cohorts_median_iqr=0, n_cohorts_pct_change=0, n_trials=0, populations=("car_t_crs",),
    case_series_size=(4, 10), seed=3,
)
# Summary-level design: 15 cohorts of 20-40 patients, each reporting a mean log ratio (or °C
# difference) with its SE for every marker, one intervention: plentiful data per cell.
EFFECT_SPEC = SimulationSpec(
    interventions=("tocilizumab",), markers=("IL-6", "ferritin", "CRP", "temperature"),
    populations=("car_t_crs",), n_case_reports=0, n_case_series=0, n_cohorts_mean_sd=0,
    n_cohorts_mean_p=0, n_cohorts_median_iqr=0, n_cohorts_pct_change=0, n_cohorts_effect_se=15,
    n_trials=0, markers_per_study=(4, 4), cohort_size=(20, 40), seed=5,
)
VAGUE = dict(grand_mean_sd=10.0, intervention_sd=10.0, marker_sd=10.0, interaction_sd=10.0,
             tau_sd=5.0, sigma_sd=5.0, temp_mean_sd=10.0, temp_intervention_sd=10.0, temp_tau_sd=5.0)


def test_case_level_recovery_covers_most_true_effects():
    """True θ inside the central 90% interval for at least 80% of the 35 cells.

    Tolerance: with well-calibrated intervals the number of covered cells is roughly
    Binomial(35, 0.9) (cells are correlated through the pooling, which widens this); 80% is
    3 cells below the expected 31.5, about 1.8 binomial SDs, so a correct model fails this only
    rarely while a biased one (shrinkage to the wrong place, ignored censoring) fails it.
    """
    simulated = run_pipeline(CASE_SPEC)
    assert (simulated.changes["censoring"] != "none").any(), "the design should exercise censoring"
    fit = fit_analysis(simulated.changes, simulated.comparisons, ModelSettings(**FEW_DRAWS), analysis="recovery")
    table = truth_coverage(fit.idata, simulated.truth, fit.data.cells())
    assert len(table) == 35
    assert table["covered"].mean() >= 0.80, table[~table["covered"]].to_string()


def test_pooled_effects_agree_with_reml_under_vague_priors():
    """Reported effects with SEs only: posterior median θ within 0.05 of REML (issue 3)."""
    simulated = run_pipeline(EFFECT_SPEC)
    assert set(simulated.summaries["timepoint"]) == {"change"}
    changes = simulated.changes
    assert changes.empty
    settings = ModelSettings(**FEW_DRAWS, **VAGUE)
    fit = fit_analysis(changes, simulated.comparisons, settings, analysis="reml_check")
    reml = random_effects(per_study_estimates(changes, simulated.comparisons)).set_index(["intervention", "marker"])["reml_estimate"]
    bayes = fit.effects.set_index(["intervention", "marker"])["theta_median"]
    difference = (bayes - reml).dropna()
    assert len(difference) == len(EFFECT_SPEC.markers)
    assert np.abs(difference).max() < 0.05, difference.to_string()
