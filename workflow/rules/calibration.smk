# SYNTHETIC simulation-based calibration (config/calibration.yaml): the Snakefile includes this file,
# and none of the analysis' rules, when the config has `calibration`; `rule all` then requests
# this file's final_outputs(), the summary. Each simulated dataset of each route (a design whose
# data take one likelihood route, crsmeta.calibration.ROUTES) is its own job (`sbc_replicate`):
# they run in parallel on one machine and as SLURM jobs through profiles/slurm. Replicate k of
# route r has seeds derived from the master seed, r's name and k alone (crsmeta.calibration), so
# its table is the same whichever job, node or order runs it. Nothing here imports PyMC or the
# simulator at parse time: the scripts do (the route names come from the config, whose schema
# lists them and defaults to all). With `calibration.scenarios`, each replicate is simulated again
# under each misspecification scenario (`robustness_replicate`, the same seeds) and summarised
# (`robustness_summary`); none by default.
import os
from pathlib import Path

from crsmeta.compile_cache import compile_cache_environment
from crsmeta.model.settings import ModelSettings
from crsmeta.vocabulary import MARKERS_FILE

# the analysis' compile cache (as common.smk sets it, before anything imports PyTensor): every
# replicate's fit, in any job, on any node, loads the model structures compiled before
os.environ.update(compile_cache_environment(Path(workflow.basedir) / ".cache"))

CALIBRATION = config["calibration"]
# The model as configured (the config's `model:` block; the defaults when it has none), sampled with
# the calibration's own chains, draws and tuning steps; no gate (the SBC judges the fits).
SBC_SETTINGS = ModelSettings.from_config(config).replace(
    chains=CALIBRATION["chains"], draws=CALIBRATION["draws"], tune=CALIBRATION["tune"], gate=False,
    seed=CALIBRATION["seed"],  # each replicate replaces it by its own
)
SBC_REPLICATES = range(CALIBRATION["n_datasets"])
SBC_ROUTES = CALIBRATION["routes"]
ROBUSTNESS_SCENARIOS = CALIBRATION["scenarios"]
# as a fit's threads (model.smk): half the cores, at least one, at most one per chain
SBC_THREADS = min(SBC_SETTINGS.chains, max(1, workflow.cores // 2))
SBC_RUN = (f"seed {CALIBRATION['seed']}, {SBC_SETTINGS.chains} chains x {SBC_SETTINGS.draws} draws "
           f"(tune {SBC_SETTINGS.tune}), backend {SBC_SETTINGS.backend}")


wildcard_constraints:
    route="|".join(SBC_ROUTES),
    scenario="|".join(ROBUSTNESS_SCENARIOS),
    replicate=r"\d+",


def final_outputs():
    """What `rule all` requests in a calibration run (common.smk's in an analysis run)."""
    sbc = ["results/calibration/sbc_summary.tsv", "results/calibration/sbc_routes.tsv",
           "results/calibration/sbc_ranks.tsv",
           *expand("results/calibration/plots/{route}.png", route=SBC_ROUTES)]
    robustness = ["results/calibration/robustness.tsv", "results/calibration/robustness.md"]
    return sbc + (robustness if ROBUSTNESS_SCENARIOS else [])


rule sbc_replicate:
    input:
        # the marker vocabulary the simulation and the fit look markers up in (the package's own,
        # declared as common.smk's MARKERS_INPUT is in an analysis run); the script reads this file
        markers=str(MARKERS_FILE),
    output:
        table="results/calibration/replicates/{route}/{replicate}.tsv",
    params:
        seed=CALIBRATION["seed"],
        settings=SBC_SETTINGS.to_dict(),
        thin_to=CALIBRATION["thin_to"],
    threads: SBC_THREADS
    # a replicate is one simulated dataset and one fit of it, sized like fit_model; a second
    # attempt (the profile's retries) asks for twice the time and memory
    resources:
        runtime=lambda wildcards, attempt: 30 * attempt,
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
    log:
        "logs/sbc_replicate/{route}/{replicate}.log",
    benchmark:
        "benchmarks/sbc_replicate/{route}/{replicate}.tsv"
    script:
        "../scripts/sbc_replicate.py"


rule sbc_summary:
    input:
        replicates=expand("results/calibration/replicates/{route}/{replicate}.tsv", route=SBC_ROUTES,
                          replicate=SBC_REPLICATES),
    output:
        summary="results/calibration/sbc_summary.tsv",
        routes="results/calibration/sbc_routes.tsv",
        ranks="results/calibration/sbc_ranks.tsv",
        plots=expand("results/calibration/plots/{route}.png", route=SBC_ROUTES),
    params:
        routes=SBC_ROUTES,
        header=f"{CALIBRATION['n_datasets']} datasets per route, {SBC_RUN}",
    resources:
        runtime=15,
        mem_mb=1000,
    log:
        "logs/sbc_summary/sbc_summary.log",
    benchmark:
        "benchmarks/sbc_summary/sbc_summary.tsv"
    script:
        "../scripts/sbc_summary.py"


rule robustness_replicate:
    input:
        markers=str(MARKERS_FILE),
    output:
        table="results/calibration/robustness/{scenario}/{route}/{replicate}.tsv",
    params:
        seed=CALIBRATION["seed"],
        settings=SBC_SETTINGS.to_dict(),
        thin_to=CALIBRATION["thin_to"],
    threads: SBC_THREADS
    # one simulated dataset and one fit, as sbc_replicate
    resources:
        runtime=lambda wildcards, attempt: 30 * attempt,
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
    log:
        "logs/robustness_replicate/{scenario}/{route}/{replicate}.log",
    benchmark:
        "benchmarks/robustness_replicate/{scenario}/{route}/{replicate}.tsv"
    script:
        "../scripts/robustness_replicate.py"


rule robustness_summary:
    input:
        replicates=expand("results/calibration/robustness/{scenario}/{route}/{replicate}.tsv",
                          scenario=ROBUSTNESS_SCENARIOS, route=SBC_ROUTES, replicate=SBC_REPLICATES),
    output:
        summary="results/calibration/robustness.tsv",
        markdown="results/calibration/robustness.md",
    params:
        header=f"{CALIBRATION['n_datasets']} datasets per scenario and route, {SBC_RUN}",
    resources:
        runtime=15,
        mem_mb=1000,
    log:
        "logs/robustness_summary/robustness_summary.log",
    benchmark:
        "benchmarks/robustness_summary/robustness_summary.tsv"
    script:
        "../scripts/robustness_summary.py"
