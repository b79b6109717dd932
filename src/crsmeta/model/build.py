"""The hierarchical PyMC model of before/after changes (docs/model.md writes it out).

The model is the one docs/model.md states; the coordinates it is sampled in are chosen for NUTS:

- θ is the sum of orthogonal, identified parts (grand mean, sum-to-zero intervention, marker and
  interaction parts, PyMC's ``ZeroSumNormal``) whose scales give every θ[i, m] exactly the prior
  of μ + α[i] + β[m] + γ[i, m]; the additive form's unidentified directions are gone;
- a study's effect u[study, marker] is integrated out analytically wherever all its rows are
  Gaussian given u (exact case changes under the normal likelihood, summary rows with a known or
  ρ-dependent SE): those rows are multivariate normal with τ² on the shared part, so τ has no
  funnel there. u stays explicit (non-centred) only in studies with a censored, Student-t or
  learned-SE row.

Every array taken from the data enters the graph as data (``pm.Data``), never as a constant, and
every length as a dimension of the model: the compiled code then depends on the model's structure
alone, not on the values or the number of rows, so leave-one-study-out, the other sensitivity
analyses and a rerun after adding a study load the code compiled before from the cache instead of
compiling for minutes (a cold compile of the bundled model takes ~3 minutes on one core). The
structure is decided by every row before an analysis' data filters (``ModelData.before_filters``):
its levels (interventions, markers with their sum-to-zero parts, the markers whose rows read a
baseline log-SD ``baseline_sd``, :func:`_cohort_ratio_moments`) and the kinds of row (Gaussian,
censored, learned-SE; integrated, conditioned and explicit study effects: :func:`model_terms`) with
a term, empty in an analysis without such rows. ρ is in every model (its prior alone when no row is
known by its SDs). So an analysis that leaves studies or kinds of row out keeps the main model's
structure, unless a row it keeps needs a term the main rows do not (a row left alone in its
marker, whose τ is then integrated out). What else changes the structure: the likelihood, the
covariates switched on, and a study that adds a level or the first row of a kind.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from pymc.logprob.transforms import Transform

from crsmeta import cohort_log_ratio, cv_shift, mean_spread, median_spread
from crsmeta.comparisons import SE_REPORTED
from crsmeta.model.data import (
    CENSOR_CODES, LEARNED_METHODS, SE_AS_PRIOR_METHODS, ModelData, baseline_spread_groups, known_by_their_sds,
    on_difference_scale, ratio_of_levels, reads_baseline_sd, se_learned_from_sigma, shifted_by_their_cvs,
    summary_medians,
)
from crsmeta.model.integrated_normal import LOG_2PI, log_integrated_normal
from crsmeta.model.ordered_shapes import order_broadcast_shape_checks
from crsmeta.model.settings import ModelSettings

# Grid on z = log(x − x0) for integrating a learned se² out (x = b/se²): the integrand is smooth
# in z, each of its modes at least ~0.5 wide, so the trapezoid rule at this spacing is exact to
# rounding over residuals up to ~1e5 prior SEs (tests/test_model_build.py). The grid is fixed, not
# centred on the integrand's mode: with an added variance V the integrand can have two modes (a
# residual far beyond √V explained by a large se², or se² at its prior and the residual left to
# V), and a grid that followed one of them missed the other by up to 100 log units.
LOG_GRID_STEP = 0.25
LOG_GRID = np.arange(-23.0, 4.5, LOG_GRID_STEP)
# Grid on log(τ/scale) for integrating τ[marker] out where one row alone is its data
# (:func:`_tau_integrated_rows`), up to 20 prior scales (beyond, both priors' mass is below 1e-80)
# and down to where the prior's mass below is negligible: 1e-4 scales for the half-normal (mass
# 8e-5 below), 2e-3 for the Gamma(2), whose density vanishes at 0 (mass 8e-6 below). Each point
# costs an se² integral per row and gradient, so both grids are coarse here (τ and z spacing 0.5;
# with 41 × 110 points on four rows the bundled main fit sampled in 887 s on a loaded machine),
# and the se² path stops at z = −12 (se² = 1.6e5 b, where se²'s prior mass is 4e-17: a residual
# that needs more is absorbed by τ). Against quadrature the log-likelihood is within 2e-4 at σ from
# 0.05 to 0.7 and within 0.034 at a residual of 3 log units with σ = 2 (tests/test_model_build.py):
# a smooth error in the log density, far below its spread. The Gamma grid and the shorter se² path
# (19 × 33 points against 25 × 55) moved the integral by at most 1.2e-4 at residuals below 2 log
# units and 7e-3 up to 12.
TAU_LOG_GRID_STEP = 0.5
TAU_LOG_GRID_LOWER = {"gamma": np.log(2e-3), "halfnormal": np.log(1e-4)}
TAU_LOG_GRID_UPPER = np.log(20.0)
TAU_PATH_LOG_GRID = LOG_GRID[LOG_GRID >= -12.0][::2]
BASELINE_MARKER = "baseline_marker"  # the markers with a baseline log-SD s (:func:`_cohort_ratio_moments`)
BASELINE_SPREAD_GROUP = "baseline_spread_group"  # studies printing their patients' levels of such a marker


def tau_log_grid(tau_prior_family: str, step: float = TAU_LOG_GRID_STEP) -> np.ndarray:
    """The points of log(τ/scale) at which τ is integrated out under the prior ``tau_prior_family``."""
    return np.arange(TAU_LOG_GRID_LOWER[tau_prior_family], TAU_LOG_GRID_UPPER, step)

order_broadcast_shape_checks()  # one graph, one cache key, in every process

# Each built model's log-likelihood per study, a graph of its random variables kept beside the
# model (not in its log density): leave-one-study-out weights the main fit's draws by it.
_STUDY_LOG_LIKELIHOOD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# Each built model's τ-integrated rows (IntegratedTau, one per kind of row), for drawing τ after sampling.
_INTEGRATED_TAU: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# The deterministics that carry IntegratedTau.draw_values (of learned-SE rows; of exact case
# changes); dropped once τ is drawn
INTEGRATED_TAU_DRAW_PREFIX = "tau_integrated_draw_"
INTEGRATED_TAU_CASE_DRAW_PREFIX = "tau_integrated_case_draw_"
INTEGRATED_TAU_DRAW_PREFIXES = (INTEGRATED_TAU_DRAW_PREFIX, INTEGRATED_TAU_CASE_DRAW_PREFIX)
# a likelihood term's values and the study-marker group (index into coords["study_marker"]) of each
LikelihoodTerm = tuple[pt.TensorVariable, np.ndarray]


def build_model(data: ModelData, settings: ModelSettings) -> pm.Model:
    """Effects θ[intervention, marker], study effects, case- and summary-level likelihoods."""
    with pm.Model(coords=data.coords) as model:
        theta = _effects(data, settings)
        tau = _tau(data, settings)
        # pm.Data: the analyses that only rescale this prior compile to the same (cached) code
        distribution, parameters = sigma_prior(_data("sigma_prior_mean", sigma_prior_mean(data, settings)))
        sigma = distribution("sigma", **parameters, dims="marker", default_transform=SoftplusVariance())
        covariates = _covariates(data, settings)
        layout = _RowLayout.of(data, settings)
        rows = _Rows(data, settings, layout, theta, sigma, covariates)
        terms = _likelihood(data, settings, rows, tau, model_terms(data, settings, layout))
        terms += _baseline_spread(data)
    _STUDY_LOG_LIKELIHOOD[model] = _per_study(data, terms)
    return model


def study_log_likelihood(model: pm.Model) -> tuple[pt.TensorVariable, list[str]]:
    """The log-likelihood of each study's rows given the model's random variables, and the
    studies in its order. The terms are those of the model's log density (study effects integrated
    out within a study stay integrated out), so they sum to its log-likelihood, except in a row
    whose τ the log density integrates out (:func:`_tau_integrated_rows`): its term is taken at
    the draw's τ, so that the terms are the likelihood of the joint posterior the draws are from."""
    return _STUDY_LOG_LIKELIHOOD[model]


def _per_study(data: ModelData, terms: list[LikelihoodTerm]):
    """Sum likelihood terms, each a vector with the study-marker group of each element, by study."""
    studies = data.coords["study"]
    study_of_group = np.array([studies.index(label.split("|", 1)[0]) for label in data.coords["study_marker"]])
    total = pt.zeros(len(studies))
    for values, group in terms:
        total = pt.inc_subtensor(total[study_of_group[group]], values)
    return total, studies


def _tau(data: ModelData, settings: ModelSettings) -> pt.TensorVariable:
    """Between-study SD per marker: Gamma(2, 2/scale) (boundary-avoiding, mean = scale; Chung
    et al. 2013) by default, HalfNormal(scale) on request. A marker reported by one study has a
    τ informed by its prior only; the Gamma keeps NUTS out of the τ → 0 funnel there."""
    # pm.Data: the analyses that only rescale this prior compile to the same (cached) code
    scale = pm.Data("tau_prior_scale", tau_prior_scale(data, settings), dims="marker")
    distribution, parameters = tau_prior(settings, scale)
    return distribution("tau", **parameters, dims="marker")


def tau_prior_scale(data: ModelData, settings: ModelSettings) -> np.ndarray:
    """The scale of τ's prior for each marker (lab markers and temperature have their own)."""
    return _by_family(data, settings.tau_sd, settings.temp_tau_sd)


