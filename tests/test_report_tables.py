"""Tidy report tables from SYNTHETIC rows: study estimates, comparisons, flow, flags, formatting."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crsmeta.comparisons import summary_comparisons
from crsmeta.errors import InputError
from crsmeta.model.posterior_summaries import superiority
from crsmeta.report import tables
from crsmeta.studies import load_studies
from crsmeta.study_estimates import per_study_estimates
from fixtures.report.build import effects_table, fixture_idata
from typed_tables import typed_changes, typed_summaries


@pytest.fixture
def tiny_changes(tiny_changes: pd.DataFrame) -> pd.DataFrame:
    """conftest's changes typed by their contract, as the model reads them."""
    return typed_changes(tiny_changes)


@pytest.fixture
def tiny_summaries(tiny_summaries: pd.DataFrame) -> pd.DataFrame:
    """conftest's summaries typed by their contract, as the changes stage reads them."""
    return typed_summaries(tiny_summaries)


def test_format_change_has_no_negative_zero():
    assert tables.format_change(-0.3, "log_ratio") == "+0%"
    assert tables.format_change(-0.001, "degC_difference") == "+0.00 °C"
    assert tables.format_change(-45.4, "log_ratio") == "-45%"
    assert tables.format_change(float("nan"), "log_ratio") == "–"


def test_study_estimates_are_the_cross_checks_own_per_study_estimates(tiny_changes, tiny_summaries):
    """One rule for a study's own estimate (the forest plot's and the frequentist's): a case
    series' mean change with a t interval, a summary comparison with a normal one where its SE
    is known, none where only the model can weight it."""
    per_study = per_study_estimates(tiny_changes, summary_comparisons(tiny_summaries)[0])
    estimates = tables.study_estimates(per_study).set_index(["study_id", "intervention", "marker"])
    case = per_study.set_index(["study_id", "intervention", "marker"]).loc[("s2", "plasma_exchange", "ferritin")]
    row = estimates.loc[("s2", "plasma_exchange", "ferritin")]
    half = stats.t.ppf(0.975, case["n"] - 1) * math.sqrt(case["vi"])  # the interval the changes stage gives
    assert (row["estimate"], row["lo"], row["hi"]) == pytest.approx((case["yi"], case["yi"] - half, case["yi"] + half))
    assert row["source"] == "case-level changes"
    assert estimates.loc[("c1", "emapalumab", "temperature"), "estimate"] == pytest.approx(38.4 - 39.6)
    assert estimates["source"].str.startswith("summary: ").sum() == (per_study["source"] == "summary").sum()


def test_superiority_matrix_lays_out_the_fits_table():
    """Rows and columns the marker's interventions in order, each cell the table's probability as
    written, the diagonal empty; no matrix for a marker without a pair."""
    idata = fixture_idata()
    table = superiority(idata, effects_table(idata))
    matrix = tables.superiority_matrix(table, "IL-6")
    names = sorted(set(table.loc[table["marker"] == "IL-6", "intervention"]))
    assert list(matrix.index) == list(matrix.columns) == names
    assert np.isnan(np.diag(matrix.to_numpy())).all()
    for row in table[table["marker"] == "IL-6"].to_dict("records"):
        assert matrix.loc[row["intervention"], row["comparator"]] == row["p_lower"]
    assert tables.superiority_matrix(table, "no such marker") is None
    assert tables.superiority_matrix(None, "IL-6") is None


def test_summary_rows_warn_on_sparse_estimates():
    rows = tables.summary_rows(effects_table(fixture_idata()))
    single = rows[rows["n_studies"] == 1]
    assert single["warning"].str.contains("single study").all()
    assert rows["anchor"].str.startswith("prov-").all()
    assert rows["words"].str.contains("Based on").all()


def test_summary_rows_lead_with_what_the_data_support():
    """Data-driven rows first, then weakly informed, then prior-driven; each shows its label and the
    prior and posterior SD from effects.tsv, as printed there (the report computes none)."""
    effects = effects_table(fixture_idata())
    rows = tables.summary_rows(effects)
    order = [tables.EVIDENCE_ORDER.index(label) for label in rows["evidence"]]
    assert order == sorted(order) and set(rows["evidence"]) == set(tables.EVIDENCE_ORDER)
    for row in rows.itertuples():
        source = effects[(effects["intervention"] == row.intervention) & (effects["marker"] == row.marker)].iloc[0]
        assert row.evidence_text == source["evidence"]
        assert row.prior_sd_text.startswith(f"{source['prior_sd']:.2f}")
        assert row.posterior_sd_text.startswith(f"{source['posterior_sd']:.2f}")
        assert row.sd_ratio_text == f"{source['sd_ratio']:.2f}"
        assert source["evidence"].capitalize() + ":" in row.words


