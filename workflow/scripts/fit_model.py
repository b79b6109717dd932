"""Fit one analysis. A main analysis that fails the diagnostics gate fails the job (writing nothing);
a sensitivity analysis that fails is written with gate = failed in its tables. An analysis given
the main fit's draws (input main_posterior) reweights them where the weights allow. Markers are
looked up in the marker vocabulary the rule declares."""

from crsmeta import tables, vocabulary
from crsmeta.io import files_hash, write_netcdf
from crsmeta.logs import configure_logging
from crsmeta.model import ModelSettings, enforce_gate, fit_analysis, stamp
from crsmeta.model.posterior_summaries import superiority, tau_summaries
from crsmeta.model.reweight import read_main_fit

snakemake = snakemake  # type: ignore[name-defined]  # noqa: F821 (injected by Snakemake)
log = configure_logging(snakemake.log[0])
inputs, outputs = snakemake.input, snakemake.output

analysis = snakemake.wildcards.analysis
settings = ModelSettings.from_dict(snakemake.params.settings).replace(cores=snakemake.threads)
changes = tables.read(tables.CHANGES, inputs.changes)
comparisons = tables.read(tables.OBSERVATIONS, inputs.comparisons)
log.info("analysis %s: %d changes, %d summary comparisons", analysis, len(changes), len(comparisons))
main = None
with vocabulary.files_in_use(markers=inputs.markers):
    if "main_posterior" in inputs.keys():
        main_settings = ModelSettings.from_dict(snakemake.params.main_settings).replace(cores=snakemake.threads)
        main = read_main_fit(inputs.main_posterior, inputs.main_diagnostics, changes, comparisons, main_settings)
    result = fit_analysis(changes, comparisons, settings, analysis=analysis, main=main,
                          study_log_likelihood=snakemake.params.study_log_likelihood)
log.info("route: %s %s", result.route, result.route_note)
log.info("diagnostics:\n%s", result.diagnostics.to_string())
enforce_gate(result)
stamp(
    result.idata,
    config_hash=snakemake.params.config_hash,
    data_hash=files_hash([inputs.changes, inputs.comparisons]),
    seed=settings.seed,
    analysis=analysis,
)
tables.write(tables.EFFECTS, result.effects, outputs.effects)
tables.write(tables.DIAGNOSTICS, result.diagnostics, outputs.diagnostics)
tables.write(tables.TAU_SUMMARIES, tau_summaries(result.idata, markers=set(result.effects["marker"])), outputs.tau)
tables.write(tables.SUPERIORITY, superiority(result.idata, result.effects), outputs.superiority)
tables.write(tables.OBSERVATIONS, result.data.observations, outputs.observations)
tables.write(tables.MODEL_AUDIT, result.data.audit, outputs.audit)
write_netcdf(result.idata, outputs.posterior)