def tau_prior(settings: ModelSettings, scale) -> tuple[type[pm.Distribution], dict]:
    """τ's prior family and parameters at ``scale`` (the model's, and the reweighting's)."""
    if settings.tau_prior == "halfnormal":
        return pm.HalfNormal, {"sigma": scale}
    return pm.Gamma, {"alpha": 2.0, "beta": 2.0 / scale}


class SoftplusVariance(Transform):
    """σ sampled as x with σ² = softplus(x) = log(1 + eˣ), instead of log σ.

    Near σ = 0 this is log-like (σ² ≈ eˣ), so no funnel opens at the boundary; for large σ, σ² is
    close to x itself. Where only a marker's mean ± SD rows inform it, σ enters their means through
    the CV shift's correction b(σ), close to 0.23·σ² beyond σ = 1 (crsmeta.cv_shift), and the
    posterior lies along θ ≈ y − shift − b(σ): a ridge that, in log σ, curves ever more steeply as
    σ grows (divergent transitions in 27 of 100 SBC datasets of the `sd` route), and in these
    coordinates is nearly straight. The prior and posterior of σ are unchanged; only the sampler's
    coordinate is (docs/model.md, "Its small-sample correction").
    """

    name = "softplus_variance"

    def forward(self, value, *inputs):
        return pt.log(pt.expm1(value**2))

    def backward(self, value, *inputs):
        return pt.sqrt(pt.softplus(value))

    def log_jac_det(self, value, *inputs):
        """log |dσ/dx| = log σ'(x) − log 2 − ½ log softplus(x), with σ'(x) the logistic function."""
        return -pt.softplus(-value) - np.log(2.0) - 0.5 * pt.log(pt.softplus(value))


def sigma_prior_mean(data: ModelData, settings: ModelSettings) -> np.ndarray:
    """The prior mean of σ (the SD of patients' changes) for each marker."""
    return _by_family(data, settings.sigma_sd, settings.temp_sigma_sd)


def baseline_sd_prior_mean(markers: Sequence[str], settings: ModelSettings) -> np.ndarray:
    """The prior mean of s, the SD of the baseline level across patients (of its log; of °C for
    temperature), for each of ``markers``."""
    return np.array([settings.temp_baseline_sd if on_difference_scale(m) else settings.baseline_sd for m in markers])


def sigma_prior(mean) -> tuple[type[pm.Distribution], dict]:
    """σ's prior: Gamma(2, 2/mean), boundary-avoiding (a summary row whose SD is learned has no
    funnel at σ = 0), the model's and the reweighting's."""
    return pm.Gamma, {"alpha": 2.0, "beta": 2.0 / mean}


def correlation_prior(alpha_beta) -> tuple[type[pm.Distribution], dict]:
    """ρ's prior, Beta(a, b), the pre/post correlation of rows known by their SDs."""
    return pm.Beta, {"alpha": alpha_beta[0], "beta": alpha_beta[1]}


def _by_family(data: ModelData, lab: float, temperature: float) -> np.ndarray:
    return np.array([temperature if on_difference_scale(m) else lab for m in data.coords["marker"]])


# The interaction's coordinates lie halfway between centred (1: sample γ ~ ZeroSumNormal(σ_γ)) and
# non-centred (0: sample Z ~ ZeroSumNormal(1), γ = σ_γ·Z), a partial non-centring (Papaspiliopoulos,
# Roberts & Sköld 2007): γ = σ_γ^(1−c)·Z̃ with Z̃ ~ ZeroSumNormal(σ_γ^c), the same prior of γ for any c.
# Non-centred, a well-informed interaction is a curved ridge σ_γ·Z = γ (divergences at large σ_γ);
# centred, a weakly informed one is a funnel at small σ_γ. Half-way (0.5) cut the divergent transitions
# of the SYNTHETIC SBC datasets that diverged through the interaction fourfold, but in a fresh-clone
# run of the bundled data it left loo_Supady2021_CYCOV short of its gate (tail ESS < 400 at 4000
# draws, mostly interaction parameters), so the default stays non-centred (docs/validation.md, section 1).
INTERACTION_CENTRING = 0.0


def _effects(data: ModelData, settings: ModelSettings) -> pt.TensorVariable:
    """θ: additive intervention + marker effects with a pooled interaction; temperature apart.

    The prior is that of θ[i, m] = μ + α[i] + β[m] + γ[i, m] with μ ~ N(0, g²), α ~ N(0, a²),
    β ~ N(0, b²), γ ~ N(0, σ_γ²) (I interventions, M lab markers), written in its orthogonal
    parts: the grand mean θ̄ ~ N(0, g² + a²/I + b²/M + σ_γ²/(IM)), the intervention part (row
    means − θ̄) ~ ZeroSumNormal(√(a² + σ_γ²/M)), the marker part ~ ZeroSumNormal(√(b² + σ_γ²/I))
    and the interaction ~ ZeroSumNormal(σ_γ) over both axes. The four are independent and sum to
    θ, so θ's prior is unchanged while only identified directions are sampled.
    """
    lengths = pm.modelcontext(None).dim_lengths
    n_int = lengths["intervention"]
    blocks = []
    if data.lab_markers:
        n_lab = lengths["lab_marker"]
        # boundary-avoiding Gamma(2, 2/mean) (Chung et al. 2013): with few cells a HalfNormal
        # puts mass at 0 where the non-centred interaction mixes slowly
        sigma_gamma = pm.Gamma("sigma_gamma", alpha=2.0, beta=2.0 / settings.interaction_sd)
        g2, a2, b2, s2 = (settings.grand_mean_sd**2, settings.intervention_sd**2, settings.marker_sd**2,
                          sigma_gamma**2)
        grand = pm.Normal("theta_grand_mean", 0.0, pt.sqrt(g2 + a2 / n_int + b2 / n_lab + s2 / (n_int * n_lab)))
        by_intervention = _zero_sum("theta_intervention", pt.sqrt(a2 + s2 / n_lab), ("intervention",))
        by_marker = _zero_sum("theta_marker", pt.sqrt(b2 + s2 / n_int), ("lab_marker",))
        interaction = sigma_gamma ** (1.0 - INTERACTION_CENTRING) * _zero_sum(
            "theta_interaction_partial", sigma_gamma**INTERACTION_CENTRING, ("intervention", "lab_marker"))
        blocks.append(grand + by_intervention[:, None] + by_marker[None, :] + interaction)
    if data.has_temperature:
        t2, ta2 = settings.temp_mean_sd**2, settings.temp_intervention_sd**2
        grand_temp = pm.Normal("theta_temp_grand_mean", 0.0, pt.sqrt(t2 + ta2 / n_int))
        by_intervention_temp = _zero_sum("theta_temp_intervention", np.sqrt(ta2), ("intervention",))
        blocks.append((grand_temp + by_intervention_temp)[:, None])
    return pm.Deterministic("theta", pt.concatenate(blocks, axis=1), dims=("intervention", "marker"))


def theta_prior_sd(settings: ModelSettings, difference_scale: bool) -> float:
    """The prior SD of one cell's θ[i, m] (:func:`_effects`), whatever the numbers of levels.

    Lab markers: √(g² + a² + b² + E[σ_γ²]), with E[σ_γ²] = 1.5 · interaction_sd² under
    σ_γ ~ Gamma(2, 2/interaction_sd) (its variance interaction_sd²/2 plus its mean squared); the
    sum-to-zero parts add up to this for any I and M, one level included. Temperature
    (``difference_scale``): √(temp_mean_sd² + temp_intervention_sd²). θ's prior is a scale
    mixture over σ_γ, not a Normal: this is its SD, not the scale of a Gaussian.
    """
    if difference_scale:
        return float(np.hypot(settings.temp_mean_sd, settings.temp_intervention_sd))
    return float(np.sqrt(settings.grand_mean_sd**2 + settings.intervention_sd**2 + settings.marker_sd**2
                         + 1.5 * settings.interaction_sd**2))


def _zero_sum(name: str, sigma, dims: tuple[str, ...]) -> pt.TensorVariable:
    """A sum-to-zero part over ``dims``; with a single level on an axis that part is 0."""
    model = pm.modelcontext(None)
    if any(len(model.coords[dim]) < 2 for dim in dims):
        return pt.zeros(tuple(model.dim_lengths[dim] for dim in dims))
    return pm.ZeroSumNormal(name, sigma=sigma, dims=dims, n_zerosum_axes=len(dims))


def _covariates(data: ModelData, settings: ModelSettings) -> dict[str, pt.TensorVariable]:
    """Population shift per marker family, co-intervention, grade and baseline-level coefficients
    (if switched on)."""
    terms: dict[str, pt.TensorVariable] = {}
    if data.use_population:
        shift = pm.Normal("population_shift", 0.0, settings.covariate_sd, dims=("population_shifted", "family"))
        terms["population"] = pm.Deterministic(
            "population_effect", pt.concatenate([pt.zeros((1, 2)), shift], axis=0), dims=("population", "family"))
    if data.use_co_interventions:
        terms["co"] = pm.Normal("co_intervention_effect", 0.0, settings.covariate_sd,
                                dims=("co_intervention", "family"))
    if data.use_grade:
        terms["grade"] = pm.Normal("grade_effect", 0.0, settings.covariate_sd, dims="family")
    if data.use_baseline:
        # change per unit of the centred baseline level (log scale for markers, °C for temperature)
        terms["baseline"] = pm.Normal("baseline_effect", 0.0, settings.covariate_sd, dims="family")
    return terms


