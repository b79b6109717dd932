"""SYNTHETIC simulation-based calibration (Talts et al. 2018) of the crsmeta model, one replicate at a time.

A replicate draws θ, τ and σ from the model's prior (``pm.draw`` on the model built for the
simulated design), simulates a SYNTHETIC dataset with that truth (crsmeta.simulate), runs its
study files through extract → harmonise → changes (crsmeta.simulate.pipeline), fits it
with the package's sampler, and records for every θ, τ and σ the rank of the true value among
thinned posterior draws and whether the central 50/80/90/95% intervals cover it. If the model and
its sampler are right, ranks are uniform and each interval covers the truth at its level.

Every replicate simulates one *route* (:data:`ROUTES`): a small design whose calibrated cells get
their data through one likelihood route alone (exact or censored case changes, a change printed
with its SE or CI, means with SDs or SEs, medians with an IQR or a range, a P value exact or as a
bound, a mean without spread, a % change), so that a cell's coverage is that route's. Each
replicate's seeds come from the master seed, its route's name and its index alone (a
``SeedSequence`` spawn key), so a replicate gives the same table whichever job, process or node
runs it, and the replicates can run in any order (the workflow's rule ``sbc_replicate`` runs one
per job). :func:`pool` and :func:`summarise` then test uniformity per route and parameter with a
chi-square test on 10 rank bins and the ECDF of the ranks against its simultaneous 95% band
(Säilynoja, Bürkner & Vehtari 2022, the band ArviZ computes), and each coverage against its
binomial Monte Carlo band; :func:`summarise_routes` pools each route's parameters of a kind.

Only the case routes and the printed change with its SE are exactly the model's likelihood; the
others enter through approximations (the model's ρ, Wan's quantile denominators, a P value's SE
as the prior mean of a learned se², the simulated variance and bias of a ratio of cohort means at
s[marker] and σ[marker] for a mean without spread, a t-based CI read with 1.96), and their SBC
measures what those approximations cost in calibration. Where a route's rows read the baseline
log-SD s[marker], the truth draws it from the model's prior too and the dataset's baseline levels
are simulated with it; it is ranked like θ, τ and σ.

The robustness study asks what the model's estimates are worth when the data depart from its
assumptions in ways real data may (:data:`SCENARIOS`: heavy-tailed changes, skewed levels, a
study effect shared across markers). :func:`run_robustness_replicate` fits the SBC replicate's
dataset simulated again under a scenario — the same prior truth, design, random numbers and
sampler seed — and records each parameter's posterior median and SD besides its rank and
coverage; :func:`summarise_robustness` gives bias, RMSE and coverage per scenario, route and kind
of parameter (the workflow's rules ``robustness_replicate`` and ``robustness_summary``).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm

from crsmeta import tables
from crsmeta.errors import InputError
from crsmeta.model.build import BASELINE_MARKER, build_model
from crsmeta.model.data import ModelData
from crsmeta.model.sample import sample_model
from crsmeta.model.settings import ModelSettings
from crsmeta.simulate import SimulationSpec
from crsmeta.simulate.pipeline import run_pipeline
from crsmeta.simulate.spec import Misspecification

LEVELS = (0.50, 0.80, 0.90, 0.95)
"""Central credible intervals whose coverage is recorded (columns ``covered50`` … ``covered95``)."""
BAND = 0.95
"""Probability of the ECDF band and of each coverage's binomial band under calibration."""
N_BINS = 10
THIN_TO = 99
"""Posterior draws the rank is taken among (fewer when the fit has fewer)."""
KINDS = ("theta", "tau", "sigma", "baseline_sd", "rho")
"""Kinds of parameter ranked; ``baseline_sd`` (s[marker]) only where the route's rows read it,
``rho`` (ρ) only where its truth is drawn from its prior (:attr:`Route.rho_from_prior`)."""
SCALAR_KINDS = ("rho",)
"""Kinds of one parameter, named without a key."""


@dataclasses.dataclass(frozen=True)
class Route:
    """A route's design and what its rows enter the model as: the ``method`` of its summary
    comparisons (crsmeta.comparisons), or ``exact`` / ``censored`` for case changes."""

    spec: SimulationSpec
    enters_as: tuple[str, ...]
    rho_from_prior: bool = False
    """Whether the patients' pre/post correlation of log levels is drawn from ρ's prior (and
    ranked): for rows that read ρ as that correlation (medians with their quantiles). Elsewhere
    it is what the simulator's patients give, s/√(s² + σ²), which ρ's prior does not draw."""


