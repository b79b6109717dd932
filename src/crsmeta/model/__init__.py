"""The Bayesian hierarchical model of intervention effects: data → model → fit → tables.

The names below are imported on first use (PEP 562): the workflow reads ``crsmeta.model.settings``
and ``crsmeta.model.analyses`` when Snakemake parses it, and importing PyMC there would add
seconds to every ``snakemake`` call, a dry run and a no-op included. ``fit`` runs an analysis.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConvergenceError": "crsmeta.model.diagnostics", "GateVerdict": "crsmeta.model.diagnostics",
    "diagnostics_table": "crsmeta.model.diagnostics", "judge": "crsmeta.model.diagnostics",
    "ModelData": "crsmeta.model.data", "ModelSettings": "crsmeta.model.settings",
    "build_model": "crsmeta.model.build", "effects_table": "crsmeta.model.effects",
    "sample_model": "crsmeta.model.sample", "FitResult": "crsmeta.model.fit",
    "enforce_gate": "crsmeta.model.fit", "fit_analysis": "crsmeta.model.fit", "stamp": "crsmeta.model.fit",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'crsmeta.model' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
