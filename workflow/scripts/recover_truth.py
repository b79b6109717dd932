"""SYNTHETIC demo: does the main fit's 90% interval of θ cover the simulator's truth, per cell?"""

import arviz as az

from crsmeta import tables
from crsmeta.logs import configure_logging
from crsmeta.model.recovery import coverage_summary, truth_coverage

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

table = truth_coverage(az.from_netcdf(snakemake.input.posterior), tables.read(tables.TRUTH, snakemake.input.truth),
                       tables.read(tables.EFFECTS, snakemake.input.effects))
summary = coverage_summary(table)
log.info("SYNTHETIC recovery: 90%% intervals cover the true theta in %d of %d cells with data (%.3f)",
         summary["covered_with_data"], summary["cells_with_data"], summary["coverage_with_data"])
tables.write(tables.RECOVERY, table, snakemake.output.table)
