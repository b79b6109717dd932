"""Report figures. Each function draws on the ``ax`` it is given and returns it; none calls show().

Data come from the tidy frames of :mod:`crsmeta.report.tables`. The Agg backend is selected here so
that the report renders on machines without a display.
"""

from __future__ import annotations

import io
import math
from typing import Any

import matplotlib

matplotlib.use("Agg")

import arviz as az  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from crsmeta.report.tables import HDI_PROB  # noqa: E402

POOLED_COLOUR = "#1f4e79"
STUDY_COLOUR = "#6b6b6b"
PREDICTION_COLOUR = "#9dc3e6"
ANALYSIS_MARKERS = "osD^v<>phX*"
RANK_COLUMNS = 4
RANK_PANEL = (2.8, 2.2)  # inches: four panels a row fill the report's width at about its text size


def percent_axis(ax: Axes, axis: str = "x") -> Axes:
    """Label a log-ratio axis in % change (the data stay on the log scale)."""
    formatter = FuncFormatter(lambda value, _: f"{100 * math.expm1(value):+.0f}%")
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(formatter)
    return ax


def forest_plot(data: pd.DataFrame, *, scale: str = "log_ratio", ax: Axes) -> Axes:
    """Studies' own estimates (grey) and the pooled estimate per intervention (blue diamond, 95% CrI
    as a thick bar, 95% prediction interval for a new study as a thin light bar)."""
    positions = np.arange(len(data))[::-1]
    for y, row in zip(positions, data.to_dict("records")):
        if row["kind"] == "pooled":
            if np.isfinite(row["pred_lo"]) and np.isfinite(row["pred_hi"]):
                ax.hlines(y, row["pred_lo"], row["pred_hi"], color=PREDICTION_COLOUR, linewidth=6, zorder=1)
            ax.hlines(y, row["lo"], row["hi"], color=POOLED_COLOUR, linewidth=2.5, zorder=2)
            ax.plot(row["estimate"], y, marker="D", color=POOLED_COLOUR, markersize=7, zorder=3)
        else:
            if np.isfinite(row["lo"]) and np.isfinite(row["hi"]):
                ax.hlines(y, row["lo"], row["hi"], color=STUDY_COLOUR, linewidth=1.2, zorder=2)
            ax.plot(row["estimate"], y, marker="s", color=STUDY_COLOUR, markersize=4, zorder=3)
    ax.axvline(0.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_yticks(positions, data["label"].tolist())
    for label, kind in zip(ax.get_yticklabels(), data["kind"]):
        label.set_fontweight("bold" if kind == "pooled" else "normal")
    ax.set_ylim(-0.7, len(data) - 0.3)
    if scale == "log_ratio":
        percent_axis(ax)
        ax.set_xlabel("change after the intervention (% of the value before; log scale)")
    else:
        ax.set_xlabel("change after the intervention (°C)")
    ax.grid(axis="x", alpha=0.3)
    return ax


def sensitivity_plot(data: pd.DataFrame, *, scale: str = "log_ratio", ax: Axes) -> Axes:
    """θ with its 95% CrI for every analysis, side by side per intervention × marker cell."""
    cells = list(dict.fromkeys(data.sort_values(["marker", "intervention"])["cell"]))
    analyses = sorted(data["analysis"].unique(), key=lambda name: (name != "main", name))
    offsets = np.linspace(-0.35, 0.35, len(analyses)) if len(analyses) > 1 else np.zeros(1)
    positions = {cell: len(cells) - 1 - i for i, cell in enumerate(cells)}
    for offset, (k, analysis) in zip(offsets, enumerate(analyses)):
        rows = data[data["analysis"] == analysis]
        y = rows["cell"].map(positions) + offset
        colour = POOLED_COLOUR if analysis == "main" else f"C{k % 10}"
        ax.hlines(y, rows["theta_lo95"], rows["theta_hi95"], color=colour, linewidth=1.5 if analysis == "main" else 1)
        ax.plot(rows["theta_median"], y, linestyle="none", marker=ANALYSIS_MARKERS[k % len(ANALYSIS_MARKERS)],
                color=colour, markersize=4, label=analysis)
    ax.axvline(0.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_yticks(list(positions.values()), list(positions.keys()))
    if scale == "log_ratio":
        percent_axis(ax)
        ax.set_xlabel("change (% of the value before; log scale)")
    else:
        ax.set_xlabel("change (°C)")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return ax


def tau_prior_posterior_plot(data: pd.DataFrame, *, ax: Axes) -> Axes:
    """Prior and posterior of τ per marker: median and central 95% interval of each."""
    markers = list(dict.fromkeys(data["marker"]))
    positions = {marker: len(markers) - 1 - i for i, marker in enumerate(markers)}
    for group, offset, colour in (("prior", 0.15, "#999999"), ("posterior", -0.15, POOLED_COLOUR)):
        rows = data[data["group"] == group]
        y = rows["marker"].map(positions) + offset
        ax.hlines(y, rows["lo"], rows["hi"], color=colour, linewidth=2)
        ax.plot(rows["median"], y, "o", color=colour, markersize=4, label=group)
    ax.set_yticks(list(positions.values()), list(positions.keys()))
    ax.set_xlabel(f"τ, between-study SD (median and central {HDI_PROB:.0%} interval)")
    ax.legend(frameon=False, fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    return ax


def superiority_heatmap(matrix: pd.DataFrame, *, ax: Axes) -> Axes:
    """P(row lowers the marker more than column) as a heat map with the probabilities printed."""
    image = ax.imshow(matrix.values, vmin=0, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(matrix.columns)), [c.replace("_", " ") for c in matrix.columns], rotation=35, ha="right")
    ax.set_yticks(range(len(matrix.index)), [c.replace("_", " ") for c in matrix.index])
    for (i, j), value in np.ndenumerate(matrix.values):
        if np.isfinite(value):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(value - 0.5) > 0.3 else "black")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="P(row lowers more)")
    return ax


