"""The log density and the trace expansion as C callbacks that nutpie's sampler calls directly.

Called as Python functions (``nutpie.from_pyfunc``), every gradient went through the interpreter
and took the GIL: sampling the bundled main model (2 cores, 4 chains, 1500 steps each) took 18.7 s,
against 4.7 s when nutpie called a C function, and one core was faster than two. nutpie's own C
route cannot be cached: its ``cfunc`` holds the data's addresses as globals, so every fit job
compiled the whole log density again. The callbacks here read the addresses of their data from a
table that nutpie passes them as its "user data" pointer, so their code depends on the graph alone:
it is generated from the function's inputs and outputs, and numba caches it on disk under the key
of the PyTensor function it calls and a hash of the generated source.

The table, which nutpie gets as the model's user data: for each shared input in the log density's
order, its address followed by its shape.

The trace holds the free parameters in the sampler's coordinates, the point itself (everything else
is computed from them after sampling: crsmeta.model.nutpie_model.add_derived_draws), so the
expansion is one fixed callback that copies the point, compiled once per machine instead of a
PyTensor function compiled per model structure (~6 s of numba each, cold).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

import numba
import numpy as np
from numba.core import cgutils, types
from numba.core.ccallback import CFunc
from pytensor.compile.function.types import Function
from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS, compile_numba_function_src

LOGP_SIGNATURE = types.int64(  # nutpie's: dim, x, gradient out, log density out, user data
    types.uint64, types.CPointer(types.double), types.CPointer(types.double), types.CPointer(types.double),
    types.voidptr,
)
EXPAND_SIGNATURE = types.int64(  # nutpie's: dim, n_expanded, x, values out, user data
    types.uint64, types.uint64, types.CPointer(types.double), types.CPointer(types.double), types.voidptr,
)

# nutpie's return codes: 0 success; > 0 a point where the density cannot be evaluated (the sampler
# treats it as a divergence); < 0 a call that cannot be right (wrong sizes).
_EXCEPTION, _NONFINITE_GRADIENT, _NONFINITE_LOGP, _WRONG_SIZE = 1, 3, 4, -1


@numba.extending.intrinsic
def address_as_pointer(typingctx, address):
    """The integer ``address`` as a void pointer (for ``numba.carray``)."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


def data_table(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Each array's address followed by its shape: what a callback reads its data from. The
    arrays must stay alive (and C-contiguous) as long as the table is used."""
    entries: list[int] = []
    for array in arrays:
        if not array.flags.c_contiguous:
            raise ValueError("a callback's data must be C-contiguous")
        entries += [array.ctypes.data, *array.shape]
    return np.array(entries, dtype=np.uint64)


def logp_callback(function: Function, arrays: Sequence[np.ndarray]) -> CFunc:
    """A cfunc computing ``function``'s log density and gradient of the point, with the shared
    inputs' data (``arrays``, in ``function.get_shared()`` order) found through their table
    (:func:`data_table`), which nutpie passes as its user data."""
    unpack, names = _unpack(arrays)
    source = "\n".join([
        "def logp_callback(dim, x_, gradient_, logp_, user_data_):",
        *unpack,
        "    x = numba.carray(x_, (dim,))",
        "    gradient = numba.carray(gradient_, (dim,))",
        "    logp = numba.carray(logp_, ())",
        *_arguments(["x", *names]),
        "    try:",
        "        value, computed = function(*arguments)",
        "    except Exception:",
        f"        return {_EXCEPTION}",
        "    if computed.shape[0] != dim:",
        f"        return {_WRONG_SIZE}",
        "    logp[()] = value[()]",
        "    gradient[:] = computed",
        "    if not np.all(np.isfinite(gradient)):",
        f"        return {_NONFINITE_GRADIENT}",
        "    if not np.isfinite(logp[()]):",
        f"        return {_NONFINITE_LOGP}",
        "    return 0",
    ])
    return _compiled(source, "logp_callback", function, LOGP_SIGNATURE)


def _copy_point(dim, n_expanded, x_, out_, user_data_):
    """nutpie's expansion of a point into the traced values: the point itself."""
    if n_expanded != dim:
        return _WRONG_SIZE
    for i in range(dim):
        out_[i] = x_[i]
    return 0


@functools.cache
def copy_point_callback() -> CFunc:
    """The expansion callback (:func:`_copy_point`), compiled on first use and cached on disk."""
    return numba.cfunc(EXPAND_SIGNATURE, cache=True, fastmath=False)(_copy_point)


def _unpack(arrays: Sequence[np.ndarray]) -> tuple[list[str], list[str]]:
    """Source lines that rebuild each array from the table (nutpie's user data), and the arrays' names."""
    lines = [f"    table = numba.carray(user_data_, ({_table_length(arrays)},), np.uint64)"]
    names, position = [], 0
    for i, array in enumerate(arrays):
        shape = "".join(f"table[{position + 1 + k}], " for k in range(array.ndim))
        lines.append(f"    data_{i} = numba.carray(address_as_pointer(table[{position}]), ({shape}), np.{array.dtype.name})")
        names.append(f"data_{i}")
        position += 1 + array.ndim
    return lines, names


def _arguments(names: list[str]) -> list[str]:
    """Source lines making the tuple ``arguments`` of ``names``, at most 30 at a time: beyond 30,
    Python compiles a call or a tuple through a list (``LIST_TO_TUPLE``), which numba cannot type."""
    chunks = [names[start:start + 30] for start in range(0, len(names), 30)]
    lines = [f"    arguments = ({', '.join(chunks[0])},)"]
    lines += [f"    arguments = arguments + ({', '.join(chunk)},)" for chunk in chunks[1:]]
    return lines


def _table_length(arrays: Sequence[np.ndarray]) -> int:
    return sum(1 + array.ndim for array in arrays)


def _compiled(source: str, name: str, function: Function, signature) -> CFunc:
    """The cfunc of ``source`` calling ``function``'s numba code, cached on disk when that code
    is (under its key and the source's hash: a change of either is a new entry)."""
    jitted = function.vm.jit_fn
    function_key = CACHED_SRC_FUNCTIONS.get(jitted.py_func)
    cache_key = None
    if function_key is not None:
        cache_key = f"{function_key}_{name}_{hashlib.sha256(source.encode()).hexdigest()[:16]}"
    python = compile_numba_function_src(
        source, name, cache_key=cache_key,
        global_env={"__name__": __name__, "numba": numba, "np": np, "function": jitted,
                    "address_as_pointer": address_as_pointer},
    )
    return numba.cfunc(signature, cache=cache_key is not None, fastmath=False)(python)
