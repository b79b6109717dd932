"""Non-centred = half-centred: the θ interaction's coordinates leave the posterior unchanged.

The package's model samples the interaction γ = σ_γ^(1−c) · Z̃, Z̃ ~ ZeroSumNormal(σ_γ^c), with
c = ``crsmeta.model.build.INTERACTION_CENTRING`` (0 by default: non-centred; docs/model.md, "Effects").
This fits one data set with c = 0 and c = 0.5, through the package's own sampling (``sample_model``: nutpie,
then the draws of τ integrated out), and compares the 2.5%, 50% and 97.5% quantiles of every θ and
τ as validation/reparameterisation.py does: z = difference / combined MCSE, mostly below 3 in
absolute value when both fits sample one posterior.

    PYTHONHASHSEED=0 python validation/interaction_centring.py [--dataset bundled] [--seed 1]

Data sets as validation/reparameterisation.py's (``bundled`` needs the workflow's tables first).
Model and sampler settings are ``ModelSettings()``'s (4 chains × 1000 draws after 500 tuning steps).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "validation"))
from crsmeta.compile_cache import compile_cache_environment  # noqa: E402

CENTRINGS = (0.0, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=("bundled", "demo", "hackshaw"), default="bundled")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    os.environ.update(compile_cache_environment(ROOT / ".cache"))  # before PyTensor is imported
    import reparameterisation

    from crsmeta.comparisons import summary_comparisons
    from crsmeta.model import build
    from crsmeta.model.data import ModelData
    from crsmeta.model.sample import sample_model
    from crsmeta.model.settings import ModelSettings

    settings = ModelSettings(gate=False, cores=2, seed=arguments.seed)
    with reparameterisation.dataset_context(arguments.dataset):
        changes, summaries = reparameterisation.DATASETS[arguments.dataset]()
        data = ModelData.from_tables(changes, summary_comparisons(summaries)[0], settings)
        quantiles = []
        for centring in CENTRINGS:
            build.INTERACTION_CENTRING = centring
            idata = sample_model(build.build_model(data, settings), settings)
            print(f"centring {centring}: {int(idata.sample_stats['diverging'].sum())} divergent transitions", flush=True)
            quantiles.append(reparameterisation.quantile_table(idata))
    comparison = reparameterisation.compare(*quantiles)
    largest = comparison.loc[comparison["z"].abs().idxmax()]
    print(f"{arguments.dataset}: {len(comparison)} quantiles compared, {int((comparison['z'].abs() > 3).sum())} "
          f"with |z| > 3; the largest |z| {abs(largest['z']):.2f} at {largest['parameter']} {largest['element']} "
          f"({largest['quantile']}: {largest['value_old']:.3f} non-centred, {largest['value_new']:.3f} half-centred)")


if __name__ == "__main__":
    main()
