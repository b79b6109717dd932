VOCABULARY = [project_path("resources/vocabulary/interventions.yaml"), project_path("resources/vocabulary/markers.yaml")]
GRADE_MAPPING = project_path("resources/grading/astct_mapping.yaml")


rule harmonise_study:
    input:
        study=study_file,
        cases="results/extracted/{study}/cases.tsv",
        summaries="results/extracted/{study}/summaries.tsv",
        vocabulary=VOCABULARY,
        grade_mapping=GRADE_MAPPING,
    output:
        cases="results/harmonised/studies/{study}/cases.tsv",
        summaries="results/harmonised/studies/{study}/summaries.tsv",
        rows="results/harmonised/studies/{study}/rows.tsv",
        conversions="results/harmonised/studies/{study}/conversions.tsv",
    params:
        study=study_path_as_configured,
        project_dir=PROJECT_DIR,
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
        extracted=per_study("results/extracted/{study}/cases.tsv")
        + per_study("results/extracted/{study}/summaries.tsv"),
    output:
        cases="results/harmonised/cases.tsv",
        summaries="results/harmonised/summaries.tsv",
        rows="results/audit/rows.tsv",
        conversions="results/audit/conversions.tsv",
    log:
        "logs/combine_studies/combine_studies.log",
    script:
        "../scripts/combine_studies.py"
