"""SYNTHETIC simulation-based calibration (crsmeta.calibration, workflow/rules/calibration.smk):
one replicate gives a valid table, seeded by the master seed and its index alone; pooling uniform
ranks passes; the workflow plans one job per simulated dataset and one summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import copy_project, planned_jobs
from test_demo_rules import dry_run

from crsmeta import calibration, tables
from crsmeta.errors import InputError
from crsmeta.model.settings import ModelSettings

FEW_DRAWS = ModelSettings(chains=2, draws=50, tune=50, cores=1)


def test_a_replicate_seeds_are_its_spawned_child_whatever_the_number_of_replicates() -> None:
    spawned = np.random.SeedSequence(7).spawn(5)[3].generate_state(3)
    seeds = calibration.replicate_seeds(7, 3)
    assert (seeds.simulation, seeds.truth, seeds.sampler) == tuple(int(seed) for seed in spawned)
    assert calibration.replicate_seeds(7, 2) != seeds != calibration.replicate_seeds(8, 3)


def test_a_replicate_with_the_mocked_sampler_gives_a_valid_synthetic_table(mock_sampling, tmp_path) -> None:
    ranks = calibration.run_replicate(4, 11, FEW_DRAWS, thin_to=60)
    tables.check(tables.SBC_RANKS, ranks)
    spec = calibration.SBC_SPEC
    expected = {"theta": len(spec.interventions) * len(spec.markers), "tau": len(spec.markers),
                "sigma": len(spec.markers)}
    assert ranks["kind"].value_counts().to_dict() == expected
    assert ranks["parameter"].is_unique and ranks["synthetic"].all()
    assert (ranks["replicate"] == 4).all() and (ranks["master_seed"] == 11).all()
    assert (ranks["n_draws"] == 60).all() and ranks["rank"].between(0, 60).all()
    # a wider interval covers whatever a narrower one covers
    for narrow, wide in (("covered50", "covered80"), ("covered80", "covered90"), ("covered90", "covered95")):
        assert (~ranks[narrow] | ranks[wide]).all()
    # the replicate's own sampler seed, whichever settings' seed came in
    assert mock_sampling[-1] == {"draws": 50, "random_seed": calibration.replicate_seeds(11, 4).sampler}
    # the same replicate again (its studies through the pipeline in another temporary directory):
    # the same table, byte for byte
    again = calibration.run_replicate(4, 11, FEW_DRAWS.replace(seed=123), thin_to=60)
    tables.write(tables.SBC_RANKS, ranks, tmp_path / "first.tsv")
    tables.write(tables.SBC_RANKS, again, tmp_path / "again.tsv")
    assert (tmp_path / "first.tsv").read_bytes() == (tmp_path / "again.tsv").read_bytes()


def uniform_ranks(n_datasets: int, n_draws: int = 99) -> pd.DataFrame:
    """SYNTHETIC replicate rows with exactly uniform ranks (every rank value as often, in a
    scrambled order, when ``n_draws + 1`` divides ``n_datasets``), covered at each level's rate."""
    rows = []
    for replicate in range(n_datasets):
        for offset, (parameter, kind) in enumerate(
                (("theta[tocilizumab,IL-6]", "theta"), ("tau[IL-6]", "tau"), ("sigma[IL-6]", "sigma"))):
            rank = (37 * replicate + 11 * offset) % (n_draws + 1)
            fraction = (rank + 0.5) / (n_draws + 1)
            covered = {f"covered{round(100 * level)}": bool(abs(fraction - 0.5) <= level / 2)
                       for level in calibration.LEVELS}
            rows.append({"replicate": replicate, "master_seed": 1, "parameter": parameter, "kind": kind,
                         "truth": 0.0, "rank": rank, "n_draws": n_draws, **covered, "divergences": 0,
                         "synthetic": True})
    return tables.frame(tables.SBC_RANKS, rows)


def test_pooling_uniform_ranks_gives_a_passing_summary(tmp_path) -> None:
    ranks = uniform_ranks(200)
    replicates = [group.reset_index(drop=True) for _, group in ranks.groupby("replicate")]
    pooled = calibration.pool(reversed(replicates))
    pd.testing.assert_frame_equal(pooled, ranks)
    summary = calibration.summarise(pooled)
    tables.check(tables.SBC_SUMMARY, summary)
    assert list(summary["parameter"]) == ["theta[tocilizumab,IL-6]", "tau[IL-6]", "sigma[IL-6]"]
    assert summary["ecdf_in_band"].all() and summary["coverage_in_band"].all()
    assert (summary["chi2_p"] == 1.0).all() and (summary["ecdf_max_diff"] < 0.01).all()
    assert (summary["coverage90"] == 0.9).all() and (summary["n_datasets"] == 200).all()
    assert summary["synthetic"].all()
    calibration.plot_ranks(pooled, tmp_path / "sbc_ranks.png")
    assert (tmp_path / "sbc_ranks.png").stat().st_size > 0
    assert "SYNTHETIC" in calibration.markdown(summary, pooled, "test")


def test_ranks_piled_at_one_end_fall_outside_the_ecdf_band() -> None:
    ranks = uniform_ranks(200)
    ranks["rank"] = ranks["rank"] // 2  # the truth sits low in every posterior: too high an estimate
    summary = calibration.summarise(ranks)
    assert not summary["ecdf_in_band"].any()
    assert (summary["chi2_p"] < 1e-6).all()


def test_pooling_refuses_replicates_of_two_runs_or_one_replicate_twice() -> None:
    ranks = uniform_ranks(3)
    with pytest.raises(InputError, match="master_seed"):
        calibration.pool([ranks[ranks["replicate"] < 2], ranks[ranks["replicate"] == 2].assign(master_seed=2)])
    with pytest.raises(InputError, match="appears twice"):
        calibration.pool([ranks, ranks[ranks["replicate"] == 1]])


def test_the_calibration_config_plans_one_job_per_dataset_and_one_summary(tmp_path) -> None:
    project = copy_project(tmp_path / "project")
    result, imported = dry_run(project, "--configfile", "config/calibration.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    n_datasets = int(next(line.split(":")[1].split("#")[0] for line in
                          (project / "config/calibration.yaml").read_text().splitlines()
                          if line.strip().startswith("n_datasets:")))
    jobs = planned_jobs(result.stdout + result.stderr)
    assert jobs == {"sbc_replicate": n_datasets, "sbc_summary": 1, "all": 1}
    # parsing imports neither the sampler nor the simulator, and reads no study
    assert not {name for name in imported if name.split(".")[0] in ("pymc", "pytensor")}
    assert "crsmeta.simulate" not in imported and "crsmeta.studies" not in imported
