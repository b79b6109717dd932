"""More draws for a fit whose only shortfall is its effective sample size, up to a cap.

Each extension resamples from the start with twice the draws, twice the tuning steps and the
same seed rather than continuing the chains, so the draws depend only on the settings and the
final number of draws: a fit extended to 2000 draws is the fit configured with 2000 draws and
tuning steps scaled alike. The tuning grows with the draws because a fit short of ESS at the
default settings is, on the data seen so far, one whose mass matrix was adapted on too few
steps for a funnel its data leave open (docs/model.md, "Funnels left by prior-only nuisance
parameters"): more draws with the same adaptation barely raise its tail ESS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import arviz as az
import pandas as pd

from crsmeta.model.diagnostics import diagnostics_table, extendable
from crsmeta.model.settings import ModelSettings

log = logging.getLogger(__name__)

Sampler = Callable[[ModelSettings], az.InferenceData]


def sample_extending(sample: Sampler, settings: ModelSettings, analysis: str) -> tuple[az.InferenceData, pd.DataFrame]:
    """Sample with ``settings.draws``, then with doubled draws (and tuning steps) while
    :func:`next_draws` says so.

    Returns the last fit and its diagnostics table; the draws it used are its posterior's
    ``draw`` dimension.
    """
    draws = settings.draws
    while True:
        idata = sample(extended(settings, draws))
        diagnostics = diagnostics_table(idata, analysis)
        more = next_draws(diagnostics, settings, draws)
        if more is None:
            return idata, diagnostics
        log.info("analysis %s: ESS short of %g with %d draws per chain; resampling with %d (cap %d)",
                 analysis, settings.ess_min, draws, more, max_draws(settings))
        draws = more


def extended(settings: ModelSettings, draws: int) -> ModelSettings:
    """``settings`` with ``draws`` per chain and the tuning steps scaled by the same factor."""
    return settings.replace(draws=draws, tune=settings.tune * draws // settings.draws)


def next_draws(diagnostics: pd.DataFrame, settings: ModelSettings, draws: int) -> int | None:
    """Twice ``draws`` (at most the cap) when more draws may pass the gate, else None.

    None when the gate is off (nothing would fail), the cap is reached, or the fit fails on
    something more draws do not cure (divergences, E-BFMI, R-hat above 1.05).
    """
    cap = max_draws(settings)
    if not settings.gate or draws >= cap or not extendable(diagnostics, settings):
        return None
    return min(2 * draws, cap)


def max_draws(settings: ModelSettings) -> int:
    """The most draws per chain a fit is extended to: ``max_draws_factor`` × ``draws``."""
    return settings.max_draws_factor * settings.draws
