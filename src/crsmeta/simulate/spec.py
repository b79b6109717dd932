"""What to simulate: the specification (all numbers are simulation settings, not clinical facts)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

SYNTHETIC = "SYNTHETIC"
CONTROL = "standard_care"


@dataclass(frozen=True)
class HyperPrior:
    """Seeded hyperprior for the truth when it is not given: theta = a[m] + b[i] + c[i, m].

    Marker terms are on the log-ratio scale; for temperature they are multiplied by
    ``temperature_scale`` (°C per log-ratio unit).
    """

    marker_mean: float = -0.6
    marker_sd: float = 0.4
    intervention_sd: float = 0.3
    cell_sd: float = 0.2
    tau_scale: float = 0.3
    sigma_low: float = 0.3
    sigma_scale: float = 0.3
    temperature_scale: float = 1.0


@dataclass(frozen=True)
class Misspecification:
    """Departures of the generating model from the statistical model's assumptions, for the
    robustness study (crsmeta.calibration.SCENARIOS); the default departs from nothing.

    * ``change_df``: each patient's change is θ + u + σ·t·√((df − 2)/df), t Student-t with
      ``change_df`` degrees of freedom: the normal's SD, heavier tails (df > 2, so the SD exists);
    * ``level_skewness``: the skew-normal shape α of the baseline levels (log levels; °C for
      temperature), standardised to the mean and SD of the spec's ``baseline``; 0 = normal;
    * ``shared_study_effect``: one study effect per study (in units of τ[marker]) for all its
      markers, instead of one per marker.

    Every option takes the same random numbers as the normal model (crsmeta.simulate.truth), so a
    misspecified dataset has the design — studies, sizes, markers, units — of the dataset of the
    same seed without it, and the default leaves every simulated file as it was.
    """

    change_df: float | None = None
    level_skewness: float = 0.0
    shared_study_effect: bool = False

    def __post_init__(self) -> None:
        if self.change_df is not None and not (math.isfinite(self.change_df) and self.change_df > 2):
            raise ValueError(f"change_df must be a finite number > 2 (the t's SD exists), not {self.change_df!r}")
        if not math.isfinite(self.level_skewness):
            raise ValueError(f"level_skewness must be a finite number, not {self.level_skewness!r}")


@dataclass(frozen=True)
class SimulationSpec:
    """Everything the simulator needs; all numbers are simulation settings, not clinical facts."""

    interventions: tuple[str, ...] = (
        "tocilizumab", "plasma_exchange", "emapalumab", "corticosteroids", "hemoadsorption", CONTROL,
    )
    markers: tuple[str, ...] = (
        "IL-6", "IFN-gamma", "IL-10", "TNF-alpha", "ferritin", "CRP", "temperature",
    )
    populations: tuple[str, ...] = ("car_t_crs", "car_t_crs", "viral_cytokine_storm", "hlh_mas")
    theta: Mapping[tuple[str, str], float] | None = None
    tau: Mapping[str, float] | None = None
    sigma: Mapping[str, float] | None = None
    hyperprior: HyperPrior = field(default_factory=HyperPrior)
    misspecification: Misspecification = field(default_factory=Misspecification)
    n_case_reports: int = 6
    n_case_series: int = 4
    n_cohorts_mean_sd: int = 2
    n_cohorts_mean_p: int = 2
    n_cohorts_median_iqr: int = 2
    n_cohorts_pct_change: int = 1
    n_cohorts_effect_se: int = 0
    n_trials: int = 1
    # kinds that print one summary route each, for the route-by-route calibration (crsmeta.calibration)
    n_cohorts_mean_se: int = 0
    n_cohorts_mean_only: int = 0
    n_cohorts_mean_p_exact: int = 0
    n_cohorts_mean_p_bound: int = 0
    n_cohorts_median_range: int = 0
    n_cohorts_effect_ci: int = 0
    n_cohorts_median_only: int = 0
    case_series_size: tuple[int, int] = (3, 8)
    cohort_size: tuple[int, int] = (12, 40)
    markers_per_study: tuple[int, int] = (3, 7)
    baseline: Mapping[str, tuple[float, float]] = field(default_factory=lambda: {
        "IL-6": (300.0, 1.2), "IFN-gamma": (100.0, 1.2), "IL-10": (50.0, 1.0),
        "IL-2": (15.0, 0.8), "TNF-alpha": (20.0, 0.8), "ferritin": (3000.0, 1.0),
        "CRP": (120.0, 0.6), "temperature": (39.3, 0.5),
    })
    lod: Mapping[str, float] = field(default_factory=lambda: {
        "IL-6": 2.0, "IFN-gamma": 5.0, "IL-10": 5.0, "IL-2": 2.0, "TNF-alpha": 2.0,
    })
    source_units: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: {
        "IL-6": ("pg/mL", "ng/L"), "IFN-gamma": ("pg/mL",), "IL-10": ("pg/mL", "ng/mL"),
        "IL-2": ("pg/mL",), "TNF-alpha": ("pg/mL", "ng/L"), "ferritin": ("ng/mL", "µg/L"),
        "CRP": ("mg/L", "mg/dL"), "temperature": ("°C", "°F"),
    })
    # marker → the correlation of the patients' log levels (°C for temperature) before and after;
    # where given, a patient's change depends on the baseline level so that they correlate by it
    # (crsmeta.simulate.truth.draw_arm); elsewhere changes are independent of the level and the
    # correlation is s/√(s² + σ²)
    pre_post_correlation: Mapping[str, float] = field(default_factory=dict)
    frac_missing_sd: float = 0.3
    frac_digitised_series: float = 0.25
    post_hours: float = 24.0
    seed: int = 20261121

    def with_truth(
        self,
        theta: Mapping[tuple[str, str], float],
        tau: Mapping[str, float],
        sigma: Mapping[str, float],
        seed: int | None = None,
        baseline_sd: Mapping[str, float] | None = None,
        pre_post_correlation: Mapping[str, float] | None = None,
    ) -> "SimulationSpec":
        """The same spec with a given truth (e.g. drawn from the model's prior for SBC);
        ``baseline_sd`` replaces the log-SD of those markers' baseline levels (their centre kept),
        ``pre_post_correlation`` their patients' pre/post correlation."""
        baseline = dict(self.baseline) | {m: (self.baseline[m][0], float(s)) for m, s in (baseline_sd or {}).items()}
        correlation = dict(self.pre_post_correlation) | dict(pre_post_correlation or {})
        return replace(self, theta=dict(theta), tau=dict(tau), sigma=dict(sigma), baseline=baseline,
                       pre_post_correlation=correlation, seed=self.seed if seed is None else seed)

    def __post_init__(self) -> None:
        for marker, rho in self.pre_post_correlation.items():
            if not 0 < rho < 1:
                raise ValueError(f"pre_post_correlation of {marker} must lie in (0, 1), not {rho!r}")


def spec_from_config(synthetic: Mapping[str, Any]) -> SimulationSpec:
    """A spec from a config's ``synthetic`` block: ``seed`` plus any SimulationSpec count fields."""
    counts = {key: int(value) for key, value in synthetic.items() if key.startswith("n_")}
    return SimulationSpec(seed=int(synthetic.get("seed", SimulationSpec.seed)), **counts)
