"""The main analysis and the sensitivity analyses switched on in config, each its own fit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crsmeta.model.settings import ModelSettings

SENSITIVITY_DEFAULTS: dict[str, Any] = {
    "activate": True,
    "leave_one_out": True,
    "case_only": True,
    "summary_only": True,
    "tau_prior_half": True,
    "tau_prior_double": True,
    "student_t": True,
    "no_digitised": True,
    "corr_low": True,
    "corr_high": True,
    "corr_low_prior": [2.0, 8.0],
    "corr_high_prior": [8.0, 2.0],
}


def analysis_settings(
    base: ModelSettings, sensitivity_cfg: Mapping[str, Any], study_ids: list[str]
) -> dict[str, ModelSettings]:
    """``main`` plus one settings object per activated sensitivity analysis, by analysis name.

    ``leave_one_out`` is ``true`` (every study in ``study_ids``), ``false``, or a list of study ids.
    """
    cfg = SENSITIVITY_DEFAULTS | dict(sensitivity_cfg or {})
    analyses = {"main": base}
    if not cfg["activate"]:
        return analyses
    variants = {
        # Case-level data alone are a few patients: nearly every parameter is then prior-driven
        # and NUTS needs smaller steps in the hierarchical tails (a stray divergence at 0.95).
        "case_only": dict(include_summaries=False, target_accept=max(base.target_accept, 0.99)),
        "summary_only": dict(include_cases=False),
        "tau_prior_half": dict(tau_sd=base.tau_sd / 2, temp_tau_sd=base.temp_tau_sd / 2),
        "tau_prior_double": dict(tau_sd=base.tau_sd * 2, temp_tau_sd=base.temp_tau_sd * 2),
        "student_t": dict(likelihood="student_t"),
        "no_digitised": dict(exclude_digitised=True),
        "corr_low": dict(corr_prior=tuple(cfg["corr_low_prior"])),
        "corr_high": dict(corr_prior=tuple(cfg["corr_high_prior"])),
    }
    for name, changes in variants.items():
        if cfg[name]:
            analyses[name] = base.replace(**changes)
    if cfg["leave_one_out"]:
        chosen = study_ids if cfg["leave_one_out"] is True else cfg["leave_one_out"]
        for study_id in sorted(chosen):
            excluded = tuple(sorted(set(base.exclude_studies) | {study_id}))
            analyses[f"loo_{study_id}"] = base.replace(exclude_studies=excluded)
    return analyses
