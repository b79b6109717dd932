"""A fit short only of ESS extends its draws (same seed, doubled with its tuning, up to a cap) before the gate
judges it; divergences and chains that disagree are never answered with more draws. No NUTS
here: the sampler is faked and the diagnostics are made up from the number of draws."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from crsmeta import tables
from crsmeta.comparisons import summary_comparisons
from crsmeta.model import ConvergenceError, ModelSettings, enforce_gate, fit_analysis, judge
from crsmeta.model import extend
from crsmeta.model.diagnostics import COLUMNS, FAILED, FIT_COLUMNS, OFF, PASSED, diagnostics_table
from typed_tables import typed_changes, typed_summaries


@pytest.fixture
def tiny_changes(tiny_changes: pd.DataFrame) -> pd.DataFrame:
    """conftest's changes typed by their contract, as the model reads them."""
    return typed_changes(tiny_changes)


@pytest.fixture
def tiny_summaries(tiny_summaries: pd.DataFrame) -> pd.DataFrame:
    """conftest's summaries typed by their contract, as the changes stage reads them."""
    return typed_summaries(tiny_summaries)


SETTINGS = ModelSettings(chains=2, draws=100, ess_min=400, max_draws_factor=4, prior_draws=20)


def _table(ess: float, *, r_hat: float = 1.0, divergences: int = 0, bfmi: float = 1.0) -> pd.DataFrame:
    """A diagnostics table of two parameters and two chains with the given worst values."""
    return tables.frame(tables.SAMPLER_DIAGNOSTICS, pd.DataFrame({
        "analysis": "main", "kind": ["parameter", "parameter", "chain", "chain"],
        "parameter": ["mu", "tau[IL-6]", "sampler", "sampler"], "chain": [pd.NA, pd.NA, 0, 1],
        "r_hat": [1.0, r_hat, np.nan, np.nan], "ess_bulk": [5000, ess, np.nan, np.nan],
        "ess_tail": [5000, ess, np.nan, np.nan], "divergences": [pd.NA, pd.NA, 0, divergences],
        "bfmi": [np.nan, np.nan, 1.0, bfmi],
    }))


@pytest.mark.parametrize(("table", "draws", "expected"), [
    (_table(ess=200), 100, 200),  # only ESS short: doubled
    (_table(ess=900, r_hat=1.03), 100, 200),  # R-hat slightly over: chains not yet mixed
    (_table(ess=200), 300, 400),  # doubling would pass the cap: the cap
    (_table(ess=200), 400, None),  # at the cap
    (_table(ess=900), 100, None),  # passes
    (_table(ess=200, divergences=1), 100, None),  # divergences are never answered with draws
    (_table(ess=200, r_hat=1.2), 100, None),  # chains that disagree
    (_table(ess=200, bfmi=0.1), 100, None),  # poor energy exploration
])
def test_more_draws_only_where_they_can_pass_the_gate(table, draws, expected):
    assert extend.next_draws(table, SETTINGS, draws) == expected


def test_nothing_is_extended_with_the_gate_off():
    assert extend.next_draws(_table(ess=200), SETTINGS.replace(gate=False), 100) is None


def _fake_sampling(monkeypatch, ess_per_draw: float, divergences: int = 0) -> tuple[list[ModelSettings], Callable]:
    """The sampler returns its draws per chain; the diagnostics' ESS grows with them."""
    calls: list[ModelSettings] = []
    monkeypatch.setattr(extend, "diagnostics_table",
                        lambda draws, analysis: _table(ess=ess_per_draw * draws, divergences=divergences))

    def sample(settings: ModelSettings) -> int:
        calls.append(settings)
        return settings.draws

    return calls, sample


def test_a_fit_short_of_ess_is_resampled_with_doubled_draws_and_tuning_and_the_same_seed(monkeypatch, caplog):
    calls, sample = _fake_sampling(monkeypatch, ess_per_draw=2)  # 2 chains of independent draws
    with caplog.at_level(logging.INFO, logger="crsmeta.model.extend"):
        draws, diagnostics = extend.sample_extending(sample, SETTINGS, "main")
    assert [call.draws for call in calls] == [100, 200] and draws == 200
    assert {call.seed for call in calls} == {SETTINGS.seed}
    assert calls[1] == SETTINGS.replace(draws=200, tune=2 * SETTINGS.tune)  # nothing else changes
    assert "resampling with 200 (cap 400)" in caplog.text
    assert judge(diagnostics, SETTINGS, draws).status == PASSED


