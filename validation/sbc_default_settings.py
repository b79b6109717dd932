"""SYNTHETIC SBC datasets refitted at the default sampler settings: their divergent transitions.

The SBC target samples with short chains (config/calibration*.yaml: 2 × 200 draws after 300
tuning steps). This fits the given replicates of the given routes again, in this process, with
`ModelSettings()`'s sampler (4 chains × 1000 draws after 500 tuning steps, target_accept 0.9),
and prints each fit's divergent transitions: whether a dataset that diverged in the SBC still does
with the settings a user's analysis gets. Nothing is written.

    PYTHONHASHSEED=0 python validation/sbc_default_settings.py effect_se:17 case_censored:39 [--master-seed 1]

(PYTHONHASHSEED=0 is the hash seed the workflow gives its jobs, crsmeta.compile_cache.HASH_SEED.)

To compare coordinates of the θ interaction (crsmeta.model.build.INTERACTION_CENTRING) on the
same datasets, with several sampler seeds (the replicate's seed plus each offset):

    PYTHONHASHSEED=0 python validation/sbc_default_settings.py effect_se:12 effect_se:14 effect_se:17 \\
        case_exact:81 --centrings 0 0.5 1 --seed-offsets 1 2 3 \\
        --truths calibration/results/calibration/replicates

``--truths`` takes each replicate's prior truth from the SBC run's replicate tables instead of
drawing it again: the draw depends on the model's coordinates as well as the seed, so after a
change of coordinates only the recorded truth gives the SBC's dataset.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from crsmeta.compile_cache import compile_cache_environment  # noqa: E402


def _route_replicate(text: str) -> tuple[str, int]:
    """``route:replicate`` (e.g. ``effect_se:17``) as the route's name and the replicate's index."""
    route, _, replicate = text.partition(":")
    if not route or not replicate.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not route:replicate (e.g. effect_se:17)")
    return route, int(replicate)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("replicates", nargs="+", type=_route_replicate, help="route:replicate, e.g. effect_se:17")
    parser.add_argument("--master-seed", type=int, default=1, help="the SBC run's calibration.seed")
    parser.add_argument("--centrings", type=float, nargs="+",
                        help="INTERACTION_CENTRING values to fit with (default: the model's)")
    parser.add_argument("--seed-offsets", type=int, nargs="+", default=[0],
                        help="added to the replicate's sampler seed, one fit each")
    parser.add_argument("--truths", type=Path, help="the SBC run's replicates/ directory (<route>/<k>.tsv)")
    return parser.parse_args()


def main() -> None:
    arguments = _arguments()
    os.environ.update(compile_cache_environment(ROOT / ".cache"))  # before PyTensor is imported
    from crsmeta import tables
    from crsmeta.calibration import fit_replicate, recorded_truth
    from crsmeta.model import build
    from crsmeta.model.settings import ModelSettings

    settings = ModelSettings(gate=False, cores=1)
    for centring in arguments.centrings or [build.INTERACTION_CENTRING]:
        build.INTERACTION_CENTRING = centring
        for route, replicate in arguments.replicates:
            truth = (recorded_truth(tables.read(tables.SBC_RANKS, arguments.truths / route / f"{replicate}.tsv"))
                     if arguments.truths else None)
            for offset in arguments.seed_offsets:
                _, idata = fit_replicate(replicate, arguments.master_seed, settings, route, truth=truth,
                                         sampler_seed_offset=offset)
                divergences = int(idata.sample_stats["diverging"].sum())
                print(f"centring {centring} {route} {replicate} seed+{offset}: {divergences} divergent transitions",
                      flush=True)


if __name__ == "__main__":
    main()
