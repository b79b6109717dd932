# crsmeta: living Bayesian meta-analysis of salvage treatments for severe CRS.
# This file is a table of contents; the rules of each stage live in workflow/rules/.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


# The SYNTHETIC simulation-based calibration (config/calibration.yaml): one job per simulated
# dataset, and their summary as its final outputs. It reads no study, so the analysis' rules
# (which need a study list) are left out of such a run.
if "calibration" in config:

    include: "workflow/rules/calibration.smk"

else:
    # The SYNTHETIC demo (config/demo.yaml) writes its simulated study files and makes them the study
    # list, so it comes before common.smk reads that list; a normal run never includes it.
    if "synthetic" in config:

        include: "workflow/rules/demo.smk"

    include: "workflow/rules/common.smk"
    include: "workflow/rules/extract.smk"
    include: "workflow/rules/harmonise.smk"
    include: "workflow/rules/changes.smk"
    include: "workflow/rules/model.smk"
    include: "workflow/rules/history.smk"
    include: "workflow/rules/report.smk"


rule all:
    input:
        final_outputs(),
    default_target: True