def test_extension_stops_at_the_cap_and_the_verdict_says_what_was_tried(monkeypatch):
    calls, sample = _fake_sampling(monkeypatch, ess_per_draw=0.5)
    draws, diagnostics = extend.sample_extending(sample, SETTINGS, "main")
    assert [call.draws for call in calls] == [100, 200, 400]
    assert [call.tune for call in calls] == [SETTINGS.tune, 2 * SETTINGS.tune, 4 * SETTINGS.tune]
    verdict = judge(diagnostics, SETTINGS, draws)
    assert verdict.status == FAILED and verdict.draws == 400
    assert "extended its draws from 100 to 400" in verdict.advice
    assert "target_accept" not in verdict.advice  # no divergences: nothing to say about step sizes


def test_a_divergent_fit_is_sampled_once_and_told_to_look_at_data_and_priors(monkeypatch):
    calls, sample = _fake_sampling(monkeypatch, ess_per_draw=1, divergences=2)
    draws, diagnostics = extend.sample_extending(sample, SETTINGS, "main")
    assert [call.draws for call in calls] == [100]
    verdict = judge(diagnostics, SETTINGS, draws)
    assert "2 divergent transitions (allowed: 0)" in verdict.failures
    assert "never cure" in verdict.advice and "tau_sd" in verdict.advice
    assert "no draws were added" in verdict.advice


def test_with_the_gate_off_failures_are_recorded_but_nothing_fails():
    verdict = judge(_table(ess=200), SETTINGS.replace(gate=False), 100)
    assert verdict.status == OFF and verdict.failures


# --------------------------------------------------------------------------- fit_analysis


@pytest.mark.filterwarnings("ignore:The effect of Potentials:UserWarning")  # predictive draws of mock draws
def test_a_failed_sensitivity_fit_is_written_as_failed_and_a_failed_main_fit_stops(
        mock_sampling, monkeypatch, caplog, tiny_changes, tiny_summaries):
    """Extension and verdict through fit_analysis: ESS stays short up to the cap (made up from
    the number of draws; the draws themselves are the mocked sampler's prior draws)."""

    def short_ess(idata, analysis):
        table = diagnostics_table(idata, analysis)
        parameters = table["kind"] == "parameter"
        table.loc[parameters, ["r_hat", "ess_bulk", "ess_tail"]] = [1.0, idata.posterior.sizes["draw"] / 2, 900]
        return table

    monkeypatch.setattr(extend, "diagnostics_table", short_ess)
    settings = SETTINGS.replace(max_draws_factor=2)  # one extension is enough to show it
    result = fit_analysis(tiny_changes, summary_comparisons(tiny_summaries)[0], settings, analysis="student_t")
    assert [call["draws"] for call in mock_sampling] == [100, 200]
    assert {call["random_seed"] for call in mock_sampling} == {SETTINGS.seed}
    assert result.verdict.status == FAILED and result.idata.posterior.sizes["draw"] == 200
    assert set(result.effects["gate"]) == {FAILED}
    fit_row = result.diagnostics[result.diagnostics["kind"] == "fit"]
    assert list(result.diagnostics.columns) == COLUMNS + FIT_COLUMNS and len(fit_row) == 1
    assert fit_row.iloc[0][["analysis", "draws", "gate"]].tolist() == ["student_t", 200, FAILED]
    assert "ess_bulk < 400" in fit_row.iloc[0]["gate_failures"]

    with caplog.at_level(logging.WARNING, logger="crsmeta.model"):
        enforce_gate(result)  # a sensitivity analysis: written anyway
    assert "does not stop the run" in caplog.text
    with pytest.raises(ConvergenceError) as error:
        enforce_gate(dataclasses.replace(result, analysis="main"))
    message = str(error.value)
    assert "'main'" in message and "extended its draws from 100 to 200" in message
    assert "shows it as failed" in message and "run stops here" in message