def _linear_predictor(data: ModelData, frame: pd.DataFrame, theta, covariates, *, prefix: str):
    """θ[i, m] + covariates for each row of ``frame`` (the study effect is added by the caller)."""
    dim = prefix
    family_index = data.family_index(frame)
    cell = data.index(frame, "intervention", "intervention") * len(data.coords["marker"]) + data.index(
        frame, "marker", "marker")
    mu = _cells(theta, pm.Data(f"{prefix}_cell_idx", cell, dims=dim))
    if "population" in covariates:
        population_cell = data.index(frame, "population", "population") * len(data.coords["family"]) + family_index
        mu = mu + _cells(covariates["population"], pm.Data(f"{prefix}_population_cell_idx", population_cell, dims=dim))
    family = pm.Data(f"{prefix}_family_idx", family_index, dims=dim)
    if "co" in covariates:
        x = pm.Data(f"{prefix}_co_interventions", data.co_intervention_matrix(frame), dims=(dim, "co_intervention"))
        mu = mu + (x * covariates["co"][:, family].T).sum(axis=1)
    if "baseline" in covariates:
        baseline = pm.Data(f"{prefix}_baseline", data.centred_baseline(frame), dims=dim)
        mu = mu + baseline * covariates["baseline"][family]
    if "grade" in covariates and prefix == "case":
        grade = pm.Data("case_grade", data.centred_grade(), dims=dim)
        mu = mu + grade * covariates["grade"][family]
    return mu


def _cells(table, flat_index):
    """``table[a, b]`` for pairs given as one index into the flattened table.

    Two index vectors of unknown length make PyTensor build their broadcast check from a set of
    variables, whose order (and so the compiled graph's cache key) changes from process to process.
    """
    return table.reshape((-1,))[flat_index]


def _data(name: str, value) -> pt.TensorVariable:
    """``value`` as data the compiled code reads when it runs (see the module docstring)."""
    return pm.Data(name, np.asarray(value))


@dataclasses.dataclass
class _Selected:
    """Some of the rows: their positions and groups for building the model, and the same
    positions, groups and observed values as model data."""

    positions: np.ndarray
    group: np.ndarray
    index: pt.TensorVariable
    group_index: pt.TensorVariable
    y: pt.TensorVariable | None


# the kinds of row (_Rows.kind), each with its own likelihood
ROW_KINDS = ("gaussian", "student_t", "censored", "learned", "learned_alone", "gaussian_alone")


@dataclasses.dataclass(frozen=True)
class _RowLayout:
    """How each row enters the likelihood, decided by the data alone (case rows first, then
    summary rows): its kind (:class:`_Rows`), study-marker group and marker, and whether its
    study effect u stays explicit (``needs_u``, per group; :func:`_likelihood`)."""

    n_cases: int
    kind: np.ndarray
    group: np.ndarray
    marker: np.ndarray
    needs_u: np.ndarray
    learned_floor: bool  # a learned-SE row of kind "learned" has a floor on se² ("p > x")

    @property
    def explicit(self) -> np.ndarray:
        return self.needs_u[self.group]

    @classmethod
    def of(cls, data: ModelData, settings: ModelSettings) -> _RowLayout:
        cases, obs = data.cases, data.observations
        n_cases = len(cases)
        group = np.concatenate([data.study_marker_index(cases), data.study_marker_index(obs)]).astype(int)
        marker = np.concatenate([data.index(cases, "marker", "marker"), data.index(obs, "marker", "marker")]).astype(int)
        exact_kind = "gaussian" if settings.likelihood == "normal" else "student_t"
        se_as_prior = obs["method"].isin(SE_AS_PRIOR_METHODS).to_numpy()
        learned = obs["method"].isin(LEARNED_METHODS).to_numpy() | se_as_prior
        kind = np.concatenate([np.where(cases["censoring"].to_numpy() == "none", exact_kind, "censored"),
                               np.where(learned, "learned", "gaussian")]).astype(object)
        # a learned-SE row that is its marker's only row, with se²'s prior mean ∝ σ² and no floor
        # on se²: τ[marker] is then integrated out in it (:func:`_tau_integrated_rows`)
        alone = np.bincount(marker, minlength=len(data.coords["marker"]))[marker] == 1
        floor = np.concatenate([np.zeros(n_cases, dtype=bool), obs["se_lower"].to_numpy(dtype=float) > 0])
        can_vanish = np.concatenate([np.zeros(n_cases, dtype=bool), ~se_as_prior]) & ~floor
        kind[(kind == "learned") & alone & can_vanish] = "learned_alone"
        # exact case changes that are all of their marker's rows, and one study's (a case report,
        # or a case series of a marker no other study has): σ and τ of that marker are informed by
        # them alone, the same vanishing width (:func:`_tau_integrated_case_rows`)
        is_case = np.arange(len(kind)) < n_cases
        kind[(kind == "gaussian") & is_case & _all_of_marker_in_one_group(
            marker, group, (kind == "gaussian") & is_case)] = "gaussian_alone"
        # a group of exact case changes with τ integrated out is one term (_tau_integrated_case_rows)
        gaussian = kind == "gaussian"
        needs_u = np.bincount(group[~gaussian & (kind != "gaussian_alone")],
                              minlength=len(data.coords["study_marker"])) > 1
        needs_u[group[kind == "student_t"]] = True
        return cls(n_cases=n_cases, kind=kind, group=group, marker=marker, needs_u=needs_u,
                   learned_floor=bool((floor & (kind == "learned")).any()))

    def terms(self) -> frozenset[str]:
        """The likelihood terms these rows need: ``marginal`` (groups integrated out), ``single``
        (rows conditioned on their group's Gaussian rows), ``explicit`` (study effects kept), each
        kind of row with a term of its own, and ``learned_floor``."""
        gaussian, explicit = self.kind == "gaussian", self.explicit
        present = {"marginal": (~explicit & gaussian).any(), "single": (~explicit & ~gaussian).any(),
                   "explicit": explicit.any(), "learned_floor": self.learned_floor}
        return frozenset({name for name, there in present.items() if there} | set(self.kind[explicit | ~gaussian]))


def model_terms(data: ModelData, settings: ModelSettings, layout: _RowLayout) -> frozenset[str]:
    """The likelihood terms of the model of ``data`` (whose rows' ``layout`` is given): those its
    rows need and those every row before the analysis' data filters needs (empty here), so that an
    analysis leaving rows out keeps the main model's structure and compiled code, unless its rows
    need a term the main rows do not (say, a row left alone in its marker, whose τ is then
    integrated out)."""
    if data.unfiltered is None:
        return layout.terms()
    return layout.terms() | _RowLayout.of(data.unfiltered, settings).terms()


class _Rows:
    """Every row's mean without the study effect, its variance where Gaussian, and its kind.

    Case rows first, then summary rows. ``kind`` is ``gaussian`` (Normal given u with a variance
    in ``variance``), ``censored`` (a case change known only within bounds), ``student_t`` (an
    exact case change under the Student-t likelihood), ``learned`` (a summary row whose se² is
    integrated out) or ``learned_alone`` (such a row, its marker's only one, whose se² can
    vanish with σ: τ[marker] is integrated out in it as well), ``gaussian_alone`` (exact case
    changes under the normal likelihood that are all of their marker's rows and one study's,
    whose variance σ² can vanish too: τ[marker] is integrated out of their mean).
    """

    def __init__(self, data: ModelData, settings: ModelSettings, layout: _RowLayout, theta, sigma,
                 covariates) -> None:
        cases, obs = data.cases, data.observations
        self.n_cases = layout.n_cases
        self.y = np.concatenate([cases["change"].to_numpy(dtype=float), obs["y"].to_numpy(dtype=float)])
        self.group, self.marker, self.kind = layout.group, layout.marker, layout.kind
        self.needs_u, self.explicit = layout.needs_u, layout.explicit
        self.case_code = cases["censoring"].map(CENSOR_CODES).to_numpy(dtype=int)
        self.case_marker = self.marker[:self.n_cases]
        case_mean = _linear_predictor(data, cases, theta, covariates, prefix="case")
        case_variance = sigma[_data("case_marker_idx", self.case_marker)] ** 2
        summary_mean, summary_variance, self.learned_mean_variance = _summary_moments(
            data, settings, _linear_predictor(data, obs, theta, covariates, prefix="summary"), sigma)
        self.mean = pt.concatenate([case_mean, summary_mean])
        self.variance = pt.concatenate([case_variance, summary_variance])
        self.sigma = sigma

    def select(self, name: str, positions: np.ndarray, observed: bool = True) -> _Selected:
        """The rows at ``positions``, as data named after ``name`` (their values only when
        ``observed``: a censored change has none)."""
        group = self.group[positions]
        return _Selected(positions=positions, group=group, index=_data(f"{name}_rows", positions),
                         group_index=_data(f"{name}_group_idx", group),
                         y=_data(f"{name}_y", self.y[positions]) if observed else None)

    def case_sigma(self, name: str, positions: np.ndarray):
        """σ[marker] of the case rows at ``positions``."""
        return self.sigma[_data(f"{name}_marker_idx", self.case_marker[positions])]


def _all_of_marker_in_one_group(marker: np.ndarray, group: np.ndarray, taken: np.ndarray) -> np.ndarray:
    """For each row: are all rows of its marker ``taken`` and in one study-marker group?"""
    rows_of_marker = np.bincount(marker)
    taken_of_marker = np.bincount(marker[taken], minlength=rows_of_marker.size)
    groups_of_marker = np.bincount(np.unique(np.column_stack([marker, group]), axis=0)[:, 0],
                                   minlength=rows_of_marker.size)
    return ((taken_of_marker == rows_of_marker) & (groups_of_marker == 1))[marker]


