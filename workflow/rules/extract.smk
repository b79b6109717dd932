rule extract_study:
    input:
        study=study_file,
        tables=study_tables,
        schema=project_path("workflow/schemas/study.schema.yaml"),
    output:
        cases="results/extracted/{study}/cases.tsv",
        summaries="results/extracted/{study}/summaries.tsv",
    params:
        study=study_path_as_configured,
        project_dir=PROJECT_DIR,
    log:
        "logs/extract_study/{study}.log",
    script:
        "../scripts/extract_study.py"