def test_summary_rows_refuse_an_unknown_evidence_label():
    effects = effects_table(fixture_idata())
    effects.loc[effects.index[0], "evidence"] = "strong"
    with pytest.raises(InputError, match="evidence"):
        tables.summary_rows(effects)


def test_contrast_text_says_when_a_contrast_is_indirect():
    effects = effects_table(fixture_idata())
    row = effects[np.isfinite(effects["contrast_median"])].head(1)
    with_contrast = pd.concat([row.assign(contrast_basis="indirect"), row.assign(contrast_basis="within_study")])
    texts = tables.summary_rows(with_contrast).sort_values("contrast_basis")["contrast_text"]
    assert "indirect" in texts.iloc[0] and "not randomised" in texts.iloc[0]
    assert "within study" in texts.iloc[1]


def test_inclusion_flow_counts_every_row():
    rows = pd.DataFrame({"study_id": ["a", "a", "b"], "status": ["included", "excluded", "excluded"],
                         "reason": ["", "survival", "survival"]})
    flow = tables.inclusion_flow(rows)
    assert (flow["n_in"], flow["n_included"], flow["n_excluded"]) == (3, 1, 2)
    assert flow["reasons"].to_dict("records") == [{"reason": "survival", "n": 2}]


def test_synthetic_flag_from_rows_studies_or_stamp():
    clean = pd.DataFrame({"synthetic": [False]})
    assert not tables.synthetic_flags([clean], [{"synthetic": False}], {"synthetic": "no"})
    assert tables.synthetic_flags([clean.assign(synthetic=True)], [], {})
    assert tables.synthetic_flags([clean], [{"synthetic": True}], {})
    assert tables.synthetic_flags([clean], [], {"synthetic": "SYNTHETIC"})
    with pytest.raises(InputError, match="synthetic"):
        tables.synthetic_flags([clean], [], {"synthetic": "yes"})


def test_a_number_to_show_is_a_number_or_missing_never_text():
    """The report's tables are typed by their contracts: text is refused, not read as a number."""
    assert tables.number(3) == 3.0 and tables.number(np.float64(-0.5)) == -0.5
    assert all(math.isnan(tables.number(value)) for value in (None, pd.NA, float("nan")))
    with pytest.raises(TypeError, match="n.d."):
        tables.number("n.d.")


STUDY_TEXT = """\
id: doe2024
citation: "SYNTHETIC Doe J. Tocilizumab for CRS. J Example. 2024."
{identifiers}
published: 2024
population: car_t_crs
design: case_report
grading_scale: ASTCT2019
"""


def curator_study(tmp_path, identifiers: str):
    """A study file with the identifier lines as the curator typed them."""
    path = tmp_path / "doe2024.yaml"
    path.write_text(STUDY_TEXT.format(identifiers=identifiers), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "doi",
    ["10.1182/blood.2022017414", "doi:10.1182/blood.2022017414", "https://doi.org/10.1182/blood.2022017414",
     "http://dx.doi.org/10.1182/blood.2022017414"],
    ids=["bare", "doi-prefix", "resolver-url", "old-resolver"],
)
def test_a_doi_as_written_links_once(tmp_path, doi):
    [study] = tables.study_records(load_studies([curator_study(tmp_path, f"doi: {doi}")], tmp_path))
    assert tables.study_links(study) == [
        {"href": "https://doi.org/10.1182/blood.2022017414", "label": "doi:10.1182/blood.2022017414"}]


def test_a_pmcid_links_to_the_full_text_beside_the_record(tmp_path):
    [study] = tables.study_records(load_studies([curator_study(tmp_path, "pmid: 31513353\npmcid: pmc7331860")], tmp_path))
    assert tables.study_links(study) == [
        {"href": "https://pubmed.ncbi.nlm.nih.gov/31513353/", "label": "PMID 31513353"},
        {"href": "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC7331860/", "label": "PMC7331860"},
    ]


def test_a_doi_with_url_characters_is_percent_encoded_in_its_link():
    doi = "10.1002/(SICI)1097-4636(199706)35:4<503::AID-JBM11>3.0.CO;2-P"
    [link] = tables.study_links({"doi": doi})
    assert link["href"] == "https://doi.org/10.1002/(SICI)1097-4636(199706)35:4%3C503::AID-JBM11%3E3.0.CO;2-P"
    assert link["label"] == f"doi:{doi}"