_NO_STUDIES = {field.name: 0 for field in dataclasses.fields(SimulationSpec) if field.name.startswith("n_")}
_CELLS = {"interventions": ("tocilizumab", "emapalumab"), "populations": ("car_t_crs",)}
_COHORTS = 6
"""Cohorts per summary route: three per intervention, every one reporting every marker."""


def _route_spec(markers: tuple[str, ...], **settings) -> SimulationSpec:
    """2 interventions × ``markers``, one population, every study reporting every marker; no
    studies but those ``settings`` count."""
    return SimulationSpec(markers=markers, markers_per_study=(len(markers), len(markers)),
                          **_CELLS, **(_NO_STUDIES | settings))


def _cohorts(kind: str, markers: tuple[str, ...] = ("IL-6", "ferritin", "temperature"), **settings) -> SimulationSpec:
    return _route_spec(markers, **{f"n_cohorts_{kind}": _COHORTS, "cohort_size": (12, 30), **settings})


ROUTES: dict[str, Route] = {
    # case changes with no LOD: every change exact
    "case_exact": Route(_route_spec(("IL-6", "ferritin", "temperature"), n_case_reports=2, n_case_series=4,
                                    case_series_size=(3, 6), lod={}), ("exact",)),
    # LODs near the usual level with a narrow baseline: many post values (and few pre values, whose
    # change would go unbounded and leave) below the LOD, exact changes beside them
    "case_censored": Route(_route_spec(("IL-6", "IFN-gamma"), n_case_series=6, case_series_size=(4, 8),
                                       lod={"IL-6": 100.0, "IFN-gamma": 30.0},
                                       baseline={"IL-6": (300.0, 0.4), "IFN-gamma": (100.0, 0.4)}),
                           ("exact", "censored")),
    "effect_se": Route(_cohorts("effect_se"), ("se_reported",)),
    "effect_ci": Route(_cohorts("effect_ci"), ("ci_reported",)),
    # in cohorts of 4 to 10, where the printed SE, itself estimated, is least precise
    "small_effect_se": Route(_cohorts("effect_se", cohort_size=(4, 10)), ("se_reported",)),
    # both sides' SDs (or SEs): for the log-ratio markers the row's mean shift from its own CVs,
    # whose small-sample correction assumes changes independent of the baseline; so the patients
    # correlate as such changes make them, not by a draw from ρ's prior, with which their θ leant
    # low (docs/validation.md, "Means with SDs and ρ drawn from its prior")
    "sd": Route(_cohorts("mean_sd", frac_missing_sd=0.0), ("sd_reported",)),
    "se": Route(_cohorts("mean_se"), ("sd_reported",)),
    # the patients' pre/post correlation (of their log levels; °C) drawn from ρ's prior, the one
    # these rows read (docs/validation.md)
    "iqr": Route(_cohorts("median_iqr"), ("iqr_log", "iqr"), rho_from_prior=True),
    "range": Route(_cohorts("median_range"), ("range_log", "range"), rho_from_prior=True),
    # both in cohorts of 4 to 10, where the d read from quantiles is least precise and the rows'
    # variance is inflated most (crsmeta.median_spread)
    "small_iqr_range": Route(_cohorts("median_iqr", n_cohorts_median_range=_COHORTS, cohort_size=(4, 10)),
                             ("iqr_log", "iqr", "range_log", "range"), rho_from_prior=True),
    # both in cohorts of 4 to 10, where a row's variance, read from its own SDs, is least precise
    "small_sd_se": Route(_cohorts("mean_sd", n_cohorts_mean_se=_COHORTS, frac_missing_sd=0.0, cohort_size=(4, 10)),
                         ("sd_reported",)),
    "p_exact": Route(_cohorts("mean_p_exact"), ("p_value_exact",)),
    # a marker's "p > x" or "p < x" bounds nothing on its log ratio (crsmeta.comparisons): such rows
    # learn their SE; temperature's keep their bounds
    "p_bound": Route(_cohorts("mean_p_bound"), ("p_value_bound", "dispersion_from_data")),
    # a mean without SD, SE or P value: the learned SE centred on the variance of a ratio of cohort
    # means and the shift σ²/2 + b, both at s[marker] and σ[marker] (crsmeta.cohort_log_ratio)
    "learned_se": Route(_cohorts("mean_only"), ("dispersion_from_data",)),
    # a median without IQR, range or P value: for the log-ratio markers the learned SE centred on the
    # variance of a ratio of cohort medians, for temperature on that of a difference of medians,
    # both at s[marker] and σ[marker] (crsmeta.cohort_log_ratio)
    "median_only": Route(_cohorts("median_only"), ("dispersion_from_data",)),
    # case series printing their patients' levels beside cohorts' means without spread: s[marker]
    # learns from the spread of each series' baseline levels (crsmeta.model.build._baseline_spread)
    # as well as from the rows whose se² it widens
    "case_levels": Route(_cohorts("mean_only", n_case_series=4, case_series_size=(3, 8), lod={}),
                         ("exact", "dispersion_from_data")),
    # a % change of means has no temperature form
    "pct_change": Route(_cohorts("pct_change", markers=("IL-6", "ferritin")), ("dispersion_from_data",)),
    # the design of the first SBC runs (docs/validation.md): its cells mix case_exact, case_censored and effect_se
    "mixed": Route(SimulationSpec(
        interventions=("tocilizumab", "plasma_exchange", "emapalumab"),
        markers=("IL-6", "IFN-gamma", "ferritin", "temperature"), populations=("car_t_crs",),
        **(_NO_STUDIES | {"n_case_reports": 3, "n_case_series": 6, "n_cohorts_effect_se": 3}),
        markers_per_study=(2, 4), case_series_size=(3, 8), cohort_size=(12, 30),
    ), ("exact", "censored", "se_reported")),
}
"""Route name → design (docs/validation.md, section 1). Each design is small (2 interventions ×
2–3 markers, six studies) so that a replicate fits in seconds; ``mixed`` is the earlier 3 × 4
design of case reports, case series with LOD censoring and cohorts printing a mean log ratio with
its SE."""
DEFAULT_ROUTE = "mixed"

