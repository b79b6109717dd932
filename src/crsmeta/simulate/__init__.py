"""Seeded simulator of SYNTHETIC studies with a known truth, for tests, validation and the demo.

The generating model mirrors the statistical model's assumptions:

* each study s reporting marker m gets a random effect u[s, m] ~ Normal(0, tau[m]), shared by
  the arms of a trial (as in the model, whose study effects are indexed by study and marker);
* each patient's change (log ratio post/pre, or the difference in °C for temperature) is
  Normal(theta[intervention, m] + u[s, m], sigma[m]); the pre value is log-normal (normal for
  temperature) with settings of the simulation, not clinical facts;
* values below a marker's limit of detection are written as ``<LOD`` (``<`` and the limit in the
  study's unit), never as a number.

A :class:`Misspecification` in the spec departs from these assumptions on purpose (heavy-tailed
changes, skewed levels, a study effect shared across markers), for the robustness study of
:mod:`crsmeta.calibration`; by default there is none.

``theta`` is the mean log ratio (the median ratio). A ratio of *means* of log-normal values is
``exp(theta + u + sigma**2 / 2)``, a ratio of medians ``exp(theta + u)``: summary rows carry that
difference and the model has to account for it.

Every study carries ``synthetic: true``, a citation and URL that say SYNTHETIC, a caveat, and
every quote is ``SYNTHETIC``. The same spec (seed included) gives byte-identical files.

The parts, in the order a simulation runs:

* :mod:`~crsmeta.simulate.spec` — what to simulate (:class:`SimulationSpec`, from a demo config);
* :mod:`~crsmeta.simulate.truth` — the true effects and each study arm's patients;
* :mod:`~crsmeta.simulate.studies` — each study's tables as a source prints them (units converted
  by :mod:`crsmeta.units`);
* :mod:`~crsmeta.simulate.files` — the study files and tables written for the real pipeline (the
  demo's ``workflow/rules/demo.smk``), and ``python -m crsmeta.simulate``;
* :mod:`~crsmeta.simulate.pipeline` — :func:`run_pipeline`: the studies written to a temporary
  directory and run through extract → harmonise → combine → changes in this process, for the fits
  of calibration, validation and benchmarks. It is imported from its module, so that the demo's
  parse (which imports this package) does not load the data layer.

The simulator writes source files only: every harmonised table, change and comparison of
simulated data is the pipeline's own.
"""

from crsmeta.simulate.files import ensure_demo_studies, main, render_study_files, truth_path, write_study_files
from crsmeta.simulate.spec import CONTROL, SYNTHETIC, HyperPrior, Misspecification, SimulationSpec, spec_from_config
from crsmeta.simulate.studies import SimulatedDataset, StudyDraft, simulate_dataset
from crsmeta.simulate.truth import draw_truth

__all__ = [
    "CONTROL", "SYNTHETIC", "HyperPrior", "Misspecification", "SimulatedDataset", "SimulationSpec", "StudyDraft",
    "draw_truth", "ensure_demo_studies", "main", "render_study_files", "simulate_dataset", "spec_from_config",
    "truth_path", "write_study_files",
]