def _summary_moments(data: ModelData, settings: ModelSettings, mu, sigma):
    """Mean, variance (Gaussian rows) and prior mean of se² (learned rows) of each summary row.

    A log ratio of arithmetic means of log-normal levels estimates θ + (s_post² − s_pre²)/2 (s the
    SD of the log level): the row's ``mean_shift``, from its own CVs, where both sides' SDs were
    printed, plus what such a shift falls short by in a sample of n at σ[marker]
    (:mod:`crsmeta.cv_shift`); elsewhere σ[marker]²/2, which it equals when a patient's
    change is independent of the baseline level (the model's patient-level assumption), plus, for
    a ratio of two cohorts' means, what the log of a sample mean falls short by at the baseline
    log-SD s[marker] (:func:`_cohort_ratio_moments`). The row's mean is shifted by
    mean_weight times it; an unstated statistic (mean_weight 0.5) adds the variance of that
    unknown shift, 0.25 · shift². Rows known by their dispersions have the variance of those and
    ρ (:func:`summary_change_variance`), times κ for their estimated d: κ(n) for a change of medians
    with their quantiles (:mod:`crsmeta.median_spread`), κ(n, λ, r) at the row's r for one of means with their SDs
    (:mod:`crsmeta.mean_spread`) unless shifted by its CVs. A change printed with its SE has
    that SE² times κ(n) (:func:`_reported_se_inflation`). A row shifted by its CVs averaged with the one
    simulated at σ[marker] (:func:`cv_shifted_row_variance`). A learned se²'s prior mean is the simulated variance of such a
    ratio (and of temperature's difference of two medians) at s[marker] and σ[marker],
    σ[marker]²·efficiency/n for temperature's other rows.
    """
    obs = data.observations
    n = _data("summary_n", obs["n_effective"].to_numpy(dtype=float))  # below n for a cohort total
    efficiency = _data("summary_efficiency", obs["efficiency"].to_numpy(dtype=float))
    weight = _data("summary_mean_weight", obs["mean_weight"].to_numpy(dtype=float))
    sigma_row = sigma[_data("summary_marker_idx", data.index(obs, "marker", "marker"))]
    printed_shift = obs["mean_shift"].to_numpy(dtype=float)
    cv_shift_bias, cv_shift_variance = _cv_shift_tables(obs)
    bias_of_printed_shift = cv_shift_at(_data("summary_cv_shift_bias", cv_shift_bias), sigma_row)
    se_as_prior = obs["method"].isin(SE_AS_PRIOR_METHODS).to_numpy()
    medians_flag = summary_medians(obs)
    ratio_bias, ratio_variance, reads_ratio_variance = _cohort_ratio_moments(data, settings, obs, sigma_row)
    shift = pt.switch(pt.gt(_data("summary_shift_printed", np.isfinite(printed_shift).astype(float)), 0.0),
                      _data("summary_mean_shift", np.nan_to_num(printed_shift)) + bias_of_printed_shift,
                      sigma_row**2 / 2 + ratio_bias)
    mean = mu + weight * shift
    extra = _data("summary_extra_var", obs["extra_var"].to_numpy(dtype=float)) + weight * (1 - weight) * shift**2
    se_known = _data("summary_se_known", np.nan_to_num(obs["se_known"].to_numpy(dtype=float)
                                                       * np.sqrt(_reported_se_inflation(obs))))
    variance = se_known**2 + extra
    corr_prior = pm.Data("corr_prior", np.array(settings.corr_prior, dtype=float))  # as tau_prior_scale
    distribution, parameters = correlation_prior(corr_prior)
    rho = distribution("rho", **parameters)  # its prior alone when no row is known by its SDs
    # every row, with a flag, rather than the rows known by their SDs set into the vector: with one
    # such row, PyTensor's Python implementation of that set (the mode without a C compiler)
    # refuses it as broadcasting (pytensor 2.38, AdvancedIncSubtensor1._check_runtime_broadcasting)
    known_by_sds = known_by_their_sds(obs)
    d_pre = _data("summary_disp_pre", np.where(known_by_sds, obs["disp_pre"].to_numpy(dtype=float), 0.0))
    d_post = _data("summary_disp_post", np.where(known_by_sds, obs["disp_post"].to_numpy(dtype=float), 0.0))
    medians = _data("summary_medians", medians_flag.astype(float))
    quantile_variance_factor, quantile_correlation, from_quantiles = _median_difference_tables(obs, medians_flag)
    correlation = pre_post_correlation(rho, medians, _data("summary_quantile_correlation", quantile_correlation),
                                       _data("summary_from_quantiles", from_quantiles.astype(float)))
    # means of a log-ratio marker with their SDs: d is each side's CV, and the levels, not their
    # logs, correlate (CV 1 where a row is not one, so no branch divides by 0); a term of the
    # model when a row before the analysis' filters is one, as the other terms are
    if _means_with_cvs(data.before_filters.observations).any():
        of_log_normal_means = _means_with_cvs(obs)
        cv_pre, cv_post = (_data(f"summary_cv_{side}",
                                 np.where(of_log_normal_means, obs[f"disp_{side}"].to_numpy(dtype=float), 1.0))
                           for side in ("pre", "post"))
        correlation = pt.switch(pt.gt(_data("summary_log_normal_means", of_log_normal_means.astype(float)), 0.0),
                                log_normal_levels_correlation(rho, cv_pre, cv_post), correlation)
    of_means = obs["efficiency"].to_numpy(dtype=float)
    efficiency_of_sds = _data("summary_efficiency_of_sds", np.where(from_quantiles, quantile_variance_factor, of_means))
    # means with their printed SDs: times κ(n, λ, r) at the row's r, a term of the model when a row
    # before the analysis' filters is one (:func:`_sd_inflation_tables`)
    if _by_printed_sds(data.before_filters.observations).any():
        inflation = row_tables_at(_data("summary_sd_inflation", _sd_inflation_tables(obs)),
                                  mean_spread.CORRELATION_GRID, correlation)
        efficiency_of_sds = efficiency_of_sds * inflation
    of_sds = efficiency_of_sds * summary_change_variance(d_pre, d_post, correlation) / n
    variance = pt.switch(pt.gt(_data("summary_known_by_sds", known_by_sds.astype(float)), 0.0), of_sds + extra, variance)
    # means with both sides' SDs, shifted by their CVs (:func:`cv_shifted_row_variance`), a term of
    # the model when a row before the analysis' filters is one
    if shifted_by_their_cvs(data.before_filters.observations).any():
        simulated = cv_shift_at(_data("summary_cv_shift_variance", cv_shift_variance), sigma_row)
        variance = pt.switch(pt.gt(_data("summary_shifted_by_cvs", shifted_by_their_cvs(obs).astype(float)), 0.0),
                             cv_shifted_row_variance(of_sds, simulated) + extra, variance)
    from_sigma = pt.switch(pt.gt(_data("summary_reads_ratio_variance", reads_ratio_variance.astype(float)), 0.0),
                           ratio_variance, efficiency * sigma_row**2 / n)
    se_as_prior_flag = _data("summary_se_as_prior", se_as_prior.astype(float))
    learned_mean_variance = pt.switch(pt.gt(se_as_prior_flag, 0.0), se_known**2, from_sigma) + extra
    return mean, variance, learned_mean_variance


def _cohort_ratio_moments(data: ModelData, settings: ModelSettings, obs: pd.DataFrame, sigma_row):
    """Per summary row, the bias b(s, σ, n) of its log ratio of means beyond σ²/2 and the variance
    of its log ratio of means or medians, or of temperature's difference of medians
    (:mod:`crsmeta.cohort_log_ratio`), at s[marker], the baseline log-SD across patients (SD in °C
    for temperature), and σ[marker] (0 where the row is not a ratio of levels), and
    which rows' learned se² is centred on that variance (the ratios among the rows whose se² is
    learned from σ).

    s gets a parameter (``baseline_sd``, Gamma(2, 2/mean) like σ, the mean
    :func:`baseline_sd_prior_mean`) only for the markers with such a row whose mean is shifted or
    whose se² is learned, before the analysis' data filters (an analysis that leaves such rows out
    keeps the main model's s): elsewhere nothing reads it.
    """
    reads_variance = ratio_of_levels(obs) & se_learned_from_sigma(obs)
    uses_baseline = reads_baseline_sd(obs)
    medians = summary_medians(obs)
    every = data.before_filters.observations
    reading = set(every.loc[reads_baseline_sd(every), "marker"])
    markers = [m for m in data.coords["marker"] if m in reading]
    if not markers:
        return pt.zeros(len(obs)), pt.zeros(len(obs)), reads_variance
    model = pm.modelcontext(None)
    model.add_coord(BASELINE_MARKER, markers)
    distribution, parameters = sigma_prior(_data("baseline_sd_prior_mean", baseline_sd_prior_mean(markers, settings)))
    baseline_sd = distribution("baseline_sd", **parameters, dims=BASELINE_MARKER)  # σ's family
    position = {m: k for k, m in enumerate(markers)}
    s_row = baseline_sd[_data("summary_baseline_idx", np.array([position.get(m, 0) for m in obs["marker"]], dtype=int))]
    bias_tables = np.zeros((len(obs), cohort_log_ratio.BASELINE_SD_GRID.size, cohort_log_ratio.CHANGE_SD_GRID.size))
    variance_tables = np.zeros_like(bias_tables)
    for k in np.flatnonzero(uses_baseline):
        bias_tables[k], variance_tables[k] = cohort_log_ratio.ratio_tables(obs["n_effective"].iloc[k], medians[k])
    per_sigma2 = sigma_row**2
    bias = per_sigma2 * _bilinear_at(_data("summary_ratio_bias", bias_tables), s_row, sigma_row)
    variance = per_sigma2 * _bilinear_at(_data("summary_ratio_variance", variance_tables), s_row, sigma_row)
    return bias, variance, reads_variance


