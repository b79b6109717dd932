"""Model, sampler and diagnostics settings: one frozen object with documented defaults.

The config's ``model``, ``sampler`` and ``diagnostics`` blocks are merged over the defaults
below. Inside ``model`` the keys may be grouped in sub-blocks ``priors``, ``covariates`` and
``data``; every key must be a field name of :class:`ModelSettings` (unknown keys are an error,
so a typo never silently falls back to a default). docs/model.md explains each default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from crsmeta.errors import InputError

MODEL_SUBBLOCKS = ("priors", "covariates", "data")
CONFIG_BLOCKS = ("model", "sampler", "diagnostics")
# the settings that leave rows out of an analysis (sensitivity analyses set them; none changes the
# model's levels, crsmeta.model.data.ModelData.from_tables)
DATA_FILTERS = ("include_cases", "include_summaries", "exclude_digitised", "exclude_studies")


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    """Everything a fit depends on besides the data.

    Scales are on the effect scale: natural-log ratio for markers, °C for temperature.
    """

    # priors: markers (log ratio post/pre)
    grand_mean_sd: float = 1.0  # mu_marker ~ Normal(0, .): a 63% fall is one SD
    intervention_sd: float = 0.5  # alpha[intervention] ~ Normal(0, .)
    marker_sd: float = 0.5  # beta[marker] ~ Normal(0, .)
    interaction_sd: float = 0.5  # prior mean of the SD of gamma[intervention, marker] (Gamma(2, 2/mean))
    tau_sd: float = 0.5  # scale of tau[marker], the between-study SD (prior mean for "gamma")
    tau_prior: str = "gamma"  # "gamma": Gamma(2, 2/tau_sd) | "halfnormal": HalfNormal(tau_sd)
    sigma_sd: float = 1.0  # prior mean of sigma[marker] ~ Gamma(2, 2/mean): SD of patients' changes
    # priors: temperature (°C difference), its own block
    temp_mean_sd: float = 1.0  # mu_temp ~ Normal(0, .)
    temp_intervention_sd: float = 0.5  # alpha_temp[intervention] ~ Normal(0, .)
    temp_tau_sd: float = 0.5  # scale of tau[temperature], as tau_sd
    temp_sigma_sd: float = 1.0  # prior mean of sigma[temperature] ~ Gamma(2, 2/mean)
    # priors: summary-level rows
    corr_prior: tuple[float, float] = (5.0, 5.0)  # rho ~ Beta(a, b): pre/post correlation
    # prior mean of the baseline log-SD s[marker] ~ Gamma(2, 2/mean) across patients: what a ratio of two
    # cohorts' means or medians keeps of the baseline's spread (crsmeta.cohort_log_ratio)
    baseline_sd: float = 1.0
    temp_baseline_sd: float = 1.0  # the same for temperature's baseline SD (°C): a difference of two medians keeps it
    row_variance_shape: float = 3.0  # a of InverseGamma(a, b) on a row's unknown se² (mean tied to sigma)
    covariate_sd: float = 0.5  # population, co-intervention, grade and baseline coefficients ~ Normal(0, .)
    # likelihood
    likelihood: str = "normal"  # "normal" | "student_t" (case level)
    nu_prior: tuple[float, float] = (2.0, 0.1)  # nu ~ Gamma(alpha, beta), shifted by +1
    # covariates: "auto" = on when the data hold at least two populations (true: whenever they do)
    population: bool | str = "auto"
    co_interventions: bool = False
    baseline_grade: bool = False
    baseline_level: bool = False  # centred log pre level (regression to the mean; docs/model.md)
    # data filters
    include_cases: bool = True
    include_summaries: bool = True
    exclude_digitised: bool = False
    exclude_studies: tuple[str, ...] = ()
    # sampler
    backend: str = "nutpie"  # "nutpie" | "pymc"
    chains: int = 4
    draws: int = 1000
    tune: int = 500  # docs/model.md: 500 vs 1000 tuning steps on every bundled analysis
    target_accept: float = 0.9
    seed: int = 20240917
    cores: int = 4
    prior_draws: int = 500
    # diagnostics gate
    gate: bool = True
    rhat_max: float = 1.01
    ess_min: float = 400.0
    max_divergences: int = 0
    bfmi_min: float = 0.2
    # a fit short only of ESS (or R-hat <= 1.05) is resampled with doubled draws up to this x draws
    max_draws_factor: int = 4

    def __post_init__(self) -> None:
        if self.likelihood not in ("normal", "student_t"):
            raise InputError(
                f"model.likelihood is {self.likelihood!r}", expected="'normal' or 'student_t'"
            )
        if self.tau_prior not in ("gamma", "halfnormal"):
            raise InputError(f"model.priors.tau_prior is {self.tau_prior!r}", expected="'gamma' or 'halfnormal'")
        if self.backend not in ("nutpie", "pymc"):
            raise InputError(f"sampler.backend is {self.backend!r}", expected="'nutpie' or 'pymc'")
        if self.population not in (True, False, "auto"):
            raise InputError(
                f"model.covariates.population is {self.population!r}",
                expected="true, false or 'auto'",
            )
        for name in ("corr_prior", "nu_prior", "exclude_studies"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "ModelSettings":
        """Merge the config's ``model``, ``sampler`` and ``diagnostics`` blocks over the defaults.

        The top-level ``seed`` is the sampler's seed unless ``sampler.seed`` is given.
        """
        changes: dict[str, Any] = {}
        if "seed" in cfg:  # the project's master seed, unless sampler.seed overrides it
            changes["seed"] = cfg["seed"]
        for block in CONFIG_BLOCKS:
            changes.update(_flatten_block(block, cfg.get(block) or {}))
        return cls.from_dict(changes)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ModelSettings":
        """Settings from a flat mapping of field names (e.g. :meth:`to_dict` after a round trip)."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(
                f"unknown model setting(s) {', '.join(unknown)}",
                expected=f"one of {', '.join(sorted(known))}",
            )
        return cls(**values)

    def replace(self, **changes: Any) -> "ModelSettings":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def without_data_filters(self) -> "ModelSettings":
        """A copy whose data filters keep every row (their defaults): the rows that decide the
        model's levels (crsmeta.model.data.ModelData.from_tables)."""
        defaults = {field.name: field.default for field in dataclasses.fields(self) if field.name in DATA_FILTERS}
        return self.replace(**defaults)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (tuples as lists), for Snakemake params and JSON."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def config_hash(self) -> str:
        """SHA-256 of the settings, stamped into every posterior file."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _flatten_block(block: str, values: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if block == "model" and key in MODEL_SUBBLOCKS:
            if not isinstance(value, Mapping):
                raise InputError(f"config '{block}.{key}' is not a mapping", expected="a mapping")
            flat.update(value)
        else:
            flat[key] = value
    return flat
