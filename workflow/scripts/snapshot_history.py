"""Keep this run's snapshot under results/history/snapshots/ (unless its data and settings are the
latest snapshot's) and write what changed since the one before (rule snapshot_history)."""

import json
from datetime import datetime, timezone

from crsmeta import history, tables
from crsmeta.io import write_text
from crsmeta.logs import configure_logging

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])
inputs, outputs, params = snakemake.input, snakemake.output, snakemake.params

state = history.build_snapshot(
    effects=tables.read(tables.EFFECTS, inputs.effects),
    rows=tables.read(tables.AUDIT_ROWS, inputs.rows),
    diagnostics=tables.read(tables.DIAGNOSTICS, inputs.diagnostics),
    study_files=dict(params.study_files),
    settings=dict(params.settings),
    now=datetime.now(timezone.utc),
)
snapshots = history.record_snapshot(state, params.snapshots)
previous, current = history.latest_pair(snapshots)
log.info("data %s, settings %s: latest is %s (%d in all), compared with %s", state.data_hash, state.config_hash,
         current.label, len(snapshots), previous.label if previous else "nothing (the first snapshot)")
tables.write(tables.HISTORY_CHANGES, history.compare(previous, current), outputs.changes)
write_text(json.dumps(history.comparison_summary(snapshots), indent=2) + "\n", outputs.comparison)
tables.write(tables.INCLUSION_HISTORY, history.inclusion_history(snapshots), outputs.inclusion)
