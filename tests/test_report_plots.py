"""Plot functions draw on the ax they are given and return it, under the Agg backend."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from crsmeta.model.posterior_summaries import superiority, tau_summaries
from crsmeta.report import plots, tables
from fixtures.report.build import effects_table, fixture_idata

# ArviZ 0.23 passes matplotlib 3.11 a deprecated alias mapping on every plot; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Passing a dict or None as alias_mapping")


@pytest.fixture(scope="module")
def idata():
    return fixture_idata()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_backend_is_agg():
    assert matplotlib.get_backend().lower() == "agg"


def test_forest_plot_returns_ax():
    data = pd.DataFrame({
        "label": ["study A", "tocilizumab: pooled"], "intervention": ["tocilizumab"] * 2,
        "kind": ["study", "pooled"], "estimate": [-0.4, -0.3], "lo": [np.nan, -0.6], "hi": [np.nan, 0.1],
        "pred_lo": [np.nan, -1.0], "pred_hi": [np.nan, 0.5],
    })
    _, ax = plt.subplots()
    assert plots.forest_plot(data, ax=ax) is ax
    assert [label.get_text() for label in ax.get_yticklabels()] == ["study A", "tocilizumab: pooled"]


def test_sensitivity_plot_returns_ax(idata):
    effects = effects_table(idata).assign(analysis="main").astype(str)
    _, ax = plt.subplots()
    data = tables.sensitivity_data(effects)
    assert plots.sensitivity_plot(data[data["scale"] == "log_ratio"], ax=ax) is ax


def test_tau_and_superiority_plots_return_ax(idata):
    _, ax = plt.subplots()
    assert plots.tau_prior_posterior_plot(tables.tau_prior_posterior(tau_summaries(idata)), ax=ax) is ax
    matrix = tables.superiority_matrix(superiority(idata, effects_table(idata)), "IL-6")
    _, ax = plt.subplots()
    assert plots.superiority_heatmap(matrix, ax=ax) is ax


def test_arviz_plots_use_given_axes(idata):
    _, ax = plt.subplots()
    assert plots.ppc_plot(idata, "y_case", ax=ax) is ax
    _, axes = plt.subplots(1, 3)
    assert plots.rank_plots(idata, ["tau"], axes=axes).size == 3


def test_watermark_only_when_synthetic():
    figure, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    assert "SYNTHETIC" in plots.figure_svg(figure, name="a", synthetic=True)
    figure, ax = plt.subplots()
    svg = plots.figure_svg(figure, name="b", synthetic=False)
    assert svg.startswith("<svg") and "SYNTHETIC" not in svg