def _baseline_spread(data: ModelData) -> list[LikelihoodTerm]:
    """The baseline levels a study prints patient by patient, as data on s[marker]: their sum of
    squares about the study's mean, s²·χ²(n − 1), i.e. Gamma((n − 1)/2, rate 1/(2s²))
    (:func:`crsmeta.model.data.baseline_spread_groups`). It is the likelihood of the levels with
    the study's mean level integrated out under a flat prior, so no mean level enters the model;
    the changes are independent of the levels (the model's patient-level assumption), so the two
    do not overlap. Only for markers with an s (:func:`_cohort_ratio_moments`): elsewhere nothing
    reads it. Present when a row before the analysis' data filters needs it (empty where its
    analysis leaves those rows out), as the other terms are."""
    model = pm.modelcontext(None)
    if BASELINE_MARKER not in model.coords:
        return []
    markers = list(model.coords[BASELINE_MARKER])

    def of_markers(cases: pd.DataFrame) -> pd.DataFrame:
        groups = baseline_spread_groups(cases)
        return groups[groups["marker"].isin(markers)].reset_index(drop=True)

    if of_markers(data.before_filters.cases).empty:
        return []
    groups = of_markers(data.cases)
    model.add_coord(BASELINE_SPREAD_GROUP, list(groups["study_id"] + "|" + groups["marker"]))
    position = {marker: k for k, marker in enumerate(markers)}
    s = model["baseline_sd"][_data("baseline_spread_marker_idx", groups["marker"].map(position).to_numpy(dtype=int))]
    sum_of_squares = _data("baseline_spread_sum_of_squares", groups["sum_of_squares"].to_numpy(dtype=float))
    degrees = _data("baseline_spread_df", (groups["n"] - 1).to_numpy(dtype=float))
    spread = pm.Gamma("baseline_spread", alpha=degrees / 2, beta=0.5 / s**2, observed=sum_of_squares,
                      dims=BASELINE_SPREAD_GROUP)
    return [(pm.logp(spread, sum_of_squares), data.study_marker_index(groups))]


def _bilinear_at(tables, s, sigma) -> pt.TensorVariable:
    """Each row's table (rows × BASELINE_SD_GRID × CHANGE_SD_GRID) at its (s, σ), bilinearly
    interpolated; the nearest edge beyond the grid (:func:`crsmeta.cohort_log_ratio.table_at`)."""
    s_grid, sigma_grid = cohort_log_ratio.BASELINE_SD_GRID, cohort_log_ratio.CHANGE_SD_GRID
    i, u = _grid_cell(s_grid, s)
    j, v = _grid_cell(sigma_grid, sigma)
    flat = tables.reshape((-1,))
    first = pt.arange(tables.shape[0]) * (s_grid.size * sigma_grid.size)

    def at(a, b):
        return flat[first + a * sigma_grid.size + b]

    return (1 - u) * ((1 - v) * at(i, j) + v * at(i, j + 1)) + u * ((1 - v) * at(i + 1, j) + v * at(i + 1, j + 1))


def _grid_cell(grid: np.ndarray, value) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """The index of the evenly spaced ``grid``'s cell holding ``value`` and the fraction of the way
    across it, for linear interpolation; the first or last cell's end beyond the grid."""
    position = pt.clip((value - grid[0]) / (grid[1] - grid[0]), 0.0, float(grid.size - 1))
    low = pt.minimum(pt.floor(position), grid.size - 2).astype("int64")
    return low, position - low


