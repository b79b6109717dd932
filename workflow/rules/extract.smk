# The study file schema the library validates with: package data (src/crsmeta/data/ in this repository)
from crsmeta.studies import STUDY_SCHEMA


rule extract_study:
    input:
        study=study_file,
        tables=study_tables,
        schema=str(STUDY_SCHEMA),
    output:
        cases="results/extracted/{study}/cases.tsv",
        summaries="results/extracted/{study}/summaries.tsv",
    params:
        study=study_path_as_configured,
        project_dir=PROJECT_DIR,
    resources:
        runtime=10,
        mem_mb=500,
    log:
        "logs/extract_study/{study}.log",
    script:
        "../scripts/extract_study.py"
