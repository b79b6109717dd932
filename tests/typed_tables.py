"""The tests' hand-made frames of cell texts (conftest's ``change_row``, ``summary_row``) typed by
their contracts, as the stages pass them on (``tables.read``): the library reads typed tables only."""

from __future__ import annotations

import pandas as pd

from crsmeta import tables


def typed_changes(text: pd.DataFrame) -> pd.DataFrame:
    """Changes rows of cell texts as :data:`crsmeta.tables.CHANGES`; an exact change's empty
    bounds are the change itself, as the changes stage writes them."""
    exact = text["change_lower"].eq("") & text["change"].ne("")
    filled = text.assign(
        change_lower=text["change_lower"].mask(exact, text["change"]),
        change_upper=text["change_upper"].mask(text["change_upper"].eq("") & text["change"].ne(""), text["change"]),
    )
    return tables.parse(tables.CHANGES, filled)


def typed_summaries(text: pd.DataFrame) -> pd.DataFrame:
    """Harmonised summary rows of cell texts as :data:`crsmeta.tables.HARMONISED_SUMMARIES`."""
    return tables.parse(tables.HARMONISED_SUMMARIES, text)


def change_frame(rows, columns=tables.CHANGES.columns) -> pd.DataFrame:
    """``pd.DataFrame(rows, columns=...)`` of conftest's ``change_row`` texts, typed."""
    return typed_changes(pd.DataFrame(rows, columns=columns))


def summary_frame(rows, columns=tables.HARMONISED_SUMMARIES.columns) -> pd.DataFrame:
    """``pd.DataFrame(rows, columns=...)`` of conftest's ``summary_row`` texts, typed."""
    return typed_summaries(pd.DataFrame(rows, columns=columns))