SCENARIOS: dict[str, Misspecification] = {
    # Student-t changes with 3 degrees of freedom, the normal's SD: the heaviest integer df whose SD
    # exists; a patient beyond 4 SDs of the mean is about 100 times as frequent as under the normal
    "heavy_tails": Misspecification(change_df=3.0),
    # skew-normal baseline log levels (°C for temperature) of shape 5, the baseline's mean and SD:
    # skewness 0.85, near the skew-normal's limit of 0.995, a long right tail of high levels beyond
    # the log-normal that the routes reading levels' summaries (means and SDs, medians and
    # quantiles, LODs) assume; strong on purpose, so a route robust to it is robust to milder skew
    "skewed_levels": Misspecification(level_skewness=5.0),
    # one study effect for all of a study's markers (correlation 1), where the model has one per
    # study and marker, independent; each marker's own study effects are as before
    "shared_study_effect": Misspecification(shared_study_effect=True),
}
"""Robustness scenarios (docs/validation.md): each simulates a route's datasets with one departure
from the model's assumptions (crsmeta.simulate.spec.Misspecification), for :func:`run_robustness_replicate`."""


@dataclasses.dataclass(frozen=True)
class ReplicateSeeds:
    """The seeds of one replicate: the simulated design and data, the prior truth, the sampler."""

    simulation: int
    truth: int
    sampler: int


def route_key(route: str) -> int:
    """A stable integer for a route's name (the first 4 bytes of its SHA-256; Python's ``hash``
    of a string changes from one process to the next)."""
    return int.from_bytes(hashlib.sha256(route.encode("utf-8")).digest()[:4], "big")


def replicate_seeds(master_seed: int, route: str, replicate: int) -> ReplicateSeeds:
    """Seeds of replicate ``replicate`` of ``route``: the child of ``SeedSequence(master_seed)``
    with spawn key (:func:`route_key` of the route, ``replicate``), whatever the routes and the
    number of replicates run, or the order they run in."""
    if replicate < 0:
        raise InputError(f"SBC replicate {replicate}", expected="a replicate index ≥ 0")
    child = np.random.SeedSequence(master_seed, spawn_key=(route_key(route), replicate))
    return ReplicateSeeds(*(int(seed) for seed in child.generate_state(3)))


def route_design(route: str) -> Route:
    """The design of ``route``; an unknown name is an input error naming the known ones."""
    if route not in ROUTES:
        raise InputError(f"unknown SBC route {route!r}", expected=f"one of {', '.join(ROUTES)}")
    return ROUTES[route]


def scenario_misspecification(scenario: str) -> Misspecification:
    """The misspecification of ``scenario``; an unknown name is an input error naming the known ones."""
    if scenario not in SCENARIOS:
        raise InputError(f"unknown robustness scenario {scenario!r}", expected=f"one of {', '.join(SCENARIOS)}")
    return SCENARIOS[scenario]


