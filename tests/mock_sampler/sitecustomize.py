"""TEST ONLY: the mocked-sampler tier inside the ``snakemake`` processes of tests/test_workflow.py.

That test module (and tests/cluster/run_slurm.sh, for its calibration run) puts this directory on
``PYTHONPATH`` of the Snakemake runs it starts, so Python imports this module at start-up in each
of their processes. In a ``fit_model`` or ``sbc_replicate`` job (Snakemake runs the rule's script
as ``.snakemake/scripts/tmp….fit_model.py``) it replaces the package's NUTS call,
``crsmeta.model.sample.sample_posterior``, by prior draws (prior_draws.py) and logs that it did;
every other process is left alone. A posterior written
so carries ``sampler = TEST MOCK: …`` in its attributes. Nothing outside tests/ refers to this
directory, so no real run can pick it up; Snakemake runs that sample real chains are the
reproducibility tests.
"""

import sys

if sys.argv and sys.argv[0].endswith(("fit_model.py", "sbc_replicate.py")):
    import logging

    from prior_draws import MOCK_LABEL, prior_draws_for_settings

    from crsmeta.model import sample

    sample.sample_posterior = prior_draws_for_settings
    logging.getLogger("crsmeta").warning("%s: sample_posterior is replaced in this job", MOCK_LABEL)
