# The package's own data files (src/crsmeta/data/ in this repository): the script passes these
# very inputs (and the vocabularies, common.smk's VOCABULARY_INPUTS) to the library, which reads
# them and no other copy
from crsmeta.grading import MAPPING_FILE


rule harmonise_study:
    input:
        study=study_file,
        cases="results/extracted/{study}/cases.tsv",
        summaries="results/extracted/{study}/summaries.tsv",
        **VOCABULARY_INPUTS,
        grade_mapping=str(MAPPING_FILE),
    output:
        cases="results/harmonised/studies/{study}/cases.tsv",
        summaries="results/harmonised/studies/{study}/summaries.tsv",
        rows="results/harmonised/studies/{study}/rows.tsv",
        conversions="results/harmonised/studies/{study}/conversions.tsv",
    params:
        study=study_path_as_configured,
        project_dir=PROJECT_DIR,
    resources:
        runtime=10,
        mem_mb=500,
    log:
        "logs/harmonise_study/{study}.log",
    script:
        "../scripts/harmonise_study.py"


rule combine_studies:
    input:
        cases=per_study("results/harmonised/studies/{study}/cases.tsv"),
        summaries=per_study("results/harmonised/studies/{study}/summaries.tsv"),
        rows=per_study("results/harmonised/studies/{study}/rows.tsv"),
        conversions=per_study("results/harmonised/studies/{study}/conversions.tsv"),
        extracted_cases=per_study("results/extracted/{study}/cases.tsv"),
        extracted_summaries=per_study("results/extracted/{study}/summaries.tsv"),
    output:
        cases=report("results/harmonised/cases.tsv", caption="../report/harmonised_cases.rst", category="1. Data"),
        summaries=report(
            "results/harmonised/summaries.tsv", caption="../report/harmonised_summaries.rst", category="1. Data"
        ),
        rows=report("results/audit/rows.tsv", caption="../report/audit_rows.rst", category="1. Data"),
        conversions=report(
            "results/audit/conversions.tsv", caption="../report/audit_conversions.rst", category="1. Data"
        ),
    localrule: True
    log:
        "logs/combine_studies/combine_studies.log",
    script:
        "../scripts/combine_studies.py"