def _model_data(spec: SimulationSpec, settings: ModelSettings) -> ModelData:
    simulated = run_pipeline(spec)
    return ModelData.from_tables(simulated.changes, simulated.comparisons, settings)


def prior_truth(spec: SimulationSpec, settings: ModelSettings, seed: int, *, rho: bool = False) -> dict[str, dict]:
    """θ, τ and σ drawn from the model's prior (s where rows read it, ρ when ``rho``); the design
    (``spec``'s seed) decides the coords. ρ is drawn apart, from a generator of its own, so that
    θ, τ and σ are the same draws with or without it."""
    data = _model_data(spec, settings)
    model = build_model(data, settings)
    names = ["theta", "tau", "sigma", *(["baseline_sd"] if "baseline_sd" in model.named_vars else [])]
    theta, tau, sigma, *baseline_sd = pm.draw([model[name] for name in names], random_seed=seed)
    drawn_rho = {"": float(pm.draw(model["rho"], random_seed=np.random.default_rng([seed, 1])))} if rho else {}
    interventions, markers = data.coords["intervention"], data.coords["marker"]
    missing = set(spec.interventions) - set(interventions) | set(spec.markers) - set(markers)
    if missing:
        raise ValueError(f"the SBC design has no data for {sorted(missing)}; add studies")
    return {
        "theta": {(i, m): float(theta[a, b]) for a, i in enumerate(interventions) for b, m in enumerate(markers)},
        "tau": {m: float(tau[b]) for b, m in enumerate(markers)},
        "sigma": {m: float(sigma[b]) for b, m in enumerate(markers)},
        "baseline_sd": {m: float(value) for m, value in zip(model.coords.get(BASELINE_MARKER, ()), *baseline_sd)},
        "rho": drawn_rho,
    }


def run_replicate(replicate: int, master_seed: int, settings: ModelSettings, *, thin_to: int = THIN_TO,
                  route: str = DEFAULT_ROUTE) -> pd.DataFrame:
    """Ranks and interval coverage of every θ, τ and σ for one SYNTHETIC dataset of ``route``'s
    design (:data:`tables.SBC_RANKS`).

    ``settings`` gives the model and the sampler (chains, draws, tune, backend, cores); its seed
    is replaced by the replicate's own (:func:`replicate_seeds`).
    """
    truth, idata = fit_replicate(replicate, master_seed, settings, route)
    rows = [{"route": route, "replicate": replicate, "master_seed": master_seed, **row}
            for row in _parameter_rows(truth, idata, thin_to)]
    return tables.frame(tables.SBC_RANKS, rows)


def run_robustness_replicate(replicate: int, master_seed: int, settings: ModelSettings, *, route: str,
                             scenario: str, thin_to: int = THIN_TO) -> pd.DataFrame:
    """Posterior median and SD, rank and interval coverage of every θ, τ and σ for one SYNTHETIC
    dataset of ``route``'s design simulated under ``scenario`` (:data:`SCENARIOS`;
    :data:`tables.ROBUSTNESS_ESTIMATES`).

    The SBC replicate of the same route, index and master seed (:func:`run_replicate`) has the
    same prior truth, design and sampler seed, and data from the same random numbers: only the
    scenario's departure differs. ``settings`` as for :func:`run_replicate`.
    """
    misspecification = scenario_misspecification(scenario)
    truth, idata = fit_replicate(replicate, master_seed, settings, route, misspecification)
    rows = [{"scenario": scenario, "route": route, "replicate": replicate, "master_seed": master_seed, **row}
            for row in _parameter_rows(truth, idata, thin_to)]
    return tables.frame(tables.ROBUSTNESS_ESTIMATES, rows)


