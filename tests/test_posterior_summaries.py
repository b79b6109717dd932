"""The fit's τ and superiority tables from SYNTHETIC draws (no sampling): what the report shows of
them is computed here, in the model stage."""

import arviz as az
import numpy as np
import pytest

from crsmeta import tables
from crsmeta.model.posterior_summaries import superiority, tau_summaries
from fixtures.report.build import MARKERS, effects_table, fixture_idata


def test_tau_summaries_are_the_central_95_percent_of_each_groups_draws():
    idata = fixture_idata()
    summary = tau_summaries(idata).set_index(["group", "marker"])
    tables.check(tables.TAU_SUMMARIES, summary.reset_index())
    assert sorted(summary.index) == sorted((group, marker) for group in ("prior", "posterior") for marker in MARKERS)
    for group in ("prior", "posterior"):
        for marker in MARKERS:
            draws = getattr(idata, group)["tau"].sel(marker=marker).to_numpy().ravel()
            row = summary.loc[(group, marker)]
            assert (row["lo"], row["median"], row["hi"]) == pytest.approx(np.quantile(draws, [0.025, 0.5, 0.975]))


def test_tau_summaries_without_prior_draws_have_posterior_rows_only():
    idata = fixture_idata()
    posterior_only = az.InferenceData(posterior=idata.posterior)
    assert set(tau_summaries(posterior_only)["group"]) == {"posterior"}


def test_superiority_probabilities_are_complementary_and_cover_the_estimated_pairs():
    idata = fixture_idata()
    effects = effects_table(idata)
    table = superiority(idata, effects)
    tables.check(tables.SUPERIORITY, table)
    il6 = table[table["marker"] == "IL-6"].set_index(["intervention", "comparator"])["p_lower"]
    names = sorted(effects.loc[effects["marker"] == "IL-6", "intervention"])
    assert sorted(il6.index) == sorted((a, b) for a in names for b in names if a != b)
    for a, b in il6.index:
        assert il6[(a, b)] + il6[(b, a)] == pytest.approx(1.0)
    theta = idata.posterior["theta"].sel(marker="IL-6")
    first, second = names[:2]
    expected = np.mean(theta.sel(intervention=first).to_numpy() < theta.sel(intervention=second).to_numpy())
    assert il6[(first, second)] == expected


def test_superiority_is_empty_without_theta_by_intervention_and_marker():
    idata = az.from_dict(posterior={"effect": np.zeros((2, 10, 3))})
    assert superiority(idata, effects_table(fixture_idata())).empty


def test_tau_summaries_of_an_analysis_keep_only_its_markers_with_rows():
    """A marker another analysis' rows brought into the model (crsmeta.model.data.ModelData) has
    τ's prior alone in an analysis without its rows: not reported there."""
    kept = MARKERS[:1]
    summary = tau_summaries(fixture_idata(), markers=set(kept))
    assert set(summary["marker"]) == set(kept) and set(summary["group"]) == {"prior", "posterior"}
