"""Simulation-based calibration (Talts et al. 2018) of the crsmeta model, on SYNTHETIC data only.

Runs the replicates of ``crsmeta.calibration`` one after another in this process, then pools
them: the method, the design and the checks are documented there and in docs/validation.md. The
workflow runs the same replicates one per job, in parallel or on a cluster:
``snakemake --cores 8 --configfile config/calibration.yaml --directory calibration``.
Replicate k of seed s is the same dataset and fit here and there (its seeds derive from s and k),
apart from the model settings: here the defaults, there the config's.

    python validation/sbc.py --n-datasets 40 --draws 200 --seed 1

writes validation/results/sbc_ranks.tsv, sbc_summary.tsv and sbc_ranks.png, and prints a
markdown summary.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from crsmeta.compile_cache import compile_cache_environment

PROJECT = Path(__file__).resolve().parents[1]
# the workflow's compile cache (before anything imports PyTensor or numba)
os.environ.update(compile_cache_environment(PROJECT / ".cache"))

from crsmeta import calibration, tables  # noqa: E402
from crsmeta.model.settings import ModelSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-datasets", type=int, default=40)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--tune", type=int, default=300)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--thin-to", type=int, default=calibration.THIN_TO,
                        help="posterior draws the rank is taken among")
    parser.add_argument("--seed", type=int, default=1, help="master seed; replicate k's seeds derive from it and k")
    parser.add_argument("--backend", default="nutpie")
    parser.add_argument("--out", type=Path, default=PROJECT / "validation" / "results")
    args = parser.parse_args()
    settings = ModelSettings(chains=args.chains, draws=args.draws, tune=args.tune, cores=args.chains,
                             backend=args.backend)
    start = time.perf_counter()
    ranks = calibration.pool(calibration.run_replicate(replicate, args.seed, settings, thin_to=args.thin_to)
                             for replicate in range(args.n_datasets))
    summary = calibration.summarise(ranks)
    tables.write(tables.SBC_RANKS, ranks, args.out / "sbc_ranks.tsv")
    tables.write(tables.SBC_SUMMARY, summary, args.out / "sbc_summary.tsv")
    calibration.plot_ranks(ranks, args.out / "sbc_ranks.png")
    minutes = (time.perf_counter() - start) / 60
    print(calibration.markdown(summary, ranks, (
        f"{args.n_datasets} datasets, seed {args.seed}, {args.chains} chains x {args.draws} draws (tune "
        f"{args.tune}), backend {args.backend}, {minutes:.1f} min")))


if __name__ == "__main__":
    main()
