"""Where compiled models (and the simulated tables of crsmeta.cohort_log_ratio) are cached: the
project's `.cache/`, unless the user chose a place.

Imports neither PyTensor nor numba: both read these settings when they are first imported, so the
Snakefile sets them before anything else is imported, and every job inherits them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


# PyTensor's graph rewrites iterate over sets in places (measured: the order of the shape checks of
# an advanced index), so the same model compiled under two string-hash seeds gave two graphs with
# two cache keys: a fit found its compiled code in the cache only when it drew the seed of an
# earlier fit. One seed for every job makes the graph, and so the cache key, a function of the model.
HASH_SEED = "0"
TABLE_CACHE_VARIABLE = "CRSMETA_TABLE_CACHE"  # read by crsmeta.cohort_log_ratio


def compile_cache_environment(cache_dir: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """``PYTENSOR_FLAGS``, ``NUMBA_CACHE_DIR`` and ``CRSMETA_TABLE_CACHE`` that put PyTensor's
    compiledir (with its numba cache), numba's own cache and the simulated tables under
    ``cache_dir``, and a fixed ``PYTHONHASHSEED`` for the jobs. A compiledir in the
    ``PYTENSOR_FLAGS`` of ``environ``, its other flags, and any of the other variables set there
    are kept."""
    flags = environ.get("PYTENSOR_FLAGS", "")
    if "compiledir" not in flags:
        flags = ",".join(filter(None, [flags, f"base_compiledir={Path(cache_dir) / 'pytensor'}"]))
    return {
        "PYTENSOR_FLAGS": flags,
        "NUMBA_CACHE_DIR": environ.get("NUMBA_CACHE_DIR", str(Path(cache_dir) / "numba")),
        TABLE_CACHE_VARIABLE: environ.get(TABLE_CACHE_VARIABLE, str(Path(cache_dir) / "tables")),
        "PYTHONHASHSEED": environ.get("PYTHONHASHSEED", HASH_SEED),
    }
