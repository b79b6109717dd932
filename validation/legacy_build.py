"""The parameterisation of the model before issue 9 (crsmeta 0.1.0, commit 8bb7e46), kept only so that
validation/reparameterisation.py and benchmarks/run.py can compare it with the package's model.
The prior on θ and the likelihood are the same; only the coordinates differ (docs/model.md).
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from crsmeta.model.build import _by_family, _censored_terms, _covariates  # unchanged by issue 9
from crsmeta.model.data import CENSOR_CODES, LEARNED_METHODS, ModelData
from crsmeta.model.settings import ModelSettings

# Routes whose printed SE is only the prior mean of a learned se²: a P value from a raw-scale
# (paired t or Wilcoxon) test does not pin the SE of a log ratio.
SE_AS_PRIOR_METHODS = ("p_value_exact",)


def build_model(data: ModelData, settings: ModelSettings) -> pm.Model:
    """Effects θ[intervention, marker], study effects, case- and summary-level likelihoods."""
    with pm.Model(coords=data.coords) as model:
        theta = _effects(data, settings)
        tau = _tau(data, settings)
        # boundary-avoiding Gamma(2, 2/mean): a summary row whose SD is learned has no funnel at 0
        sigma_mean = _by_family(data, settings.sigma_sd, settings.temp_sigma_sd)
        sigma = pm.Gamma("sigma", alpha=2.0, beta=2.0 / sigma_mean, dims="marker")
        study_marker_marker = np.array(
            [data.coords["marker"].index(label.split("|", 1)[1]) for label in data.coords["study_marker"]])
        u_z = pm.Normal("u_z", 0.0, 1.0, dims="study_marker")
        u = pm.Deterministic("u", tau[study_marker_marker] * u_z, dims="study_marker")
        covariates = _covariates(data, settings)
        if not data.cases.empty:
            mu = _linear_predictor(data, data.cases, theta, u, covariates, prefix="case")
            _case_likelihood(data, settings, mu, sigma)
        if not data.observations.empty:
            mu = _linear_predictor(data, data.observations, theta, u, covariates, prefix="summary")
            _summary_likelihood(data, settings, mu, sigma)
    return model


def _tau(data: ModelData, settings: ModelSettings) -> pt.TensorVariable:
    """Between-study SD per marker: Gamma(2, 2/scale) (boundary-avoiding, mean = scale; Chung
    et al. 2013) by default, HalfNormal(scale) on request. A marker reported by one study has a
    τ informed by its prior only; the Gamma keeps NUTS out of the τ → 0 funnel there."""
    scale = _by_family(data, settings.tau_sd, settings.temp_tau_sd)
    if settings.tau_prior == "halfnormal":
        return pm.HalfNormal("tau", sigma=scale, dims="marker")
    return pm.Gamma("tau", alpha=2.0, beta=2.0 / scale, dims="marker")


def _effects(data: ModelData, settings: ModelSettings) -> pt.TensorVariable:
    """θ: additive intervention + marker effects with a pooled interaction; temperature apart."""
    n_int = len(data.coords["intervention"])
    blocks = []
    if data.lab_markers:
        mu = pm.Normal("mu", 0.0, settings.grand_mean_sd)
        alpha = pm.Normal("alpha", 0.0, settings.intervention_sd, dims="intervention")
        beta = pm.Normal("beta", 0.0, settings.marker_sd, dims="lab_marker")
        # boundary-avoiding Gamma(2, 2/mean) (Chung et al. 2013): with few cells a HalfNormal
        # puts mass at 0 where the non-centred interaction mixes slowly
        sigma_gamma = pm.Gamma("sigma_gamma", alpha=2.0, beta=2.0 / settings.interaction_sd)
        gamma_z = pm.Normal("gamma_z", 0.0, 1.0, dims=("intervention", "lab_marker"))
        gamma = pm.Deterministic("gamma", sigma_gamma * gamma_z, dims=("intervention", "lab_marker"))
        blocks.append(mu + alpha[:, None] + beta[None, :] + gamma)
    if data.has_temperature:
        mu_temp = pm.Normal("mu_temp", 0.0, settings.temp_mean_sd)
        alpha_temp = pm.Normal("alpha_temp", 0.0, settings.temp_intervention_sd, dims="intervention")
        blocks.append((mu_temp + alpha_temp).reshape((n_int, 1)))
    return pm.Deterministic("theta", pt.concatenate(blocks, axis=1), dims=("intervention", "marker"))


def _linear_predictor(data, frame, theta, u, covariates, *, prefix: str) -> pt.TensorVariable:
    dim = prefix
    i = pm.Data(f"{prefix}_intervention_idx", data.index(frame, "intervention", "intervention"), dims=dim)
    m = pm.Data(f"{prefix}_marker_idx", data.index(frame, "marker", "marker"), dims=dim)
    s = pm.Data(f"{prefix}_study_marker_idx", data.study_marker_index(frame), dims=dim)
    family = pm.Data(f"{prefix}_family_idx", (frame["marker"] == "temperature").to_numpy(dtype=int), dims=dim)
    mu = theta[i, m] + u[s]
    if "population" in covariates:
        p = pm.Data(f"{prefix}_population_idx", data.index(frame, "population", "population"), dims=dim)
        mu = mu + covariates["population"][p, family]
    if "co" in covariates:
        x = pm.Data(f"{prefix}_co_interventions", data.co_intervention_matrix(frame), dims=(dim, "co_intervention"))
        mu = mu + (x * covariates["co"][:, family].T).sum(axis=1)
    if "grade" in covariates and prefix == "case":
        grade = pm.Data("case_grade", data.centred_grade(), dims=dim)
        mu = mu + grade * covariates["grade"][family]
    return mu


def _case_likelihood(data: ModelData, settings: ModelSettings, mu, sigma) -> None:
    """Exact changes as an observed variable; censored ones as interval/bound log-CDF terms."""
    cases = data.cases
    code = cases["censoring"].map(CENSOR_CODES).to_numpy()
    m_idx = data.index(cases, "marker", "marker")
    exact = np.flatnonzero(code == 0)
    censored = np.flatnonzero(code != 0)
    nu = 1.0 + pm.Gamma("nu_minus_one", *settings.nu_prior) if settings.likelihood == "student_t" else None

    def dist(rows):
        if nu is None:
            return pm.Normal.dist(mu[rows], sigma[m_idx[rows]])
        return pm.StudentT.dist(nu=nu, mu=mu[rows], sigma=sigma[m_idx[rows]])

    if exact.size:
        model = pm.modelcontext(None)
        model.add_coord("case_exact", cases.index[exact].astype(str))
        observed = cases["change"].to_numpy()[exact]
        if nu is None:
            pm.Normal("change", mu[exact], sigma[m_idx[exact]], observed=observed, dims="case_exact")
        else:
            pm.StudentT("change", nu=nu, mu=mu[exact], sigma=sigma[m_idx[exact]], observed=observed, dims="case_exact")
    if censored.size:
        _censored_terms(cases.iloc[censored], code[censored], dist(censored))


def _summary_likelihood(data: ModelData, settings: ModelSettings, mu, sigma) -> None:
    """Summary rows: Normal with a known or ρ-dependent SE; Student-t where the SE is learned.

    A log ratio of arithmetic means of log-normal levels estimates θ + σ²/2 when a patient's
    change is independent of the baseline level (the model's patient-level assumption): the
    row's mean is shifted by mean_weight · σ[marker]²/2; an unstated statistic (mean_weight
    0.5) adds the variance of that unknown shift, 0.25 · (σ²/2)².
    """
    obs = data.observations
    n = obs["n_effective"].to_numpy(dtype=float)
    efficiency = obs["efficiency"].to_numpy(dtype=float)
    weight = obs["mean_weight"].to_numpy(dtype=float)
    half_var = sigma[data.index(obs, "marker", "marker")] ** 2 / 2
    mu = mu + weight * half_var
    extra = obs["extra_var"].to_numpy(dtype=float) + weight * (1 - weight) * half_var**2
    se_as_prior = obs["method"].isin(SE_AS_PRIOR_METHODS).to_numpy()
    learned = obs["method"].isin(LEARNED_METHODS).to_numpy() | se_as_prior
    se_known = np.nan_to_num(obs["se_known"].to_numpy(dtype=float))
    variance = se_known**2 + extra
    disp_rows = np.flatnonzero(obs["se_known"].isna() & obs["disp_pre"].notna())
    if disp_rows.size:
        rho = pm.Beta("rho", *settings.corr_prior)
        d_pre = obs["disp_pre"].to_numpy(dtype=float)[disp_rows]
        d_post = obs["disp_post"].to_numpy(dtype=float)[disp_rows]
        change_var = d_pre**2 + d_post**2 - 2 * rho * d_pre * d_post
        variance = pt.set_subtensor(variance[disp_rows], efficiency[disp_rows] * change_var / n[disp_rows]
                                    + extra[disp_rows])
    model = pm.modelcontext(None)
    known = np.flatnonzero(~learned)
    if known.size:
        model.add_coord("summary_known", obs.index[known].astype(str))
        pm.Normal("summary_y", mu[known], pt.sqrt(variance[known]), observed=obs["y"].to_numpy()[known],
                  dims="summary_known")
    rows = np.flatnonzero(learned)
    if rows.size:
        from_sigma = efficiency[rows] * sigma[data.index(obs.iloc[rows], "marker", "marker")] ** 2 / n[rows]
        mean_variance = pt.where(se_as_prior[rows], se_known[rows] ** 2, from_sigma) + extra[rows]
        _learned_variance_rows(obs.iloc[rows], mu[rows], mean_variance, settings.row_variance_shape)


def _learned_variance_rows(obs, mu, mean_variance, shape: float) -> None:
    """Rows whose SE was not printed: se² ~ InverseGamma(a, b), E[se²] = σ[marker]²·eff/n + extra
    (or, for an exact P value, the SE it implies, squared, + extra).

    The unknown variance is integrated out exactly: y ~ StudentT(2a, mu, sqrt(b/a)). A P value
    printed as an inequality is data too, the event se² ≤ bound(y): the likelihood of (y, event)
    adds log P(se² ≤ bound | y), a regularised incomplete gamma function (the conditional of se²
    given y is InverseGamma(a + 1/2, b + (y − mu)²/2)). It is not divided by the prior mass
    P(se² ≤ bound): that would treat the bound as known before y and, as the mass shrinks when
    σ grows, pull σ (and with it the σ²/2 offset of mean-based rows) upwards.
    """
    pm.modelcontext(None).add_coord("summary_learned", obs.index.astype(str))
    y = obs["y"].to_numpy(dtype=float)
    b = (shape - 1.0) * mean_variance
    pm.StudentT("summary_y_learned", nu=2 * shape, mu=mu, sigma=pt.sqrt(b / shape), observed=y,
                dims="summary_learned")
    bounded = np.flatnonzero(np.isfinite(obs["se_upper"].to_numpy(dtype=float)))
    if bounded.size:
        bound = obs["se_upper"].to_numpy(dtype=float)[bounded] ** 2
        b_bounded = b[bounded]
        posterior_mass = pt.gammaincc(shape + 0.5, (b_bounded + (y[bounded] - mu[bounded]) ** 2 / 2) / bound)
        pm.Potential("summary_se_bounds", pt.sum(pt.log(posterior_mass)))
