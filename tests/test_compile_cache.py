"""Where the compile cache lives.

That a fit gives the same bytes whether it compiled its model into an empty cache or loaded it
from a warm one, in another Snakemake process and another directory, is checked by
tests/cluster/run_slurm.sh (check 2), the second half of the README's test command: its local run
compiles into an empty `.cache/`, its SLURM runs load a copy, and their tables must be
byte-identical. A cold compile takes minutes, so CI pays for it once, there.
"""

from __future__ import annotations

from pathlib import Path

from crsmeta.compile_cache import HASH_SEED, compile_cache_environment


def test_the_compile_cache_is_under_the_project_unless_the_user_set_one() -> None:
    project = compile_cache_environment(Path("/p/.cache"), {"PYTENSOR_FLAGS": "floatX=float64"})
    assert project == {"PYTENSOR_FLAGS": "floatX=float64,base_compiledir=/p/.cache/pytensor",
                       "NUMBA_CACHE_DIR": "/p/.cache/numba", "CRSMETA_TABLE_CACHE": "/p/.cache/tables",
                       "PYTHONHASHSEED": HASH_SEED}
    own = {"PYTENSOR_FLAGS": "base_compiledir=/mine", "NUMBA_CACHE_DIR": "/mine/numba",
           "CRSMETA_TABLE_CACHE": "/mine/tables", "PYTHONHASHSEED": "7"}
    assert compile_cache_environment(Path("/p/.cache"), own) == own