def _cv_shift_tables(obs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per summary row, what its CV-based shift falls short by and the variance of the shifted
    row at each σ of :data:`cv_shift.SIGMA_GRID` (:func:`cv_shift.cv_shift_tables`); zeros for
    rows whose shift does not come from both sides' printed CVs."""
    tables = np.zeros((2, len(obs), len(cv_shift.SIGMA_GRID)))
    for position, (_, row) in enumerate(obs.iterrows()):
        table = cv_shift.observation_tables(row)
        if table is not None:
            tables[:, position] = table
    return tables[0], tables[1]


def cv_shift_at(tables, sigma) -> pt.TensorVariable:
    """Each row's table (rows × :data:`crsmeta.cv_shift.SIGMA_GRID`) at its σ, linearly interpolated; constant
    beyond the grid's end."""
    return row_tables_at(tables, cv_shift.SIGMA_GRID, sigma)


def row_tables_at(tables, grid: np.ndarray, value) -> pt.TensorVariable:
    """Each row's table (rows × the evenly spaced ``grid``) at ``value`` (one, or one per row),
    linearly interpolated; constant beyond the grid's ends."""
    tables, value = pt.as_tensor_variable(tables), pt.as_tensor_variable(value)
    low, weight = _grid_cell(grid, value)
    first_of_row = pt.arange(tables.shape[0]) * len(grid)
    flat = tables.reshape((-1,))
    return (1 - weight) * flat[first_of_row + low] + weight * flat[first_of_row + low + 1]


def _median_difference_tables(obs: pd.DataFrame, medians: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per summary row, its finite-sample efficiency times its variance inflation κ(n) and its
    r(n, ρ) on :data:`median_spread.ROOT_ONE_MINUS_RHO_GRID`
    (:func:`median_spread.median_difference_terms`) where it is a change of medians whose
    dispersions come from their IQRs or ranges, and which rows those are; NaN and zeros elsewhere."""
    spread = obs["method"].map(median_spread.SPREAD_OF_METHOD)
    from_quantiles = _from_quantiles(obs, medians)
    inflated_efficiency = np.full(len(obs), np.nan)
    correlation = np.zeros((len(obs), median_spread.ROOT_ONE_MINUS_RHO_GRID.size))
    for position in np.flatnonzero(from_quantiles):
        efficiency, correlation[position], inflation = median_spread.median_difference_terms(
            obs["n_effective"].iloc[position], spread.iloc[position])
        inflated_efficiency[position] = efficiency * inflation
    return inflated_efficiency, correlation, from_quantiles


def _by_printed_sds(obs: pd.DataFrame) -> np.ndarray:
    """Summary rows known by their printed SDs (or SEs), neither by their quantiles (κ(n) of their
    own, :func:`_median_difference_tables`) nor shifted by their CVs, whose variance's simulated
    half already gives them nearly normal tails (docs/model.md, "Their estimated d")."""
    return known_by_their_sds(obs) & ~_from_quantiles(obs, summary_medians(obs)) & ~shifted_by_their_cvs(obs)


def _from_quantiles(obs: pd.DataFrame, medians: np.ndarray) -> np.ndarray:
    """Summary rows that are changes of ``medians`` whose dispersions come from their IQRs or ranges."""
    return (obs["method"].map(median_spread.SPREAD_OF_METHOD).notna() & medians).to_numpy()


def _sd_inflation_tables(obs: pd.DataFrame) -> np.ndarray:
    """Per summary row, κ(n, λ, r) on :data:`mean_spread.CORRELATION_GRID` (rows × grid) at its n
    and printed SD ratio λ for a row :func:`_by_printed_sds` (:func:`mean_spread.inflation_by_correlation`),
    1 elsewhere; the model reads it at the row's r, which moves with ρ."""
    tables = np.ones((len(obs), mean_spread.CORRELATION_GRID.size))
    for position in np.flatnonzero(_by_printed_sds(obs)):
        n, sd_pre, sd_post = obs[["n_effective", "disp_pre", "disp_post"]].iloc[position]
        tables[position] = mean_spread.inflation_by_correlation(n, sd_pre, sd_post)
    return tables


def _reported_se_inflation(obs: pd.DataFrame) -> np.ndarray:
    """Per summary row, κ(n) of a change printed with its SE (:func:`mean_spread.reported_se_inflation`),
    1 elsewhere: a CI's SE carries its t quantile already, and an exact P value's is only the
    prior mean of a learned se² (docs/model.md, "Their estimated d")."""
    reported = obs["method"].eq(SE_REPORTED).to_numpy()
    return np.where(reported, mean_spread.reported_se_inflation(obs["n_effective"].to_numpy(dtype=float)), 1.0)


def _means_with_cvs(obs: pd.DataFrame) -> np.ndarray:
    """Summary rows known by their SDs whose dispersions are CVs: means of a log-ratio marker."""
    difference = obs["marker"].map(on_difference_scale).to_numpy(dtype=bool)
    return known_by_their_sds(obs) & ~summary_medians(obs) & ~difference


def log_normal_levels_correlation(rho, cv_pre, cv_post) -> pt.TensorVariable:
    """The correlation of a patient's levels before and after when their logs correlate by ``rho``,
    from the levels' coefficients of variation: (e^{ρ·s_pre·s_post} − 1)/(cv_pre·cv_post), with
    s² = log(1 + cv²) (log-normal moments). A ratio of means with their SDs has a delta-method
    variance in the levels' correlation; converted, ρ is the log levels' correlation for every row,
    as it is for medians, and every ρ in (0, 1) is one the patients can have (a correlation of
    the levels themselves cannot reach 1 when the two sides' spreads differ)."""
    s_pre, s_post = pt.sqrt(pt.log1p(cv_pre**2)), pt.sqrt(pt.log1p(cv_post**2))
    return pt.expm1(rho * s_pre * s_post) / (cv_pre * cv_post)


def pre_post_correlation(rho, medians, quantile_correlation, from_quantiles) -> pt.TensorVariable:
    """r of each summary row, the correlation its variance subtracts (:func:`summary_change_variance`):
    ρ, the patients' pre/post correlation of their log levels (°C for temperature), for means
    (of a log-ratio marker's levels, converted by :func:`log_normal_levels_correlation`); for
    medians, whose sample medians of correlated normals correlate by (2/π)·arcsin ρ, not ρ (asymptotically; Sheppard's orthant
    probability), that, or where both sides' dispersions come from quantiles (``from_quantiles``
    1), its finite-sample r(n, ρ) from the row's table (:mod:`crsmeta.median_spread`): with ρ = 0.5
    the asymptotic covariance is 2/3 of the means' (tests/test_model_build.py checks both by Monte Carlo).
    """
    asymptotic = pt.switch(pt.gt(medians, 0.0), (2.0 / np.pi) * pt.arcsin(rho), rho)
    finite = row_tables_at(quantile_correlation, median_spread.ROOT_ONE_MINUS_RHO_GRID, pt.sqrt(1.0 - rho))
    return pt.switch(pt.gt(from_quantiles, 0.0), finite, asymptotic)


def cv_shifted_row_variance(of_sds, simulated):
    """The variance of a ratio of means shifted by its own CVs: the mean of its delta-method
    variance from its CVs and ρ (``of_sds``, :func:`summary_change_variance` / n) and of the one
    simulated at σ[marker] (``simulated``, :mod:`crsmeta.cv_shift`). The first alone is too small
    where σ is large and heavy-tailed throughout; the second alone is calibrated but vanishes with
    σ, a funnel the sampler diverges in (docs/model.md, "Its variance")."""
    return (of_sds + simulated) / 2


def summary_change_variance(d_pre, d_post, correlation):
    """n/efficiency times the variance of a row's post − pre statistic (log scale for markers),
    from the dispersions of the two sides and their statistics' ``correlation``
    (:func:`pre_post_correlation`): d_pre² + d_post² − 2r·d_pre·d_post."""
    return d_pre**2 + d_post**2 - 2 * correlation * d_pre * d_post


def _likelihood(data: ModelData, settings: ModelSettings, rows: _Rows, tau,
                model_terms: frozenset[str]) -> list[LikelihoodTerm]:
    """Integrate each study effect u out wherever that is exact; keep it explicit elsewhere.

    A study (and marker) whose rows are all Gaussian given u enters through the multivariate
    normal of its rows (:func:`_marginal_gaussian`). One censored or learned-SE row more is still
    exact: given the Gaussian rows, u ~ N(m_u, V_u), so that row's mean is shifted by m_u and its
    variance widened by V_u. Only studies with two or more such rows, or a Student-t row, keep an
    explicit, non-centred u. ``model_terms`` (:func:`model_terms`) are the terms the model has,
    some maybe without rows. Returns the terms as (values, study-marker group of each value).
    """
    study_marker = data.coords["study_marker"]
    terms = []
    group_marker = np.array([data.coords["marker"].index(label.split("|", 1)[1]) for label in study_marker])
    tau2 = tau[_data("group_marker_idx", group_marker)] ** 2
    gaussian, explicit = rows.kind == "gaussian", rows.explicit
    marginal = rows.select("marginal", np.flatnonzero(~explicit & gaussian))
    if "marginal" in model_terms:  # here and below: a term the model does not have adds nothing
        terms += _marginal_gaussian(rows, marginal, tau2)
    offset = added_variance = pt.zeros_like(rows.mean)
    single = np.flatnonzero(~explicit & ~gaussian)
    if "single" in model_terms:
        u_mean, u_variance = _study_effect_given_gaussian_rows(rows, marginal, tau2)
        single_rows, single_group = _data("single_rows", single), _data("single_group_idx", rows.group[single])
        offset = pt.set_subtensor(offset[single_rows], u_mean[single_group])
        added_variance = pt.set_subtensor(added_variance[single_rows], u_variance[single_group])
    if "explicit" in model_terms:
        offset = pt.set_subtensor(offset[_data("explicit_rows", np.flatnonzero(explicit))],
                                  _explicit_study_effects(data, rows, tau, group_marker))
    terms += _row_likelihoods(data, settings, rows, np.flatnonzero(explicit | ~gaussian), offset, added_variance,
                              model_terms)
    return terms


def _study_effect_given_gaussian_rows(rows: _Rows, marginal: _Selected, tau2):
    """Mean and variance of u[g] given its group's Gaussian rows (prior N(0, τ²) where none)."""
    s0, s1 = _group_sums(marginal.y - rows.mean[marginal.index], rows.variance[marginal.index],
                         marginal.group_index, tau2.shape[0])
    shrink = 1.0 + tau2 * s0
    return tau2 * s1 / shrink, tau2 / shrink


def _explicit_study_effects(data: ModelData, rows: _Rows, tau, group_marker):
    """Non-centred u for the groups that keep one; returns u for each of their rows."""
    needs_u = rows.needs_u
    groups = np.flatnonzero(needs_u)
    pm.modelcontext(None).add_coord("study_marker_explicit", [data.coords["study_marker"][g] for g in groups])
    u_z = pm.Normal("u_z", 0.0, 1.0, dims="study_marker_explicit")
    u = pm.Deterministic("u", tau[_data("explicit_marker_idx", group_marker[groups])] * u_z,
                         dims="study_marker_explicit")
    position = np.full(needs_u.size, -1)
    position[groups] = np.arange(groups.size)
    return u[_data("explicit_effect_idx", position[rows.group[needs_u[rows.group]]])]


def _row_likelihoods(data: ModelData, settings: ModelSettings, rows: _Rows, selected: np.ndarray,
                     offset, added_variance, model_terms: frozenset[str]) -> list[LikelihoodTerm]:
    """Each selected row's own likelihood, its mean shifted by ``offset`` and its variance
    widened by ``added_variance`` (u given the rest of its group, or an explicit u). Returns
    each term's log-likelihood per row, with the row's group."""
    kind = rows.kind[selected]
    terms = []
    mean = rows.mean + offset
    model = pm.modelcontext(None)
    of_kind = {name: selected[kind == name] for name in ROW_KINDS}
    if "gaussian" in model_terms:
        gaussian = rows.select("conditional", of_kind["gaussian"])
        model.add_coord("gaussian_conditional", [str(i) for i in gaussian.positions])
        conditional = pm.Normal("y_conditional", mean[gaussian.index], pt.sqrt(rows.variance[gaussian.index]),
                                observed=gaussian.y, dims="gaussian_conditional")
        terms.append((pm.logp(conditional, gaussian.y), gaussian.group))
    nu = 1.0 + pm.Gamma("nu_minus_one", *settings.nu_prior) if settings.likelihood == "student_t" else None
    if "student_t" in model_terms:
        exact_t = rows.select("student_t", of_kind["student_t"])
        model.add_coord("case_exact", [str(i) for i in exact_t.positions])
        change = pm.StudentT("change", nu=nu, mu=mean[exact_t.index],
                             sigma=rows.case_sigma("student_t", exact_t.positions),
                             observed=exact_t.y, dims="case_exact")
        terms.append((pm.logp(change, exact_t.y), exact_t.group))
    if "censored" in model_terms:
        censored = rows.select("censored", of_kind["censored"], observed=False)
        case_index = censored.positions
        scale = pt.sqrt(rows.case_sigma("censored", case_index) ** 2 + added_variance[censored.index])
        dist = (pm.Normal.dist(mean[censored.index], scale) if nu is None
                else pm.StudentT.dist(nu=nu, mu=mean[censored.index], sigma=scale))
        values = _censored_terms(data.cases.iloc[case_index], rows.case_code[case_index], dist)
        terms.append((values, censored.group))
    if "learned" in model_terms:
        learned = rows.select("learned", of_kind["learned"])
        values = _learned_rows(data, settings, rows, learned, "learned", mean,
                               with_floor="learned_floor" in model_terms).log_likelihood(added_variance[learned.index])
        pm.Potential("summary_learned_rows", pt.sum(values))
        terms.append((values, learned.group))
    if "learned_alone" in model_terms:
        alone = rows.select("tau_integrated", of_kind["learned_alone"])
        terms.append((_tau_integrated_rows(data, settings, rows, alone, mean, added_variance), alone.group))
    if "gaussian_alone" in model_terms:
        alone_cases = rows.select("tau_integrated_case", of_kind["gaussian_alone"])
        terms += _tau_integrated_case_rows(settings, rows, alone_cases, mean, added_variance)
    return terms


def _learned_rows(data: ModelData, settings: ModelSettings, rows: _Rows, selected: _Selected, name: str,
                  mean, with_floor: bool = False) -> _LearnedRows:
    """The learned-SE rows ``selected``, ready to be evaluated at any added variance (``with_floor``:
    with the term of a floor on se², which rows without one leave at zero)."""
    summary_index = selected.positions - rows.n_cases
    mean_variance = rows.learned_mean_variance[_data(f"{name}_summary_idx", summary_index)]
    return _LearnedRows.of(data.observations.iloc[summary_index], name, selected.y, mean[selected.index],
                           mean_variance, settings.row_variance_shape, with_floor)


def _tau_integrated_rows(data: ModelData, settings: ModelSettings, rows: _Rows, alone: _Selected, mean,
                         added_variance) -> pt.TensorVariable:
    """Learned-SE rows that are their marker's only row, with τ[marker] integrated out.

    Such a row is all its marker's data: τ and σ of that marker are then informed by it alone,
    and with both small the row pins its θ cell to a width √(se² + τ²) that vanishes, a funnel no
    reparameterisation of u removes. (An exact P value's se² has a fixed prior mean and a
    ``p > x`` row a floor on se²: neither can vanish, so they are not taken here, and these
    rows need no floor term.) Integrating τ over its prior on :func:`tau_log_grid` (trapezoid rule
    on log τ) leaves θ a width of the order of τ's prior scale whatever σ is. The model's log
    density gets the integral; τ[marker] keeps its prior in the sampled coordinates and its
    draws are replaced afterwards by draws from its conditional posterior given each draw
    (:func:`crsmeta.model.integrated_tau.draw_integrated_tau`, from the log weights registered
    here), so the draws are of the same joint posterior. Returns each row's log-likelihood at the
    sampled τ (its group is alone, so u's variance given the rest is τ²): the per-study terms
    that reweighting divides by must be those of the joint posterior the draws come from.
    """
    learned = _learned_rows(data, settings, rows, alone, "tau_integrated", mean)
    _integrate_tau(settings, learned, rows.marker[alone.positions], INTEGRATED_TAU_DRAW_PREFIX,
                   "summary_tau_integrated")
    return learned.log_likelihood(added_variance[alone.index])


def _tau_integrated_case_rows(settings: ModelSettings, rows: _Rows, alone: _Selected, mean,
                              added_variance) -> list[LikelihoodTerm]:
    """Exact case changes that are all of their marker's rows and one study's, with τ[marker]
    integrated out.

    A case report's change of a marker nobody else measured, or a case series' n changes of one,
    is N(θ + u, σ²) per row with u ~ N(0, τ²) shared, σ and τ of that marker informed by these
    rows alone: with both small they pin the θ cell to a width √(σ²/n + τ²) that vanishes, the
    funnel of :func:`_tau_integrated_rows` (seen as divergences at small σ and τ when a case
    report of temperature was the case-only analysis' one temperature row, and at small τ when a
    case series of four was the only study with ferritin). The group's likelihood (the
    compound-symmetry normal of :func:`_marginal_gaussian`) splits exactly into a part free of τ,
    the rows' residuals r about their mean r̄, Σ −½(log 2π + log σ² + (r − r̄)²/σ²) + ½(log 2π +
    log(σ²/n)) (empty for n = 1), and the mean's term N(ȳ; μ̄, σ²/n + τ²), out of which τ is
    integrated as for a single row (no se² integral: σ² is given). Returns the terms at the sampled
    τ, the rows' and each group's, as :func:`_tau_integrated_rows` does.
    """
    model = pm.modelcontext(None)
    groups, first_row, row_group = np.unique(alone.group, return_index=True, return_inverse=True)
    model.add_coord("case_tau_integrated", [model.coords["study_marker"][g] for g in groups])
    count = np.bincount(row_group, minlength=groups.size).astype(float)
    row_group_index = _data("case_tau_integrated_row_group_idx", row_group)
    group_count = _data("case_tau_integrated_count", count)

    def group_mean(values):
        return pt.zeros(groups.size)[row_group_index].inc(values) / group_count

    # σ[marker]² (and τ[marker]² below) is the same for every row of a group: its first row's
    group_variance = rows.variance[alone.index][first_row] / group_count
    group_y = _data("case_tau_integrated_group_y", np.bincount(row_group, rows.y[alone.positions],
                                                              minlength=groups.size) / count)
    mean_of_group = _GaussianRows(y=group_y, mu=group_mean(mean[alone.index]), variance=group_variance)
    residual = alone.y - mean[alone.index]
    within_rows = _log_normal(residual, group_mean(residual)[row_group_index], rows.variance[alone.index])
    within_groups = 0.5 * (LOG_2PI + pt.log(group_variance))
    _integrate_tau(settings, mean_of_group, rows.marker[alone.positions[first_row]],
                   INTEGRATED_TAU_CASE_DRAW_PREFIX, "case_tau_integrated",
                   free_of_tau=pt.sum(within_rows) + pt.sum(within_groups))
    tau2 = added_variance[alone.index][first_row]  # u's variance, τ², at the sampled τ
    return [(within_rows, alone.group), (within_groups + mean_of_group.log_likelihood(tau2), groups)]


def _integrate_tau(settings: ModelSettings, alone_rows, markers: np.ndarray, prefix: str, dim: str,
                   free_of_tau=0.0) -> None:
    """Add ∫ p(τ) L(τ) dτ of ``alone_rows`` (one per element of ``dim``, of the ``markers``) and
    their likelihood ``free_of_tau`` to the log density, record with each draw what τ's draws need
    (deterministics named with ``prefix``, along ``dim``), and keep the :class:`IntegratedTau`
    beside the model for those draws."""
    model = pm.modelcontext(None)
    marker = _data(f"{dim}_marker_idx", markers)
    integrated = IntegratedTau(rows=alone_rows, scale=model["tau_prior_scale"][marker][:, None],
                               settings=settings, markers=markers, prefix=prefix)
    pm.Potential(f"{dim}_rows", pt.sum(pt.logsumexp(integrated.log_weight(), axis=1)) + free_of_tau)
    for name, value in integrated.draw_values().items():  # recorded with each draw, for τ's draws
        pm.Deterministic(name, value, dims=dim)
    _INTEGRATED_TAU[model] = (*_INTEGRATED_TAU.get(model, ()), integrated)


@dataclasses.dataclass
class IntegratedTau:
    """A model's rows of one kind with τ integrated out (:func:`_tau_integrated_rows`,
    :func:`_tau_integrated_case_rows`), one per marker."""

    rows: _LearnedRows | _GaussianRows
    scale: pt.TensorVariable  # rows × 1: the scale of each row's τ prior
    settings: ModelSettings  # τ's prior family
    markers: np.ndarray  # each row's marker (index into the marker coordinate)
    prefix: str  # of the names the draw values are recorded under

    def draw_values(self) -> dict[str, pt.TensorVariable]:
        """What the log weights take from a draw, one value per row, by the name it is recorded
        under in the draws: the sampler's compiled model computes them with every draw, so the
        τ draws need no function of their own evaluated draw by draw (which, uncompiled, took
        minutes). ``y`` and ``scale`` are data, the same in every draw."""
        rows = self.rows
        values = {"y": rows.y, **{field: getattr(rows, field) for field in rows.DRAW_FIELDS},
                  "scale": self.scale[:, 0]}
        return {f"{self.prefix}{field}": value for field, value in values.items()}

    def log_grid(self, step: float = TAU_LOG_GRID_STEP) -> np.ndarray:
        """The points of log(τ/scale) at which the log density integrates τ out (at its spacing)."""
        return tau_log_grid(self.settings.tau_prior, step)

    def log_weight(self, log_grid: np.ndarray | None = None) -> pt.TensorVariable:
        """log p(τ) L(τ) + log τ + log(spacing), the trapezoid rule's terms on log τ, at each
        point of ``log_grid`` (by default the log density's): rows × grid, after any leading
        dimensions (draws) of the rows' values. The se² integral takes every other point of its
        grid above z = −12 here (TAU_PATH_LOG_GRID)."""
        log_grid = self.log_grid() if log_grid is None else log_grid
        rows, tau = self.rows, self.scale * np.exp(log_grid)
        # τ's prior is a scale family: log p(τ) + log τ = log p₁(τ/scale) + log(τ/scale), a constant
        # on the grid (which is in τ/scale). Written with the scale, PyTensor's rewrites of the
        # half-normal's density never ended.
        distribution, parameters = tau_prior(self.settings, 1.0)
        spacing = log_grid[1] - log_grid[0]
        log_prior = pm.logp(distribution.dist(**parameters), np.exp(log_grid)) + log_grid + np.log(spacing)
        return log_prior + rows.log_likelihood_on_tau_path(tau**2)


def integrated_tau(model: pm.Model) -> tuple[IntegratedTau, ...]:
    """The rows of ``model`` whose τ its log density integrates out, one IntegratedTau per kind
    of row that has some (learned-SE summary rows, then exact case changes)."""
    return _INTEGRATED_TAU.get(model, ())


def _group_sums(residual, variance, group, n_groups):
    """S0 = Σ 1/v and S1 = Σ r/v per group."""
    s0 = pt.zeros(n_groups)[group].inc(1.0 / variance)
    s1 = pt.zeros(n_groups)[group].inc(residual / variance)
    return s0, s1


def _marginal_gaussian(rows: _Rows, marginal: _Selected, tau2_group) -> list[LikelihoodTerm]:
    """Rows y = μ + u[g] + e, e ~ N(0, v), u[g] ~ N(0, τ²), with u integrated out per group g.

    Per group the rows are N(μ, diag(v) + τ²·11ᵀ); by the matrix determinant lemma and
    Sherman–Morrison, with S0 = Σ1/v, S1 = Σr/v, S2 = Σr²/v (r = y − μ):
    log L = −½[n·log 2π + Σ log v + log(1 + τ²S0) + S2 − τ²S1²/(1 + τ²S0)].
    Exact case changes of a study thereby enter through their sufficient statistics. Returns the
    row and the group terms of log L, each with its groups.
    """
    model = pm.modelcontext(None)
    model.add_coord("gaussian_marginal", [str(i) for i in marginal.positions])
    mean, variance = rows.mean[marginal.index], rows.variance[marginal.index]
    pm.CustomDist(
        "y_marginal", mean, variance, tau2_group, marginal.group_index,
        logp=_compound_symmetry_logp, random=_compound_symmetry_draws,
        signature="(n),(n),(g),(n)->(n)", observed=marginal.y, dims="gaussian_marginal",
    )
    row_terms, group_terms = _compound_symmetry_terms(marginal.y - mean, variance, tau2_group, marginal.group_index)
    every_group = np.arange(len(model.coords["study_marker"]))
    return [(row_terms, marginal.group), (group_terms, every_group)]


def _compound_symmetry_logp(value, mean, variance, tau2_group, group):
    row_terms, group_terms = _compound_symmetry_terms(value - mean, variance, tau2_group, group)
    return pt.sum(row_terms) + pt.sum(group_terms)


def _compound_symmetry_terms(residual, variance, tau2_group, group):
    """log L split into a term per row, −½(log 2π + log v + r²/v), and one per group,
    −½[log(1 + τ²S0) − τ²S1²/(1 + τ²S0)] (0 for a group without rows)."""
    s0, s1 = _group_sums(residual, variance, group, tau2_group.shape[0])
    used = s0 > 0
    shrink = 1.0 + tau2_group * s0
    row_terms = -0.5 * (LOG_2PI + pt.log(variance) + residual**2 / variance)
    group_terms = -0.5 * pt.where(used, pt.log(shrink) - tau2_group * s1**2 / shrink, 0.0)
    return row_terms, group_terms


def _compound_symmetry_draws(mean, variance, tau2_group, group, rng=None, size=None):
    """Replicated rows from new study effects: the marginal predictive of the integrated rows,
    also for many parameter draws at once (leading batch dimensions, or ``size``: what the
    posterior predictive draws at every posterior draw, crsmeta.model.over_draws)."""
    batch = tuple(size) if size is not None else np.broadcast_shapes(
        *(np.shape(value)[:-1] for value in (mean, variance, tau2_group, group)))
    u = np.sqrt(tau2_group) * rng.standard_normal((*batch, np.shape(tau2_group)[-1]))
    rows = (*batch, np.shape(mean)[-1])
    study_effects = np.take_along_axis(u, np.broadcast_to(group, rows), axis=-1)
    return mean + study_effects + np.sqrt(variance) * rng.standard_normal(rows)


def _censored_terms(cases, code: np.ndarray, dist) -> pt.TensorVariable:
    """log P(lower < change < upper) for each censored change: log F(upper) when left-censored,
    log(1 − F(lower)) when right-censored, log(F(upper) − F(lower)) for an interval.

    The three are computed for every row and each row takes its own, so one graph serves any mix
    of bounds. An open bound is replaced by the other bound ∓ 1: every branch stays finite, as a
    branch a row does not take still sends its (zero-weighted) gradient through the selection,
    and an infinite one would make it NaN. Returns the term of each row of ``cases``.
    """
    pm.modelcontext(None).add_coord("case_censored", cases.index.astype(str))
    lower = pm.Data("change_lower", cases["change_lower"].to_numpy(), dims="case_censored")
    upper = pm.Data("change_upper", cases["change_upper"].to_numpy(), dims="case_censored")
    bound = _data("censored_bound", code)
    finite_upper = pt.where(pt.isinf(upper), lower + 1.0, upper)
    finite_lower = pt.where(pt.isinf(lower), upper - 1.0, lower)
    below_upper = pm.logcdf(dist, finite_upper)
    below_lower = pm.logcdf(dist, finite_lower)
    values = pt.switch(
        pt.eq(bound, CENSOR_CODES["left"]), below_upper,
        pt.switch(pt.eq(bound, CENSOR_CODES["right"]), pm.logccdf(dist, finite_lower),
                  pm.math.logdiffexp(below_upper, below_lower)))
    pm.Potential("censored_changes", pt.sum(values))
    return values


@dataclasses.dataclass
class _LearnedRows:
    """Rows whose SE was not printed: se² ~ InverseGamma(a, b), E[se²] = Var(s, σ, n) + extra for a
    ratio of two cohorts' levels (:func:`_cohort_ratio_moments`), σ[marker]²·eff/n + extra for temperature
    (or, for an exact P value, the SE it implies, squared, + extra), integrated out.

    Given se², y ~ N(mu, se² + V) (V: what remains of the study effect's variance, 0 when u is
    explicit). A P value printed as an inequality is data too, the event se² ≤ bound(y); the
    likelihood of (y, event) is ∫_{se² ≤ bound} N(y; mu, se² + V) IG(se²; a, b) dse² (and over
    se² ≥ floor for a P value printed as ``p > x``, which makes the row less precise), not divided
    by the prior mass P(se² ≤ bound): that would treat the bound as known before y and, as the
    mass shrinks when σ grows, pull σ (and with it the σ²/2 offset of mean-based rows) upwards.
    With x = b/se² ~ Gamma(a, 1) the integral runs over x ≥ x0 = b/bound; it is computed in log
    space on x = x0 + e^z (no edge at x0, and residuals of any size put the mass on the grid).
    With V = 0 and no bound it is the Student-t of 2a degrees of freedom.
    """

    y: pt.TensorVariable
    mu: pt.TensorVariable
    b: pt.TensorVariable
    x0: pt.TensorVariable
    x1: pt.TensorVariable | None  # b/floor of the rows with a floor (None: no row has one)
    floored: pt.TensorVariable | None  # the positions of the rows with a floor
    shape: float

    @classmethod
    def of(cls, obs: pd.DataFrame, name: str, y, mu, mean_variance, shape: float,
           with_floor: bool) -> _LearnedRows:
        """The rows of ``obs``, their data named after ``name``; the floors' term ``with_floor``."""
        pm.modelcontext(None).add_coord(f"summary_{name}", obs.index.astype(str))
        b = (shape - 1.0) * mean_variance
        bound = obs["se_upper"].to_numpy(dtype=float) ** 2
        bounded = _data(f"{name}_bounded", np.isfinite(bound).astype(float))
        bound = _data(f"{name}_bound", np.where(np.isfinite(bound), bound, 1.0))
        x0 = pt.switch(pt.gt(bounded, 0.0), b / bound, 0.0)
        # "p > x": the event se² ≥ floor, x ≤ x1 = b/floor; ∫_{x0}^{x1} = ∫_{x0}^∞ − ∫_{x1}^∞, the
        # second integral only for the rows with a floor (positions in ``floored``).
        floor = obs["se_lower"].to_numpy(dtype=float) ** 2
        if not with_floor:
            return cls(y=y, mu=mu, b=b, x0=x0, x1=None, floored=None, shape=shape)
        floored = _data(f"{name}_floored_rows", np.flatnonzero(floor > 0))
        x1 = b[floored] / _data(f"{name}_floor", floor[floor > 0])
        return cls(y=y, mu=mu, b=b, x0=x0, x1=x1, floored=floored, shape=shape)

    def log_likelihood(self, added_variance) -> pt.TensorVariable:
        """Each row's log-likelihood given V = ``added_variance`` (one per row)."""
        values = _log_integrated_normal(self.y, self.mu, added_variance, self.b, self.x0, self.shape)
        floored = self.floored
        if floored is None:
            return values
        above_floor = _log_integrated_normal(self.y[floored], self.mu[floored], added_variance[floored],
                                             self.b[floored], self.x1, self.shape)
        return pt.set_subtensor(values[floored], pm.math.logdiffexp(values[floored], above_floor))

    # what τ's draws read from each draw, besides y (IntegratedTau.draw_values)
    DRAW_FIELDS = ("mu", "b", "x0")

    def log_likelihood_on_tau_path(self, tau2) -> pt.TensorVariable:
        """Each row's log-likelihood at each of the added variances ``tau2`` (rows × grid), with
        no floor (the rows whose τ is integrated out have none), on the se² grid that stops at
        z = −12 (TAU_PATH_LOG_GRID)."""
        return _log_integrated_normal(self.y[..., None], self.mu[..., None], tau2, self.b[..., None],
                                      self.x0[..., None], self.shape, grid=TAU_PATH_LOG_GRID)


@dataclasses.dataclass
class _GaussianRows:
    """Rows y ~ N(mu, variance + V), V the study effect's variance (an exact case change: its
    variance is σ[marker]²)."""

    y: pt.TensorVariable
    mu: pt.TensorVariable
    variance: pt.TensorVariable

    # what τ's draws read from each draw, besides y (IntegratedTau.draw_values)
    DRAW_FIELDS = ("mu", "variance")

    def log_likelihood(self, added_variance) -> pt.TensorVariable:
        """Each row's log-likelihood given V = ``added_variance`` (one per row)."""
        return _log_normal(self.y, self.mu, self.variance + added_variance)

    def log_likelihood_on_tau_path(self, tau2) -> pt.TensorVariable:
        """Each row's log-likelihood at each of the added variances ``tau2`` (rows × grid)."""
        return _log_normal(self.y[..., None], self.mu[..., None], self.variance[..., None] + tau2)


def _log_normal(y, mu, variance):
    return -0.5 * (LOG_2PI + pt.log(variance) + (y - mu) ** 2 / variance)


def _log_integrated_normal(y, mu, added_variance, b, x0, shape: float, grid: np.ndarray = LOG_GRID):
    """log ∫_{x0}^∞ N(y; mu, b/x + V) Gamma(x; shape, 1) dx per element (the arguments
    broadcast), by the trapezoid rule on z = log(x − x0) at the evenly spaced points ``grid``:
    one fused op with its gradient (crsmeta.model.integrated_normal)."""
    return log_integrated_normal(y, mu, added_variance, b, x0, shape, grid)
