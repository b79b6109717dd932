"""Cumulative meta-analysis: each estimate as the evidence stood after each publication date.

The steps are analyses of their own (``cumulative_<date>`` in crsmeta.model.analyses: the main
settings without the studies published later or not dated); the last step is the main analysis.
This module stacks their effects into one table, in publication order.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from crsmeta import tables
from crsmeta.model.analyses import CUMULATIVE_PREFIX, MAIN, MIN_STUDIES_TO_ACCUMULATE
from crsmeta.studies import PartialDate

ALL_STUDIES = "all"


def cumulative_table(effects_all: pd.DataFrame, published: Mapping[str, PartialDate | None],
                     contributing: list[str]) -> pd.DataFrame:
    """The estimates of two or more studies in the main analysis, at every cumulative step
    (:data:`crsmeta.tables.CUMULATIVE`); ``contributing``: the studies whose rows reach the main
    model (counted per step)."""
    steps = sorted((PartialDate.parse(name.removeprefix(CUMULATIVE_PREFIX)), name)
                   for name in effects_all["analysis"].unique() if name.startswith(CUMULATIVE_PREFIX))
    main = effects_all[effects_all["analysis"] == MAIN]
    kept = main.loc[main["n_studies"] >= MIN_STUDIES_TO_ACCUMULATE, ["intervention", "marker"]]
    frames = []
    for rank, (date, name) in enumerate([*steps, (None, MAIN)], start=1):
        in_model = [s for s in contributing if date is None or (published.get(s) is not None and published[s] <= date)]
        step = effects_all[effects_all["analysis"] == name].merge(kept, on=["intervention", "marker"])
        frames.append(step.assign(up_to=ALL_STUDIES if date is None else str(date), step=rank,
                                  n_studies_in=len(in_model)))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=tables.CUMULATIVE.columns)
    table = table.sort_values(["intervention", "marker", "step"], kind="stable")
    return tables.frame(tables.CUMULATIVE, table.reset_index(drop=True))
