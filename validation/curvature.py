"""Where the main posterior's curvature sets NUTS' step size: the scaled Hessian at posterior draws.

NUTS' leapfrog is stable only for a step below ~2/√λ, λ the largest eigenvalue of the log
density's Hessian in the sampler's scaled coordinates (each unconstrained coordinate divided by its
posterior SD, as a diagonal mass matrix does). Where λ varies over the posterior (a funnel, a
curved ridge), the step adapts to the draws where λ is largest and every other draw pays with
more leapfrog steps. This script takes a main fit's draws (``results/model/main/posterior.nc``),
computes −∇²log p at a sample of them by central differences of the compiled gradient, and
prints the quantiles of λ, the coordinates that carry the largest eigenvectors, and how far λ falls
when each of the most loaded coordinates is left out (what removing its curvature would buy).

    python validation/curvature.py [--project .] [--draws 300] [--seed 0]

Reads the project's config, changes and comparisons as the fit did; compiles the model's log
density (numba; the workflow's compile cache under the project's ``.cache/`` when it holds it).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# the workflow's compile cache and hash seed (crsmeta.compile_cache), before PyTensor is imported
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from crsmeta.compile_cache import compile_cache_environment  # noqa: E402


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--draws", type=int, default=300, help="posterior draws at which the Hessian is taken")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def scaled_hessians(gradient, points, scales, relative_step: float = 1e-5):
    """−∇²log p at each of ``points``, in coordinates divided by ``scales``, by central
    differences of ``gradient`` (a function of a flat point returning the gradient), symmetrised."""
    import numpy as np

    hessians = []
    for point in points:
        columns = []
        for index, scale in enumerate(scales):
            step = np.zeros_like(point)
            step[index] = relative_step * scale
            columns.append((gradient(point + step) - gradient(point - step)) / (2 * relative_step))
        hessian = -np.array(columns).T * scales[:, None]
        hessians.append((hessian + hessian.T) / 2)
    return np.array(hessians)


def main() -> None:
    arguments = _arguments()
    project = arguments.project.resolve()
    os.environ.update(compile_cache_environment(project / ".cache"))
    import arviz as az
    import numpy as np
    import yaml

    from crsmeta import tables
    from crsmeta.model import ModelData, ModelSettings
    from crsmeta.model.build import build_model

    settings = ModelSettings.from_config(yaml.safe_load((project / "config" / "config.yaml").read_text()))
    data = ModelData.from_tables(tables.read(tables.CHANGES, project / "results" / "model" / "changes.tsv"),
                                 tables.read(tables.OBSERVATIONS, project / "results" / "model" / "comparisons.tsv"),
                                 settings)
    model = build_model(data, settings)
    function = model.logp_dlogp_function(ravel_inputs=True, mode="NUMBA")
    function.set_extra_values({})
    posterior = az.from_netcdf(project / "results" / "model" / "main" / "posterior.nc").posterior
    draws = posterior.sizes["chain"] * posterior.sizes["draw"]
    labels, blocks = [], []
    for variable in function._grad_vars:
        values = posterior[variable.name].values.reshape(draws, -1)
        blocks.append(values)
        labels += [f"{variable.name}[{index}]" for index in range(values.shape[1])]
    flat = np.concatenate(blocks, axis=1)
    scales = flat.std(axis=0)
    chosen = np.random.default_rng(arguments.seed).choice(draws, min(arguments.draws, draws), replace=False)
    hessians = scaled_hessians(lambda point: function(point)[1], flat[chosen], scales)
    eigenvalues, eigenvectors = np.linalg.eigh(hessians)
    largest, top = eigenvalues[:, -1], eigenvectors[:, :, -1]
    quantiles = (0.5, 0.9, 0.99, 1.0)
    print(f"{len(chosen)} draws, {len(labels)} coordinates; largest eigenvalue of the scaled Hessian")
    print("  quantiles " + ", ".join(f"{q:.0%}: {v:.1f}" for q, v in zip(quantiles, np.quantile(largest, quantiles))))
    print(f"  step-size limit 2/sqrt(lambda) at the 90% quantile: {2 / np.sqrt(np.quantile(largest, 0.9)):.3f}")
    load = np.mean(top**2 * largest[:, None], axis=0)  # how much of λ each coordinate carries, on average
    print("coordinates carrying the largest eigenvector (mean of v_j^2 * lambda):")
    for index in np.argsort(-load)[:8]:
        kept = [j for j in range(len(labels)) if j != index]
        without = np.linalg.eigvalsh(hessians[:, kept][:, :, kept])[:, -1]
        print(f"  {labels[index]:40s} {load[index]:7.2f}   without it: "
              + ", ".join(f"{q:.0%} {v:.1f}" for q, v in zip(quantiles, np.quantile(without, quantiles))))


if __name__ == "__main__":
    main()
