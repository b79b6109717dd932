# SYNTHETIC demo only (config/demo.yaml): the Snakefile includes this file when the config has
# `synthetic`, before common.smk. A normal run never reads it, so it neither imports the simulator
# nor writes a file while the workflow is parsed.
from pathlib import Path

from crsmeta.simulate import ensure_demo_studies, truth_path

# The simulated study files and source tables, written under `out_dir` (inside the project) only
# when missing or different, so that reruns keep their timestamps. They become the study list
# before common.smk reads it, and extract → harmonise → changes → model read them as they read a
# curator's studies; no real study is mixed in. The simulator prints its values in units looked up
# in the package's marker vocabulary, the file the rules declare (common.smk's MARKERS_INPUT).
config["studies"] = ensure_demo_studies(config, workflow.basedir)


# The simulator wrote the true θ beside its study files, so the main fit's intervals can be checked
# against it (issue 3's recovery criterion). `rule all` reaches it through the demo's report, which
# reads it (report.smk).
rule recover_truth:
    input:
        posterior="results/model/main/posterior.nc",
        effects="results/model/main/effects.tsv",
        truth=str(Path(workflow.basedir) / truth_path(config["synthetic"]["out_dir"])),
    output:
        table=report("results/model/recovery.tsv", caption="../report/recovery.rst", category="3. Model"),
        summary="results/model/recovery_summary.tsv",
    resources:
        runtime=10,
        mem_mb=1000,
    log:
        "logs/recover_truth/recover_truth.log",
    script:
        "../scripts/recover_truth.py"
