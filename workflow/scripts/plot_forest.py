"""One forest plot per marker as SVG, for `snakemake --report` (rule plot_forest), on the scales of
the marker vocabulary the rule declares."""

import re
from pathlib import Path

from crsmeta import tables as contracts
from crsmeta import vocabulary
from crsmeta.logs import configure_logging
from crsmeta.report.render import forest_figures
from crsmeta.report.tables import synthetic_flags

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])

per_study = contracts.read(contracts.PER_STUDY, snakemake.input.per_study)
effects = contracts.read(contracts.EFFECTS, snakemake.input.effects)
synthetic = synthetic_flags([per_study, effects], [], {})
out_dir = Path(snakemake.output[0])
out_dir.mkdir(parents=True, exist_ok=True)
with vocabulary.files_in_use(markers=snakemake.input.markers):
    figures = forest_figures(effects, per_study, synthetic=synthetic)
for marker, svg in figures.items():
    path = out_dir / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', marker)}.svg"
    path.write_text(svg, encoding="utf-8")
    log.info("wrote %s", path)
