"""SYNTHETIC SBC datasets refitted at the default sampler settings: their divergent transitions.

The SBC target samples with short chains (config/calibration*.yaml: 2 × 200 draws after 300
tuning steps). This fits the given replicates of the given routes again, in this process, with
`ModelSettings()`'s sampler (4 chains × 1000 draws after 500 tuning steps, target_accept 0.9) and
the replicate's own seeds, and prints each fit's divergent transitions: whether a dataset that
diverged in the SBC still does with the settings a user's analysis gets. Nothing is written.

    PYTHONHASHSEED=0 python validation/sbc_default_settings.py effect_se:17 case_censored:39 [--master-seed 1]

(PYTHONHASHSEED=0 is the hash seed the workflow gives its jobs, crsmeta.compile_cache.HASH_SEED.)
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
    return parser.parse_args()


def main() -> None:
    arguments = _arguments()
    os.environ.update(compile_cache_environment(ROOT / ".cache"))  # before PyTensor is imported
    from crsmeta.calibration import run_replicate
    from crsmeta.model.settings import ModelSettings

    settings = ModelSettings(gate=False, cores=1)
    for route, replicate in arguments.replicates:
        ranks = run_replicate(replicate, arguments.master_seed, settings, route=route)
        print(f"{route} {replicate}: {int(ranks.divergences.iloc[0])} divergent transitions", flush=True)


if __name__ == "__main__":
    main()
