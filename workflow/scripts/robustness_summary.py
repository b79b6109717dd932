"""SYNTHETIC: the robustness study's replicates pooled (rule robustness_summary): bias, RMSE and
interval coverage per scenario, route and kind of parameter, as a table and as markdown."""

from crsmeta import calibration, tables
from crsmeta.io import write_text
from crsmeta.logs import configure_logging

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

estimates = calibration.pool_robustness(
    tables.read(tables.ROBUSTNESS_ESTIMATES, path) for path in snakemake.input.replicates)
summary = calibration.summarise_robustness(estimates)
text = calibration.robustness_markdown(summary, snakemake.params.header)
tables.write(tables.ROBUSTNESS_SUMMARY, summary, snakemake.output.summary)
write_text(text + "\n", snakemake.output.markdown)
log.info("%s", text)
