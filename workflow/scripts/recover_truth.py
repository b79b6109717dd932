"""SYNTHETIC demo: does the main fit's 90% interval of θ cover the simulator's truth, per cell, and
how does that compare with what the fit itself expects of its design?"""

import arviz as az

from crsmeta import tables
from crsmeta.logs import configure_logging
from crsmeta.model.recovery import recovery_summary, truth_coverage

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

posterior = az.from_netcdf(snakemake.input.posterior)
table = truth_coverage(posterior, tables.read(tables.TRUTH, snakemake.input.truth),
                       tables.read(tables.EFFECTS, snakemake.input.effects))
summary_table = recovery_summary(posterior, table)
summary = summary_table.iloc[0]
log.info("SYNTHETIC recovery: 90%% intervals cover the true theta in %d of %d cells with data (%.3f); "
         "a posterior draw covers at least %.3f in 95%% of draws, and %.3f of draws cover as few or fewer",
         summary["covered_with_data"], summary["cells_with_data"], summary["coverage_with_data"],
         summary["calibrated_p05"], summary["p_as_low"])
tables.write(tables.RECOVERY, table, snakemake.output.table)
tables.write(tables.RECOVERY_SUMMARY, summary_table, snakemake.output.summary)