def rank_plots(idata: Any, var_names: list[str], *, axes: np.ndarray | None = None) -> np.ndarray:
    """ArviZ rank plots (chains should look uniform and alike); one axis per scalar of var_names.
    Without ``axes``, a grid of at most :data:`RANK_COLUMNS` small panels a row, laid out so that
    an axis label never runs into the title of the panel below (ArviZ's own grid lets them)."""
    if axes is not None:
        return np.atleast_1d(az.plot_rank(idata, var_names=var_names, ax=axes, kind="vlines"))
    axes = panel_grid(sum(int(np.prod(idata.posterior[name].shape[2:])) for name in var_names))
    az.plot_rank(idata, var_names=var_names, ax=axes, kind="vlines")
    for ax in axes.flat:  # ArviZ sizes its text for its own, larger grid
        ax.title.set_fontsize(10)
        ax.xaxis.label.set_fontsize(9)
        ax.tick_params(labelsize=8)
    return axes


def panel_grid(n: int, *, columns: int = RANK_COLUMNS, panel: tuple[float, float] = RANK_PANEL) -> np.ndarray:
    """``n`` axes in rows of at most ``columns``, each ``panel`` inches, on a constrained-layout
    figure; the unused cells of the last row are removed."""
    columns = max(1, min(columns, n))
    rows = math.ceil(n / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(panel[0] * columns, panel[1] * rows), squeeze=False,
                                layout="constrained")
    for ax in axes.flat[n:]:
        ax.remove()
    return axes


def trace_plots(idata: Any, var_names: list[str], *, axes: np.ndarray | None = None) -> np.ndarray:
    """ArviZ compact trace plots: density and draws per chain."""
    return np.atleast_1d(az.plot_trace(idata, var_names=var_names, axes=axes, compact=True))


def ppc_plot(idata: Any, var_name: str, *, ax: Axes) -> Axes:
    """Posterior predictive check for one observed variable (ArviZ)."""
    az.plot_ppc(idata, var_names=[var_name], ax=ax, num_pp_samples=50, random_seed=0)
    return ax


def add_watermark(figure: Figure) -> Figure:
    """Stamp SYNTHETIC across a figure."""
    figure.text(0.5, 0.5, "SYNTHETIC", fontsize=40, color="red", alpha=0.18, rotation=25,
                ha="center", va="center", transform=figure.transFigure, zorder=1000)
    return figure


def figure_svg(figure: Figure, *, name: str, synthetic: bool) -> str:
    """The figure as an inline <svg> element (text kept as text, stable ids per figure), then closed."""
    if synthetic:
        add_watermark(figure)
    buffer = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def inclusion_history_plot(overview: pd.DataFrame, *, ax: Axes) -> Axes:
    """The living inclusion flow: per snapshot (``label``), its source rows in, stacked as included
    and excluded, beside the new rows (``rows_new``: those of studies added or edited since the
    snapshot before); the frame of :func:`crsmeta.history.inclusion_overview`."""
    positions = np.arange(len(overview))
    width = 0.38
    ax.bar(positions - width / 2, overview["included"], width, color=POOLED_COLOUR, label="included")
    ax.bar(positions - width / 2, overview["excluded"], width, bottom=overview["included"], color=STUDY_COLOUR,
           alpha=0.55, label="excluded")
    ax.bar(positions + width / 2, overview["rows_new"], width, color=PREDICTION_COLOUR, label="new rows in")
    ax.set_xticks(positions, overview["label"].tolist())
    ax.set_xlim(-0.7, len(overview) - 0.3)
    ax.set_ylabel("source rows")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return ax
