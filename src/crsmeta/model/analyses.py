"""The main analysis and the sensitivity analyses switched on in config, each its own fit."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from crsmeta.io import read_tsv
from crsmeta.model.settings import DATA_FILTERS, ModelSettings
from crsmeta.studies import PartialDate

SENSITIVITY_DEFAULTS: dict[str, Any] = {
    "activate": True,
    "leave_one_out": True,
    "case_only": True,
    "summary_only": True,
    "tau_prior_half": True,
    "tau_prior_double": True,
    "sigma_prior_half": True,
    "sigma_prior_double": True,
    "student_t": True,
    "no_digitised": True,
    "corr_low": True,
    "corr_high": True,
    "exclude_high_risk": True,
    "baseline_adjusted": True,
    "cumulative": True,
    "corr_low_prior": [2.0, 8.0],
    "corr_high_prior": [8.0, 2.0],
}


MAIN = "main"  # the analysis that gates the report; every other one is a sensitivity analysis
# settings an analysis may change and still be computed from the main fit's draws
PRIOR_FIELDS = ("tau_sd", "temp_tau_sd", "sigma_sd", "temp_sigma_sd", "baseline_sd", "temp_baseline_sd", "corr_prior")
# settings that only drop rows: the main draws stand for the analysis when no row is dropped
ROW_FILTER_FIELDS = ("exclude_digitised",)
RUN_FIELDS = ("cores",)  # how a job runs, not what it computes
PARETO_K_MAX = 0.7  # Vehtari et al. (2024): above it importance-weighted estimates are unreliable
LEAVE_ONE_OUT_PREFIX = "loo_"
CUMULATIVE_PREFIX = "cumulative_"  # + the publication date up to which studies are in
MIN_STUDIES_TO_ACCUMULATE = 2  # an estimate of one study has no accumulation to show
CONTRIBUTING = "contributing"
EXCLUDE_HIGH_RISK = "exclude_high_risk"
NO_HIGH_RISK_STUDY = ("no study is rated at high risk of bias (risk_of_bias.overall: high in its study file), "
                      "so there is no study to leave out")


def analysis_settings(
    base: ModelSettings, sensitivity_cfg: Mapping[str, Any], study_ids: list[str],
    contributing: list[str] | None = None, high_risk: Iterable[str] = (),
    published: Mapping[str, PartialDate | None] | None = None, cumulative: Iterable[PartialDate] = (),
) -> dict[str, ModelSettings]:
    """``main`` plus one settings object per activated sensitivity analysis, by analysis name.

    ``leave_one_out`` is ``true`` (every study in ``study_ids``), ``false``, a list of study ids,
    or ``"contributing"``: every study whose rows reach the main model, which is only known once
    the data are read (``contributing``; the workflow's checkpoint ``contributing_studies``).
    Until then, i.e. with ``contributing=None``, no leave-one-out analysis is listed.
    ``exclude_high_risk`` leaves out the studies of ``study_ids`` in ``high_risk`` (rated high
    risk of bias in their study files, :func:`crsmeta.studies.high_risk_study_ids`); with none
    it is not listed (:func:`skipped_analyses` says why). With the config's ``cumulative`` on, each
    date of ``cumulative`` (:func:`cumulative_dates`, known once the data are read) is an analysis
    with the studies published up to it (``published``: each study's date).
    """
    cfg = SENSITIVITY_DEFAULTS | dict(sensitivity_cfg or {})
    analyses = {MAIN: base}
    if not cfg["activate"]:
        return analyses
    variants = {
        "case_only": dict(include_summaries=False),
        "summary_only": dict(include_cases=False),
        "tau_prior_half": dict(tau_sd=base.tau_sd / 2, temp_tau_sd=base.temp_tau_sd / 2),
        "tau_prior_double": dict(tau_sd=base.tau_sd * 2, temp_tau_sd=base.temp_tau_sd * 2),
        # σ informs the σ²/2 shift of mean-based rows and the SE of rows that print none: where
        # no case row informs σ, its prior does (docs/model.md); so does s, the baseline's
        # spread, for a ratio of two cohorts' levels, informed only by the rows it widens
        "sigma_prior_half": _spread_priors_scaled(base, 0.5),
        "sigma_prior_double": _spread_priors_scaled(base, 2.0),
        "student_t": dict(likelihood="student_t"),
        "no_digitised": dict(exclude_digitised=True),
        "corr_low": dict(corr_prior=tuple(cfg["corr_low_prior"])),
        "corr_high": dict(corr_prior=tuple(cfg["corr_high_prior"])),
        # how much of each change tracks the level it started from (regression to the mean)
        "baseline_adjusted": dict(baseline_level=True),
    }
    for name, changes in variants.items():
        if cfg[name]:
            analyses[name] = base.replace(**changes)
    left_out_high_risk = sorted(set(high_risk) & set(study_ids))
    if cfg[EXCLUDE_HIGH_RISK] and left_out_high_risk:
        analyses[EXCLUDE_HIGH_RISK] = base.replace(
            exclude_studies=tuple(sorted(set(base.exclude_studies) | set(left_out_high_risk))))
    for study_id in sorted(_left_out(cfg["leave_one_out"], study_ids, contributing)):
        analyses[LEAVE_ONE_OUT_PREFIX + study_id] = leave_one_out_settings(base, study_id)
    if cfg["cumulative"] and published is not None:
        for date in cumulative:
            analyses[CUMULATIVE_PREFIX + str(date)] = cumulative_settings(base, published, date)
    return analyses


def _spread_priors_scaled(base: ModelSettings, factor: float) -> dict[str, float]:
    """The prior means of the patients' spreads, σ (of their changes) and s (of their baseline
    levels; σ's prior family), times ``factor``: the ``sigma_prior_*`` analyses."""
    return dict(sigma_sd=base.sigma_sd * factor, temp_sigma_sd=base.temp_sigma_sd * factor,
                baseline_sd=base.baseline_sd * factor, temp_baseline_sd=base.temp_baseline_sd * factor)


def skipped_analyses(
    sensitivity_cfg: Mapping[str, Any], study_ids: list[str], high_risk: Iterable[str] = ()
) -> dict[str, str]:
    """Sensitivity analyses switched on that have nothing to do, with the reason (not fitted)."""
    cfg = SENSITIVITY_DEFAULTS | dict(sensitivity_cfg or {})
    if cfg["activate"] and cfg[EXCLUDE_HIGH_RISK] and not set(high_risk) & set(study_ids):
        return {EXCLUDE_HIGH_RISK: NO_HIGH_RISK_STUDY}
    return {}


def leave_one_out_settings(base: ModelSettings, study_id: str) -> ModelSettings:
    """The main settings with one more study excluded."""
    return base.replace(exclude_studies=tuple(sorted(set(base.exclude_studies) | {study_id})))


def cumulative_dates(published: Mapping[str, PartialDate | None], contributing: pd.DataFrame) -> list[PartialDate]:
    """The steps of the cumulative meta-analysis worth a fit: each publication date at which some
    estimate that ends with two or more studies (``contributing``: the checkpoint's table, with each
    study's cells) has some of its studies but not yet all. A study without a date enters only
    the main analysis, the last step; so does an estimate whose studies share one date."""
    cells = {row.study_id: set(filter(None, str(row.cells).split(";"))) for row in contributing.itertuples()}
    studies_of: dict[str, list[str]] = {}
    for study, study_cells in cells.items():
        for cell in study_cells:
            studies_of.setdefault(cell, []).append(study)
    dates = set()
    for studies in studies_of.values():
        if len(studies) < MIN_STUDIES_TO_ACCUMULATE:
            continue
        for date in {published.get(s) for s in studies} - {None}:
            if sum(published.get(s) is not None and published[s] <= date for s in studies) < len(studies):
                dates.add(date)
    return sorted(dates)


def cumulative_settings(base: ModelSettings, published: Mapping[str, PartialDate | None],
                        date: PartialDate) -> ModelSettings:
    """The main settings without the studies published after ``date`` or with no date."""
    later = {study for study, when in published.items() if when is None or when > date}
    return base.replace(exclude_studies=tuple(sorted(set(base.exclude_studies) | later)))


def settings_after_data(base: ModelSettings, name: str, published: Mapping[str, PartialDate | None]) -> ModelSettings:
    """The settings of an analysis listed only once the data are read (leave-one-out, cumulative)."""
    if name.startswith(CUMULATIVE_PREFIX):
        return cumulative_settings(base, published, PartialDate.parse(name.removeprefix(CUMULATIVE_PREFIX)))
    return leave_one_out_settings(base, name.removeprefix(LEAVE_ONE_OUT_PREFIX))


def cumulative_on(sensitivity_cfg: Mapping[str, Any]) -> bool:
    """Whether the cumulative steps are fitted."""
    cfg = SENSITIVITY_DEFAULTS | dict(sensitivity_cfg or {})
    return bool(cfg["activate"]) and bool(cfg["cumulative"])


def analyses_after_data(sensitivity_cfg: Mapping[str, Any]) -> bool:
    """Whether some analyses depend on which studies reach the model (leave-one-out of the
    contributing studies, the cumulative steps)."""
    cfg = SENSITIVITY_DEFAULTS | dict(sensitivity_cfg or {})
    return bool(cfg["activate"]) and (cfg["leave_one_out"] == CONTRIBUTING or cumulative_on(cfg))


def _left_out(choice: bool | str | list[str], study_ids: list[str], contributing: list[str] | None) -> list[str]:
    if choice is True:
        return list(study_ids)
    if choice == CONTRIBUTING:
        return list(contributing or [])
    return list(choice or [])


@dataclasses.dataclass(frozen=True)
class Reweighting:
    """What turns the main posterior into an analysis' one: a study left out, other priors, and/or
    row filters (usable only where they leave the main model's rows, crsmeta.model.reweight)."""

    left_out: str | None
    prior_fields: tuple[str, ...]
    row_filters: tuple[str, ...] = ()


def reweighting_of(main: ModelSettings, analysis: ModelSettings) -> Reweighting | None:
    """The reweighting that gives ``analysis`` from ``main`` (crsmeta.model.reweight), or None
    when it changes more than one left-out study, the priors of τ and ρ and the row filters."""
    changed = _changed_settings(main, analysis)
    left_out = sorted(set(analysis.exclude_studies) - set(main.exclude_studies))
    if changed - set(PRIOR_FIELDS) - set(ROW_FILTER_FIELDS) - {"exclude_studies"}:
        return None
    if "exclude_studies" in changed and (len(left_out) != 1
                                         or not set(main.exclude_studies) <= set(analysis.exclude_studies)):
        return None
    return Reweighting(left_out=left_out[0] if left_out else None,
                       prior_fields=tuple(f for f in PRIOR_FIELDS if f in changed),
                       row_filters=tuple(f for f in ROW_FILTER_FIELDS if f in changed))


def fit_priority(name: str, main: ModelSettings, analysis: ModelSettings) -> int:
    """The order in which a run starts the fits (Snakemake's ``priority``): the main fit first, as
    the analyses that may be reweighted wait for its draws; then those that always compile a model
    structure of their own (another likelihood, a covariate), the longest jobs of a cold run, so
    that they compile beside the main fit; then those that leave kinds of row out, sampled whatever
    the main draws give, whose structure is the main one unless a row they keep needs a term the
    main rows do not (crsmeta.model.build.model_terms: on the bundled data ``summary_only`` shares
    it, ``case_only`` does not), so that one sharing it loads the main fit's compiled code rather
    than compiling it a second time beside it; the short reweightings and refits last, so that
    they fill the end of a run instead of a compile running alone there. Settings alone decide:
    priorities are read when the jobs are planned, before the data that decide a structure exist."""
    if name == MAIN:
        return 3
    if not changes_no_structural_setting(main, analysis):
        return 2
    return 1 if reweighting_of(main, analysis) is None else 0


def changes_no_structural_setting(main: ModelSettings, analysis: ModelSettings) -> bool:
    """Whether ``analysis`` changes only priors' scales, which rows enter and how a job runs:
    settings that are data of the compiled model (crsmeta.model.build), so that its fit loads the
    main fit's compiled code instead of compiling its own, unless the rows it keeps need a term
    the main rows do not (:func:`fit_priority`)."""
    return not _changed_settings(main, analysis) - set(PRIOR_FIELDS) - set(DATA_FILTERS)


def _changed_settings(main: ModelSettings, analysis: ModelSettings) -> set[str]:
    """The settings ``analysis`` gives another value than ``main``, how a job runs aside."""
    return {field.name for field in dataclasses.fields(ModelSettings)
            if getattr(main, field.name) != getattr(analysis, field.name)} - set(RUN_FIELDS)


def collect_analyses(paths: Iterable[str | Path]) -> pd.DataFrame:
    """Stack the tables of results/model/<analysis>/*.tsv, naming each row's analysis by its folder.

    Every column is kept, so each analysis' gate verdict (``gate`` in effects, the ``fit`` row in
    diagnostics) reaches the collected tables.
    """
    frames = [read_tsv(path).assign(analysis=Path(path).parent.name) for path in paths]
    frame = pd.concat(frames, ignore_index=True)
    return frame[["analysis", *[c for c in frame.columns if c != "analysis"]]]
