"""Where compiled models are cached: the project's `.cache/`, unless the user chose a place.

Imports neither PyTensor nor numba: both read these settings when they are first imported, so the
Snakefile sets them before anything else is imported, and every job inherits them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def compile_cache_environment(cache_dir: Path, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """``PYTENSOR_FLAGS`` and ``NUMBA_CACHE_DIR`` that put PyTensor's compiledir (with its numba
    cache) and numba's own cache under ``cache_dir``. A compiledir in the ``PYTENSOR_FLAGS`` of
    ``environ``, its other flags, and a ``NUMBA_CACHE_DIR`` set there are kept."""
    flags = environ.get("PYTENSOR_FLAGS", "")
    if "compiledir" not in flags:
        flags = ",".join(filter(None, [flags, f"base_compiledir={Path(cache_dir) / 'pytensor'}"]))
    return {"PYTENSOR_FLAGS": flags, "NUMBA_CACHE_DIR": environ.get("NUMBA_CACHE_DIR", str(Path(cache_dir) / "numba"))}
