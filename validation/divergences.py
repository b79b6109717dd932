"""Where a fit's divergent transitions are: the parameters whose divergent draws sit furthest from
the rest, in posterior SDs (log scale for positive parameters), the usual pointer to a funnel.

Fits one analysis of a project (its config, and the changes and comparisons a workflow run wrote)
in this process with the package's sampler and settings, so the same data and seed give the
same draws as the fit job. Nothing is written.

    python validation/divergences.py [--project .] [--analysis main] [--top 15]

How issue 9's "next study" funnels were found (docs/model.md, "Summary-level likelihood": the rows
whose τ is integrated out).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from crsmeta.compile_cache import compile_cache_environment  # noqa: E402


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--analysis", default="main", help="a sensitivity analysis whose settings need no data")
    parser.add_argument("--top", type=int, default=15, help="parameters to list")
    return parser.parse_args()


def divergence_shifts(posterior, diverging) -> list[tuple[float, str]]:
    """For each scalar of ``posterior`` (log of it where it is positive), how far its divergent
    draws' mean is from its mean, in its posterior SDs; largest first."""
    import numpy as np

    shifts = []
    for name, variable in posterior.data_vars.items():
        values = variable.values.reshape(diverging.size, -1)
        for index in range(values.shape[1]):
            column = values[:, index]
            label = f"{name}[{index}]"
            if np.all(column > 0):
                column, label = np.log(column), f"log {label}"
            spread = column.std()
            if spread > 0:
                shifts.append((float((column[diverging].mean() - column.mean()) / spread), label))
    return sorted(shifts, key=lambda shift: -abs(shift[0]))


def main() -> None:
    arguments = _arguments()
    project = arguments.project.resolve()
    os.environ.update(compile_cache_environment(project / ".cache"))
    import yaml

    from crsmeta import tables
    from crsmeta.model import ModelData, ModelSettings
    from crsmeta.model.analyses import MAIN, analysis_settings
    from crsmeta.model.build import build_model
    from crsmeta.model.sample import sample_model

    config = yaml.safe_load((project / "config" / "config.yaml").read_text())
    settings = ModelSettings.from_config(config)
    if arguments.analysis != MAIN:
        settings = analysis_settings(settings, config.get("sensitivity", {}), [])[arguments.analysis]
    data = ModelData.from_tables(tables.read(tables.CHANGES, project / "results" / "model" / "changes.tsv"),
                                 tables.read(tables.OBSERVATIONS, project / "results" / "model" / "comparisons.tsv"),
                                 settings)
    idata = sample_model(build_model(data, settings), settings)
    diverging = idata.sample_stats["diverging"].values.ravel()
    print(f"{arguments.analysis}: {int(diverging.sum())} divergent transitions in {diverging.size} draws")
    print("markers:", ", ".join(data.coords["marker"]))
    if diverging.any():
        for shift, label in divergence_shifts(idata.posterior, diverging)[:arguments.top]:
            print(f"{label:45s} {shift:+.2f} posterior SDs")


if __name__ == "__main__":
    main()