def fit_replicate(replicate: int, master_seed: int, settings: ModelSettings, route: str,
                  misspecification: Misspecification = Misspecification(), *, truth: dict[str, dict] | None = None,
                  sampler_seed_offset: int = 0) -> tuple[dict[str, dict], az.InferenceData]:
    """The prior truth of replicate ``replicate`` of ``route`` and the fit of its dataset, simulated
    under ``misspecification``: the truth, the design and the sampler's seed are the SBC
    replicate's whatever the misspecification (:func:`replicate_seeds`).

    ``truth`` (as :func:`prior_truth` returns it) replaces the prior draw: the draw depends on the
    model's coordinates as well as the seed (``pm.draw`` seeds the random variables in the order
    of the graph), so a refit in other coordinates takes an earlier run's truth. The sampler's
    seed is the replicate's plus ``sampler_seed_offset``."""
    seeds = replicate_seeds(master_seed, route, replicate)
    settings = settings.replace(seed=seeds.sampler + sampler_seed_offset)
    design = route_design(route)
    spec = dataclasses.replace(design.spec, seed=seeds.simulation)
    truth = prior_truth(spec, settings, seeds.truth, rho=design.rho_from_prior) if truth is None else truth
    simulated = dataclasses.replace(
        spec.with_truth(truth["theta"], truth["tau"], truth["sigma"], baseline_sd=truth.get("baseline_sd", {}),
                        pre_post_correlation=_correlation_of_every_marker(spec, truth.get("rho", {}))),
        misspecification=misspecification)
    model = build_model(_model_data(simulated, settings), settings)
    return truth, sample_model(model, settings)


def _correlation_of_every_marker(spec: SimulationSpec, rho: Mapping[str, float]) -> dict[str, float]:
    """The model's one ρ as every marker's pre/post correlation; none when not drawn."""
    return {marker: rho[""] for marker in spec.markers} if rho else {}


def _parameter_rows(truth: Mapping[str, Mapping], idata: az.InferenceData, thin_to: int) -> list[dict]:
    """Per θ, τ and σ: its name, kind and true value, the true value's rank among ``thin_to``
    thinned posterior draws (fewer when the fit has fewer), the posterior median and SD, whether
    each central interval of :data:`LEVELS` covers the truth, and the fit's divergences."""
    divergences = int(idata.sample_stats["diverging"].sum())
    rows = []
    for kind, values in truth.items():
        if not values:  # baseline_sd where no row reads it, rho where not drawn
            continue
        draws = idata.posterior[kind].stack(sample=("chain", "draw"))
        for key, true_value in values.items():
            selector = (dict(zip(("intervention", "marker"), key)) if kind == "theta"
                        else {} if kind in SCALAR_KINDS
                        else {BASELINE_MARKER if kind == "baseline_sd" else "marker": key})
            sample = draws.sel(selector).to_numpy()
            n_draws = min(thin_to, sample.size)
            thinned = sample[np.linspace(0, sample.size - 1, n_draws).astype(int)]
            covered = {}
            for level in LEVELS:
                lo, hi = np.quantile(sample, [(1 - level) / 2, (1 + level) / 2])
                covered[f"covered{_percent(level)}"] = bool(lo <= true_value <= hi)
            rows.append({
                "parameter": _parameter_name(kind, key), "kind": kind,
                "truth": true_value, "median": float(np.median(sample)), "sd": float(np.std(sample, ddof=1)),
                "rank": int((thinned < true_value).sum()), "n_draws": n_draws,
                **covered, "divergences": divergences, "synthetic": True,
            })
    return rows


def _parameter_name(kind: str, key: tuple[str, str] | str) -> str:
    """A parameter's name in the tables: ``theta[intervention,marker]``, ``tau[marker]``, ``sigma[marker]``,
    ``baseline_sd[marker]``, ``rho``."""
    if kind in SCALAR_KINDS:
        return kind
    return f"{kind}[{','.join(key) if kind == 'theta' else key}]"


def _parameter_key(kind: str, name: str) -> tuple[str, ...] | str:
    """The key of :func:`prior_truth`'s ``kind`` from a parameter's name (:func:`_parameter_name`)."""
    if kind in SCALAR_KINDS:
        return ""
    inside = name[len(kind) + 1:-1]
    return tuple(inside.split(",")) if kind == "theta" else inside


def recorded_truth(replicate_table: pd.DataFrame) -> dict[str, dict]:
    """The prior truth a replicate's table (:data:`tables.SBC_RANKS`) records, as
    :func:`prior_truth` returns it."""
    truth: dict[str, dict] = {kind: {} for kind in KINDS}
    for name, kind, value in replicate_table[["parameter", "kind", "truth"]].itertuples(index=False):
        truth[kind][_parameter_key(kind, name)] = float(value)
    return truth


