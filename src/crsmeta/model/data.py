"""The model's data: coords, index arrays and observation arrays from the changes stage's tables
(changes.tsv: per-patient changes; comparisons.tsv: summary comparisons)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from crsmeta import tables
from crsmeta.comparisons import MEDIAN_EFFICIENCY
from crsmeta.cv_shift import has_shift_from_cvs
from crsmeta.errors import InputError
from crsmeta.model.settings import ModelSettings
from crsmeta.vocabulary import ChangeScale, change_scale

REFERENCE_POPULATION = "car_t_crs"
CELL_SEPARATOR = "|"  # intervention|marker in contributing_studies.tsv
CENSOR_CODES = {"none": 0, "left": 1, "right": 2, "interval": 3}
LEARNED_METHODS = ("p_value_bound", "dispersion_from_data")
# Routes whose printed SE is only the prior mean of a learned se²: a P value from a raw-scale
# (paired t or Wilcoxon) test does not pin the SE of a log ratio.
SE_AS_PRIOR_METHODS = ("p_value_exact",)
SAME_PATIENTS_AS_CASES = ("the study reports these patients' changes case by case: its case rows entered "
                          "instead (a summary of the same patients would count them twice)")
# the coords of levels (the others are of studies and rows): an analysis keeps those of every row
LEVELS = ("intervention", "marker", "lab_marker", "population", "population_shifted", "co_intervention")
MODEL_FAMILY = {ChangeScale.LOG_RATIO: "log_ratio", ChangeScale.DIFFERENCE: "temperature"}
"""The label of each change scale on the ``family`` coord (the labels name saved posteriors' coords)."""


def on_difference_scale(marker: str) -> bool:
    """Whether a marker's change is a difference (temperature), modelled apart from the log ratios."""
    return change_scale(marker) is ChangeScale.DIFFERENCE


def model_family(marker: str) -> str:
    """The marker's label on the ``family`` coord."""
    return MODEL_FAMILY[change_scale(marker)]


@dataclasses.dataclass
class ModelData:
    """Coords and arrays for :func:`crsmeta.model.build.build_model`.

    ``cases`` and ``observations`` are the rows that enter the model (after the settings'
    filters), ``audit`` the rows that do not, with the reason.

    The levels (interventions, markers, populations, co-interventions) are those of every row
    before the data filters (settings.DATA_FILTERS, :attr:`before_filters`), and so are the
    kinds of likelihood term the model has (crsmeta.model.build): an analysis that only leaves
    rows out has the main model's parameters and compiled code. A level left without rows keeps
    its prior, which leaves the posterior of the others as it would be without it (docs/model.md,
    "One structure for the analyses that leave rows out"), and it reports nothing; a term left
    without rows adds nothing.
    """

    coords: dict[str, list[str]]
    cases: pd.DataFrame
    observations: pd.DataFrame
    audit: pd.DataFrame
    use_population: bool
    use_co_interventions: bool
    use_grade: bool
    use_baseline: bool = False
    unfiltered: ModelData | None = None  # every row before the data filters; None when they drop none

    @classmethod
    def from_tables(
        cls, changes: pd.DataFrame, comparisons: pd.DataFrame, settings: ModelSettings
    ) -> "ModelData":
        """Filter and index the changes stage's tables (:data:`crsmeta.tables.CHANGES`,
        :data:`crsmeta.tables.OBSERVATIONS`, typed as ``tables.read`` gives them) as the settings say."""
        tables.check(tables.CHANGES, changes)
        cases, case_audit = _usable_cases(changes)
        observations = tables.frame(tables.OBSERVATIONS, comparisons)
        unfiltered_settings = settings.without_data_filters()
        unfiltered = (None if settings == unfiltered_settings
                      else cls.from_tables(changes, comparisons, unfiltered_settings))
        cases, observations, filter_audit = _apply_filters(cases, observations, settings)
        if cases.empty and observations.empty:
            raise InputError(
                "no case-level or summary-level observations are left to model",
                expected="at least one usable change or summary comparison after the data filters",
            )
        coords = _coords(cases, observations)
        if unfiltered is not None:
            coords |= {dim: unfiltered.coords[dim] for dim in LEVELS}
        # a shift needs a second population to shift to (an analysis may leave only one)
        use_population = len(coords["population"]) > 1 and (settings.population is True or (
            settings.population == "auto" and _population_shift_identified(cases, observations)))
        audit = pd.concat([case_audit, filter_audit], ignore_index=True)
        use_baseline = settings.baseline_level and bool(
            np.isfinite(baseline_level(stacked_rows(cases, observations, ["marker", "pre_value"]))).any())
        return cls(use_baseline=use_baseline, coords=coords, cases=cases, observations=observations,
                   unfiltered=unfiltered,
                   audit=tables.frame(tables.MODEL_AUDIT, audit), use_population=use_population,
                   use_co_interventions=settings.co_interventions and bool(coords["co_intervention"]),
                   use_grade=settings.baseline_grade and bool(cases["grade"].notna().any()) if not cases.empty else False)

    @property
    def before_filters(self) -> ModelData:
        """The data of every row before the analysis' data filters (itself when they drop none)."""
        return self if self.unfiltered is None else self.unfiltered

    # --- index arrays -------------------------------------------------------------------------
    def index(self, frame: pd.DataFrame, column: str, dim: str) -> np.ndarray:
        """Positions of ``frame[column]`` in the coord ``dim``."""
        lookup = {label: i for i, label in enumerate(self.coords[dim])}
        return frame[column].map(lookup).to_numpy(dtype=int)

    def family_index(self, frame: pd.DataFrame) -> np.ndarray:
        """Positions of the rows' markers' change scales in the coord ``family``."""
        return self.index(frame.assign(family=frame["marker"].map(model_family)), "family", "family")

    def study_marker_index(self, frame: pd.DataFrame) -> np.ndarray:
        keys = frame["study_id"] + "|" + frame["marker"]
        lookup = {label: i for i, label in enumerate(self.coords["study_marker"])}
        return keys.map(lookup).to_numpy(dtype=int)

    def co_intervention_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Indicator (row × canonical co-intervention) of co-interventions given in the window."""
        names = self.coords["co_intervention"]
        sets = frame["co_interventions"].str.split(";")
        return np.array([[float(name in given) for name in names] for given in sets]).reshape(
            len(frame), len(names))

    def centred_grade(self) -> np.ndarray:
        """Mean of each patient's possible ASTCT grades, centred; 0 (the mean) where none given."""
        grade = self.cases["grade"]
        return (grade - grade.mean()).fillna(0.0).to_numpy(dtype=float)

    def centred_baseline(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's baseline level (:func:`baseline_level`) minus its marker's mean over the
        modelled rows (case and summary) that have one; 0 (the mean) where a row has none."""
        level = pd.Series(baseline_level(frame), index=frame.index)
        every = self.rows(["marker", "pre_value"])
        centre = pd.Series(baseline_level(every)).groupby(every["marker"].to_numpy()).mean()
        return (level - frame["marker"].map(centre)).fillna(0.0).to_numpy(dtype=float)

    @property
    def lab_markers(self) -> list[str]:
        return [m for m in self.coords["marker"] if not on_difference_scale(m)]

    @property
    def has_temperature(self) -> bool:
        return any(on_difference_scale(m) for m in self.coords["marker"])

    # --- summaries ----------------------------------------------------------------------------
    def rows(self, columns: list[str]) -> pd.DataFrame:
        """``columns`` of the case-level and summary rows that enter the model, stacked."""
        return stacked_rows(self.cases, self.observations, columns)

    def cells(self) -> pd.DataFrame:
        """(intervention, marker) cells with data and the populations the data come from."""
        return (self.rows(["intervention", "marker", "population"]).drop_duplicates()
                .sort_values(["intervention", "marker", "population"]))

    def counts(self) -> pd.DataFrame:
        """Per (intervention, marker): populations, n_studies, n_patients, n_summary_rows.

        n_patients counts case-level patients plus the n of each summary comparison (arms of
        a trial are different patients; a cohort's n is counted once per marker).
        """
        both = stacked_rows(self.cases.assign(n=1.0, summary=0), self.observations.assign(summary=1),
                            ["intervention", "marker", "population", "study_id", "n", "summary"])
        grouped = both.groupby(["intervention", "marker"], sort=True)
        return pd.DataFrame({
            "populations": grouped["population"].agg(lambda p: ";".join(sorted(set(p)))),
            "n_studies": grouped["study_id"].nunique(),
            "n_patients": grouped["n"].sum().round().astype(int),
            "n_summary_rows": grouped["summary"].sum().astype(int),
        }).reset_index()

    def is_synthetic(self) -> bool:
        return bool(self.cases["synthetic"].any() or self.observations["synthetic"].any())

    def correlation_rows(self) -> np.ndarray:
        """Positions of the summary rows whose SE comes from their pre and post SDs and the
        pre/post correlation ρ: the only rows that inform ρ."""
        return np.flatnonzero(known_by_their_sds(self.observations))


def baseline_level(frame: pd.DataFrame) -> np.ndarray:
    """The level before the intervention on the change's scale: log of the pre value for a
    log-ratio marker (a patient's value, or a summary's printed mean or median), the value in °C
    for temperature; NaN where there is none (a printed change without its pre value)."""
    value = frame["pre_value"].to_numpy(dtype=float)
    difference = frame["marker"].map(on_difference_scale).to_numpy(dtype=bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(difference, value, np.log(np.where(value > 0, value, np.nan)))


BASELINE_SPREAD_COLUMNS = ["study_id", "marker", "n", "sum_of_squares"]


def baseline_spread_groups(cases: pd.DataFrame) -> pd.DataFrame:
    """Per study and marker, the patients whose level before the intervention is known exactly:
    their number ``n`` (two or more) and the sum of squares of their baseline levels
    (:func:`baseline_level`) about the study's mean, which the model's levels (normal on the
    change's scale, SD s[marker]) make s²·χ²(n − 1) whatever that mean is.

    Each patient counts once (the pre value of their first change in the table's order). A study
    whose patients include a censored pre value is left out, as dropping the censored levels
    would shrink the spread; so is one whose levels are all equal as printed (rounding, not a
    spread of zero). Patients without a pre value (a printed change) are not levels to count.
    """
    columns = ["study_id", "marker", "patient_id", "pre_value", "pre_censoring"]
    if cases.empty:
        return pd.DataFrame(columns=BASELINE_SPREAD_COLUMNS)
    patients = cases[columns].drop_duplicates(["study_id", "marker", "patient_id"])
    patients = patients.assign(level=baseline_level(patients),
                               censored=patients["pre_censoring"].isin(["left", "right"]))
    known = patients[np.isfinite(patients["level"]) | patients["censored"]]
    grouped = known.groupby(["study_id", "marker"], sort=True)
    groups = pd.DataFrame({
        "n": grouped["level"].count(),
        "censored": grouped["censored"].any(),
        "sum_of_squares": grouped["level"].agg(lambda level: float(((level - level.mean()) ** 2).sum())),
    }).reset_index()
    usable = (groups["n"] >= 2) & ~groups["censored"] & (groups["sum_of_squares"] > 0)
    return groups.loc[usable, BASELINE_SPREAD_COLUMNS].reset_index(drop=True)


def known_by_their_sds(obs: pd.DataFrame) -> np.ndarray:
    """Summary rows whose SE comes from their pre and post dispersions and ρ (no SE of their own)."""
    return (obs["se_known"].isna() & obs["disp_pre"].notna()).to_numpy()


def shifted_by_their_cvs(obs: pd.DataFrame) -> np.ndarray:
    """Summary rows of means with both sides' SDs (or SEs) whose shift comes from their CVs: the
    shift's bias is simulated at σ[marker], and so is half of their variance (:mod:`crsmeta.cv_shift`)."""
    return obs["flags"].map(has_shift_from_cvs).to_numpy(dtype=bool)


def summary_medians(obs: pd.DataFrame) -> np.ndarray:
    """Summary rows that are a change of medians (their efficiency is the median's)."""
    return obs["efficiency"].to_numpy(dtype=float) == MEDIAN_EFFICIENCY


def se_learned_from_sigma(obs: pd.DataFrame) -> np.ndarray:
    """Summary rows whose unknown se² is learned with a prior mean from σ (and s)."""
    method = obs["method"]
    return (method.isin(LEARNED_METHODS) & ~method.isin(SE_AS_PRIOR_METHODS)).to_numpy()


def ratio_of_levels(obs: pd.DataFrame) -> np.ndarray:
    """Rows whose baseline does not cancel (:mod:`crsmeta.cohort_log_ratio`): a marker's log ratio
    of two levels' summaries (means or medians, no shift printed), and temperature's difference of
    two medians (pre and post rows). Temperature's difference of means (the mean of the
    differences), a printed change of temperature and a printed mean log ratio (mean_weight 0 and
    not a change of medians) are not."""
    lab = ~np.array([on_difference_scale(m) for m in obs["marker"]], dtype=bool)
    medians = summary_medians(obs)
    of_levels = (obs["mean_weight"].to_numpy(dtype=float) > 0) | medians
    lab_ratio = of_levels & ~np.isfinite(obs["mean_shift"].to_numpy(dtype=float))
    return np.where(lab, lab_ratio, medians & (obs["kind"] == "pre_post").to_numpy())


def reads_baseline_sd(obs: pd.DataFrame) -> np.ndarray:
    """Summary rows that read their marker's baseline SD s (of the log level; of °C for
    temperature): a ratio of levels whose mean is shifted or whose se² is learned from σ and s
    (crsmeta.model.build._cohort_ratio_moments)."""
    shifted = obs["mean_weight"].to_numpy(dtype=float) > 0
    return ratio_of_levels(obs) & (se_learned_from_sigma(obs) | shifted)


def contributing_studies(changes: pd.DataFrame, comparisons: pd.DataFrame, settings: ModelSettings) -> pd.DataFrame:
    """The studies whose rows enter the model under ``settings``, with their case-level changes
    and summary comparisons counted (what leave-one-study-out has to leave out in turn) and the
    (intervention, marker) cells each informs (what the cumulative steps follow)."""
    data = ModelData.from_tables(changes, comparisons, settings)
    case_rows = data.cases.groupby("study_id").size().rename("case_rows")
    summary_rows = data.observations.groupby("study_id").size().rename("summary_rows")
    table = pd.concat([case_rows, summary_rows], axis=1).fillna(0).astype(int)
    rows = data.rows(["study_id", "intervention", "marker"])
    cells = (rows["intervention"] + CELL_SEPARATOR + rows["marker"]).groupby(rows["study_id"]).agg(
        lambda cell: ";".join(sorted(set(cell))))
    table = table.assign(cells=cells)
    return tables.frame(tables.CONTRIBUTING_STUDIES, table.rename_axis("study_id").sort_index().reset_index())


def stacked_rows(cases: pd.DataFrame, observations: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of case-level and summary rows, one table (an empty side adds nothing)."""
    frames = [frame[columns] for frame in (cases, observations) if not frame.empty]
    return pd.concat(frames or [cases[columns]], ignore_index=True)


def _usable_cases(changes: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The changes that can enter (each patient's mean ASTCT grade beside), and the audit of those
    that cannot: an exact change that is not finite, a change censored on both sides."""
    cases = changes.assign(grade=changes["astct_grades"].map(_mean_grade))
    exact = cases["censoring"].eq("none")
    uninformative = ~exact & ~(np.isfinite(cases["change_lower"]) | np.isfinite(cases["change_upper"]))
    unusable = (exact & ~np.isfinite(cases["change"])) | uninformative
    audit = pd.DataFrame({
        "level": "case", "study_id": cases.loc[unusable, "study_id"],
        "source_rows": cases.loc[unusable, "source_rows"],
        "intervention": cases.loc[unusable, "intervention"], "marker": cases.loc[unusable, "marker"],
        "reason": np.where(uninformative[unusable], "change censored on both sides: no information",
                           "no finite change"),
    })
    return cases[~unusable].reset_index(drop=True), audit


def _mean_grade(text: str) -> float:
    """Equal-weight mean of the possible ASTCT grades of a grade set such as ``1|3|4``."""
    grades = [float(g) for g in text.split("|") if g.strip()]
    return float(np.mean(grades)) if grades else np.nan


def _apply_filters(
    cases: pd.DataFrame, observations: pd.DataFrame, settings: ModelSettings
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    audits = []

    def drop(frame: pd.DataFrame, mask: pd.Series, level: str, reason: str) -> pd.DataFrame:
        audits.append(pd.DataFrame({
            "level": level, "study_id": frame.loc[mask, "study_id"],
            "source_rows": frame.loc[mask, "source_rows"],
            "intervention": frame.loc[mask, "intervention"], "marker": frame.loc[mask, "marker"],
            "reason": reason,
        }))
        return frame[~mask].reset_index(drop=True)

    for level, frame_name, include in (("case", "cases", settings.include_cases),
                                       ("summary", "observations", settings.include_summaries)):
        frame = cases if frame_name == "cases" else observations
        if not include:
            frame = drop(frame, pd.Series(True, index=frame.index), level, f"analysis excludes {level}-level data")
        if settings.exclude_digitised:
            frame = drop(frame, frame["digitised"], level, "analysis excludes digitised values")
        if settings.exclude_studies:
            frame = drop(frame, frame["study_id"].isin(settings.exclude_studies), level,
                         "analysis leaves this study out")
        if frame_name == "cases":
            cases = frame
        else:
            observations = frame
    observations = drop(observations, _summaries_of_case_patients(cases, observations), "summary",
                        SAME_PATIENTS_AS_CASES)
    audit = pd.concat(audits, ignore_index=True) if audits else tables.frame(tables.MODEL_AUDIT)
    return cases, observations, audit


def _summaries_of_case_patients(cases: pd.DataFrame, observations: pd.DataFrame) -> pd.Series:
    """Summary observations of a study's intervention and marker that the same study also
    reports patient by patient (after the analysis' filters): a case series' mean change is a
    summary of its own cases, so only the case rows enter."""
    keys = ["study_id", "intervention", "marker"]
    if cases.empty or observations.empty:
        return pd.Series(False, index=observations.index)
    in_cases = pd.MultiIndex.from_frame(observations[keys]).isin(pd.MultiIndex.from_frame(cases[keys]))
    return pd.Series(in_cases, index=observations.index)


def _coords(cases: pd.DataFrame, observations: pd.DataFrame) -> dict[str, list[str]]:
    both = stacked_rows(cases, observations, ["study_id", "intervention", "marker", "population", "co_interventions"])
    markers = sorted(set(both["marker"]), key=lambda m: (on_difference_scale(m), m))
    populations = sorted(set(both["population"]))
    if REFERENCE_POPULATION in populations:
        populations.remove(REFERENCE_POPULATION)
        populations.insert(0, REFERENCE_POPULATION)
    co = sorted({name for text in both["co_interventions"] for name in text.split(";") if name})
    study_marker = sorted(set(both["study_id"] + "|" + both["marker"]))
    return {
        "intervention": sorted(set(both["intervention"])),
        "marker": markers,
        "lab_marker": [m for m in markers if not on_difference_scale(m)],
        "study": sorted(set(both["study_id"])),
        "study_marker": study_marker,
        "population": populations,
        "population_shifted": populations[1:],
        "family": list(MODEL_FAMILY.values()),
        "co_intervention": co,
        "case": [str(i) for i in range(len(cases))],
        "summary": [str(i) for i in range(len(observations))],
    }


def _population_shift_identified(cases: pd.DataFrame, observations: pd.DataFrame) -> bool:
    """Whether the data themselves can separate a population shift from intervention effects.

    That needs one intervention observed in two populations for the same marker family (log
    ratio or temperature). Without it, a shift is confounded with the intervention effects and
    only its prior tells them apart: the posterior is a ridge that samples badly and says nothing
    the data do. ``auto`` then leaves the covariate out; each estimate still names its populations.
    """
    pairs = stacked_rows(cases, observations, ["intervention", "marker", "population"])
    pairs["family"] = pairs["marker"].map(model_family)
    populations = pairs.groupby(["intervention", "family"])["population"].nunique()
    return bool((populations > 1).any())