def pool(replicates: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """The replicates' tables (:data:`tables.SBC_RANKS`) stacked and checked: from one master seed,
    ranks among as many draws, each replicate of a route once; sorted by route, then replicate."""
    return _pooled(replicates, tables.SBC_RANKS, "SBC", ("route",))


def _pooled(replicates: Iterable[pd.DataFrame], table: tables.Table, what: str,
            groups: tuple[str, ...]) -> pd.DataFrame:
    """Replicate tables of ``table`` stacked: one master seed, one number of thinned draws, each
    replicate of a group (``groups``' columns) once; sorted by the groups, then replicate."""
    parts = list(replicates)
    if not parts:
        raise InputError(f"no {what} replicate tables to pool", expected="at least one replicate")
    rows = pd.concat(parts, ignore_index=True)
    for column in ("master_seed", "n_draws"):
        if rows[column].nunique() > 1:
            raise InputError(f"{what} replicates differ in {column}: {sorted(rows[column].unique())}",
                             expected=f"replicates of one run (one {column})")
    twice = rows[rows.duplicated([*groups, "replicate", "parameter"])]
    if not twice.empty:
        first = twice.iloc[0]
        of = ", ".join(f"{group} {first[group]!r}" for group in groups)
        raise InputError(f"{what} replicate {int(first['replicate'])} of {of} appears twice",
                         expected=f"each replicate of a {' and '.join(groups)} once")
    ordered = rows.sort_values([*groups, "replicate"], kind="stable").reset_index(drop=True)
    return tables.frame(table, ordered)


def uniform_ecdf(ranks: np.ndarray, n_draws: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ECDF of ranks in 0..``n_draws`` at evaluation points, the uniform CDF there, and the
    simultaneous :data:`BAND` band of the ECDF under uniformity (Säilynoja et al. 2022, ArviZ's
    ``optimized`` method; exact for discrete ranks evaluated at rank thresholds)."""
    cdf, lower, upper = _band(len(ranks), n_draws)
    thresholds = np.rint(cdf * (n_draws + 1)).astype(int) - 1
    ecdf = (np.asarray(ranks)[None, :] <= thresholds[:, None]).mean(axis=1)
    return ecdf, cdf, lower, upper


@functools.lru_cache(maxsize=None)
def _band(n_ranks: int, n_draws: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Uniform CDF at K - 1 rank thresholds, K = min(n_draws + 1, n_ranks) (at least 2), and the band."""
    from arviz.stats.ecdf_utils import ecdf_confidence_band

    points = max(2, min(n_draws + 1, n_ranks))
    thresholds = np.unique(np.ceil(np.arange(1, points) * (n_draws + 1) / points).astype(int) - 1)
    cdf = (thresholds + 1) / (n_draws + 1)
    lower, upper = ecdf_confidence_band(n_ranks, cdf, cdf, prob=BAND, method="optimized")
    return cdf, lower, upper


def coverage_band(n: int, level: float) -> tuple[float, float]:
    """The central :data:`BAND` binomial interval of the coverage of ``n`` calibrated intervals."""
    from scipy import stats

    lo, hi = stats.binom.interval(BAND, n, level)
    return float(lo / n), float(hi / n)


def _percent(level: float) -> int:
    return round(100 * level)


def summarise(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per route and parameter (:data:`tables.SBC_SUMMARY`): chi-square p of rank uniformity, the
    ECDF's largest departure from uniform and whether it stays in its band, coverage per level and
    whether every level's coverage stays in its binomial band."""
    from scipy import stats

    rows = []
    for (route, parameter), group in ranks.groupby(["route", "parameter"], sort=False):
        n_draws, n = int(group["n_draws"].iloc[0]), len(group)
        counts = np.histogram(group["rank"], bins=N_BINS, range=(0, n_draws + 1))[0]
        ecdf, cdf, lower, upper = uniform_ecdf(group["rank"].to_numpy(), n_draws)
        coverage = {f"coverage{_percent(level)}": float(group[f"covered{_percent(level)}"].mean())
                    for level in LEVELS}
        in_band = all(lo <= coverage[f"coverage{_percent(level)}"] <= hi
                      for level in LEVELS for lo, hi in [coverage_band(n, level)])
        rows.append({
            "route": route, "parameter": parameter, "kind": group["kind"].iloc[0], "n_datasets": n,
            "n_draws": n_draws, "chi2_p": float(stats.chisquare(counts).pvalue),
            "ecdf_max_diff": float(np.abs(ecdf - cdf).max()),
            "ecdf_in_band": bool(((ecdf >= lower) & (ecdf <= upper)).all()),
            **coverage, "coverage_in_band": in_band,
            "divergent_datasets": int((group["divergences"] > 0).sum()), "synthetic": True,
        })
    return tables.frame(tables.SBC_SUMMARY, rows)


def summarise_routes(ranks: pd.DataFrame, summary: pd.DataFrame, routes: Mapping[str, Route] = ROUTES) -> pd.DataFrame:
    """Per route and kind of parameter (:data:`tables.SBC_ROUTE_SUMMARY`): each level's coverage
    pooled over the kind's parameters, with the binomial band of as many datasets (a dataset's
    cells are dependent) and whether it lies inside; how many of the parameters (``summary``,
    :func:`summarise`) fail the chi-square test or leave their ECDF band."""
    rows = []
    for (route, kind), group in ranks.groupby(["route", "kind"], sort=False):
        per_parameter = summary[(summary["route"] == route) & (summary["kind"] == kind)]
        n_datasets = group["replicate"].nunique()
        rows.append({
            "route": route, "kind": kind, "enters_as": ";".join(routes[route].enters_as) if route in routes else "",
            "n_parameters": len(per_parameter), "n_datasets": n_datasets, **_pooled_coverage(group, n_datasets),
            "chi2_p_min": float(per_parameter["chi2_p"].min()),
            "chi2_p_below_05": int((per_parameter["chi2_p"] < 0.05).sum()),
            "outside_ecdf_band": int((~per_parameter["ecdf_in_band"]).sum()),
            "divergent_datasets": _divergent_datasets(group), "synthetic": True,
        })
    return tables.frame(tables.SBC_ROUTE_SUMMARY, rows)


def _pooled_coverage(group: pd.DataFrame, n_datasets: int) -> dict[str, float | bool]:
    """Each level's coverage over ``group``'s rows, its binomial band for ``n_datasets`` draws (a
    dataset's cells are dependent) and whether it lies inside (columns ``coverage50``,
    ``coverage50_lo``, ``coverage50_hi``, ``coverage50_in_band``, …)."""
    coverage: dict[str, float | bool] = {}
    for level in LEVELS:
        name = f"coverage{_percent(level)}"
        value = float(group[f"covered{_percent(level)}"].mean())
        lo, hi = coverage_band(n_datasets, level)
        coverage |= {name: value, f"{name}_lo": lo, f"{name}_hi": hi, f"{name}_in_band": bool(lo <= value <= hi)}
    return coverage


def _divergent_datasets(group: pd.DataFrame) -> int:
    """How many of ``group``'s replicates had divergent transitions."""
    return int((group.groupby("replicate")["divergences"].first() > 0).sum())


def plot_ranks(ranks: pd.DataFrame, path: str | Path) -> None:
    """Per kind of parameter: the histogram of the ranks with the uniform expectation, and each
    parameter's ECDF minus the uniform CDF inside the simultaneous 95% band (one route's ranks:
    the ``sbc_summary`` rule draws one plot per route)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [kind for kind in KINDS if kind in set(ranks["kind"])]
    fig, axes = plt.subplots(2, len(kinds), figsize=(4 * len(kinds), 6), squeeze=False)
    for column, kind in enumerate(kinds):
        group = ranks[ranks["kind"] == kind]
        n_draws = int(group["n_draws"].iloc[0])
        top, bottom = axes[0][column], axes[1][column]
        top.hist(group["rank"], bins=N_BINS, range=(0, n_draws + 1), color="0.6", edgecolor="k")
        top.axhline(len(group) / N_BINS, color="C3", linestyle="--", label="uniform")
        top.set(title=f"{kind} (all cells)", xlabel="rank of the true value", ylabel="count")
        top.legend()
        for _, one in group.groupby("parameter", sort=False):
            ecdf, cdf, lower, upper = uniform_ecdf(one["rank"].to_numpy(), n_draws)
            bottom.step(cdf, ecdf - cdf, where="post", color="0.3", alpha=0.6, linewidth=0.8)
        bottom.fill_between(cdf, lower - cdf, upper - cdf, step="post", color="C0", alpha=0.2,
                            label=f"{BAND:.0%} simultaneous band")
        bottom.axhline(0, color="k", linewidth=0.5)
        bottom.set(title=f"{kind}: ECDF − uniform, per parameter", xlabel="fractional rank",
                   ylabel="ECDF difference")
        bottom.legend(fontsize="small")
    routes = ", ".join(ranks["route"].unique())
    fig.suptitle(f"SYNTHETIC: simulation-based calibration ranks, route {routes} "
                 f"({ranks['replicate'].nunique()} datasets)")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def markdown(summary: pd.DataFrame, ranks: pd.DataFrame, header: str) -> str:
    """A markdown table per route and kind of parameter (:func:`summarise_routes` of the ranks and
    their per-parameter ``summary``), for the log, the CLI and docs/validation.md; a coverage
    outside its binomial band is marked with *."""
    route_summary = summarise_routes(ranks, summary)
    lines = [
        f"SYNTHETIC SBC: {header}; ranks among {int(ranks['n_draws'].iloc[0])} thinned posterior draws", "",
        "| route | kind | parameters | datasets | " + " | ".join(f"{_percent(level)}% coverage" for level in LEVELS)
        + " | min chi2 p | chi2 p < 0.05 | outside ECDF band | divergent datasets |",
        "|---|---|---|---|" + "---|" * (len(LEVELS) + 4),
    ]
    for row in route_summary.itertuples(index=False):
        coverage = [f"{getattr(row, f'coverage{_percent(level)}'):.3f}"
                    + ("" if getattr(row, f"coverage{_percent(level)}_in_band") else "*") for level in LEVELS]
        lines.append(f"| {row.route} | {row.kind} | {row.n_parameters} | {row.n_datasets} | " + " | ".join(coverage)
                     + f" | {row.chi2_p_min:.3f} | {row.chi2_p_below_05} | {row.outside_ecdf_band} | "
                     f"{row.divergent_datasets} |")
    lines += ["", f"* outside its {BAND:.0%} binomial band"]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Robustness under misspecification (SCENARIOS)
# ---------------------------------------------------------------------------------------------


def pool_robustness(replicates: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """The robustness replicates' tables (:data:`tables.ROBUSTNESS_ESTIMATES`) stacked and checked
    as :func:`pool` checks the SBC's; sorted by scenario, route, then replicate."""
    return _pooled(replicates, tables.ROBUSTNESS_ESTIMATES, "robustness", ("scenario", "route"))


def summarise_robustness(estimates: pd.DataFrame) -> pd.DataFrame:
    """Per scenario, route and kind of parameter (:data:`tables.ROBUSTNESS_SUMMARY`): the mean bias
    of the posterior median (median − truth), its RMSE, the mean bias in posterior SDs, and each
    level's coverage with its binomial band, as :func:`summarise_routes` pools the SBC's.

    The truths are prior draws, so these are averages over the prior: under the model itself the
    posterior *mean*'s bias averages to 0, the median's only nearly (τ's and σ's posteriors are
    skewed); the route's SBC (same seeds, no misspecification) is the reference for coverage."""
    rows = []
    for (scenario, route, kind), group in estimates.groupby(["scenario", "route", "kind"], sort=False):
        error = group["median"] - group["truth"]
        n_datasets = group["replicate"].nunique()
        rows.append({
            "scenario": scenario, "route": route, "kind": kind, "n_parameters": group["parameter"].nunique(),
            "n_datasets": n_datasets, "bias": float(error.mean()), "rmse": float(np.sqrt((error ** 2).mean())),
            "bias_in_sd": float((error / group["sd"]).mean()), **_pooled_coverage(group, n_datasets),
            "divergent_datasets": _divergent_datasets(group), "synthetic": True,
        })
    return tables.frame(tables.ROBUSTNESS_SUMMARY, rows)


def robustness_markdown(summary: pd.DataFrame, header: str) -> str:
    """A markdown table of :func:`summarise_robustness`'s rows, as :func:`markdown` prints the SBC's;
    a coverage outside its binomial band is marked with *."""
    lines = [
        f"SYNTHETIC robustness under misspecification: {header}", "",
        "| scenario | route | kind | parameters | datasets | bias | RMSE | bias / posterior SD | "
        + " | ".join(f"{_percent(level)}% coverage" for level in LEVELS) + " | divergent datasets |",
        "|---|---|---|---|---|---|---|---|" + "---|" * (len(LEVELS) + 1),
    ]
    for row in summary.itertuples(index=False):
        coverage = [f"{getattr(row, f'coverage{_percent(level)}'):.3f}"
                    + ("" if getattr(row, f"coverage{_percent(level)}_in_band") else "*") for level in LEVELS]
        lines.append(f"| {row.scenario} | {row.route} | {row.kind} | {row.n_parameters} | {row.n_datasets} | "
                     f"{row.bias:+.3f} | {row.rmse:.3f} | {row.bias_in_sd:+.2f} | " + " | ".join(coverage)
                     + f" | {row.divergent_datasets} |")
    lines += ["", f"* outside its {BAND:.0%} binomial band"]
    return "\n".join(lines)
