"""Compiled PyTensor functions kept on disk, under a key of the graph before its rewrites.

Numba's cache spares a fit the LLVM compile of its log density, but not PyTensor's graph rewrites
that come first: 15-20 s of every fit job on the bundled model (docs/benchmarks.md). The rewritten
function is the same for every analysis whose graph is the same up to the values of its shared
variables (the model's data, crsmeta.model.build), so the first job pickles it and every later job
loads it (3-4 s) and passes its own data by name.

The key is a fingerprint of the graph: every node's op with its properties, every constant's
bytes, every shared variable's name and type, the wiring, and the versions and flags that decide
what the rewrites make. A graph holding an op whose properties cannot be written down exactly
(say, an inner graph) is compiled directly, never cached under a key that might collide.

Every fit uses the loaded function, also the one that just compiled it, so a fit computes the
same numbers whether it found the function on disk or not (the numba code of a loaded function is
generated, and cached, from the loaded graph).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
import types
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numba
import numpy as np
import pymc
import pytensor
from pytensor.compile.function.types import Function
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant, Variable
from pytensor.graph.traversal import graph_inputs, io_toposort
from pytensor.graph.op import Op
from pytensor.graph.type import Type

log = logging.getLogger(__name__)

CACHE_FOLDER = "crsmeta_functions"  # under PyTensor's compiledir (the project's .cache/ in the workflow)
_PLAIN = (type(None), bool, int, float, complex, str, bytes, np.generic)
_MAX_DEPTH = 8


class Unkeyable(Exception):
    """A graph part whose description would not identify it exactly."""


def cached_function(inputs: Sequence[Variable], graph: Sequence[Variable],
                    compile_function: Callable[[], Function], context: Sequence[str] = (),
                    folder: Path | None = None) -> Function:
    """The function ``compile_function`` compiles, from the disk cache, compiled and stored first if absent.

    ``graph`` (outputs of ``inputs``, shared variables and constants) decides the function: it
    is what the function computes, or a graph it is derived from by fixed steps (say, a log
    density before its gradient is taken), which ``context`` names with whatever else decides
    the compiled code (e.g. the model's ``check_bounds``). The function returned carries the
    shared values of whichever graph was compiled first: call it with :func:`shared_values`.
    ``folder`` defaults to ``crsmeta_functions`` in PyTensor's compiledir.
    """
    try:
        key = graph_key(inputs, graph, context)
    except Unkeyable as reason:
        log.info("compiled without the function cache: %s", reason)
        return compile_function()
    path = (folder or Path(pytensor.config.compiledir) / CACHE_FOLDER) / f"{key}.pkl"
    with _deep_recursion():
        if not path.exists():
            _write_atomically(path, pickle.dumps(compile_function(), protocol=pickle.HIGHEST_PROTOCOL))
        return pickle.loads(path.read_bytes())


def shared_values(function: Function, graph: Sequence[Variable]) -> dict[str, np.ndarray]:
    """The values, in ``graph`` (the one :func:`cached_function` was given), of the shared
    variables ``function`` takes, by name (the cache's keys include the names)."""
    own = {variable.name: variable for variable in _shared_inputs(graph)}
    return {variable.name: np.asarray(own[variable.name].get_value()) for variable in function.get_shared()}


def graph_key(inputs: Sequence[Variable], outputs: Sequence[Variable], context: Sequence[str] = ()) -> str:
    """A SHA-256 of everything that decides the compiled function of ``inputs`` → ``outputs``."""
    shared = _shared_inputs(outputs)
    names = [variable.name for variable in shared]
    if None in names or len(set(names)) != len(names):
        raise Unkeyable("shared variables without a unique name")
    numbers: dict[Variable, int] = {}
    lines = [f"{name} {_version(name)}" for name in ("pytensor", "pymc", "numba", "numpy")]
    lines += [f"python {sys.version_info[:3]}", f"floatX {pytensor.config.floatX}",
              f"fastmath {pytensor.config.numba__fastmath}", *context]
    for variable in inputs:
        lines.append(f"input {_number(variable, numbers)} {variable.type}")
    for node in io_toposort(list(graph_inputs(outputs)), list(outputs)):
        arguments = []
        for variable in node.inputs:
            if variable not in numbers:
                lines.append(f"root {_number(variable, numbers)} {_root(variable)}")
            arguments.append(numbers[variable])
        results = [f"{_number(variable, numbers)}:{variable.type}" for variable in node.outputs]
        lines.append(f"{_describe(node.op)} {arguments} -> {results}")
    lines.append(f"outputs {[numbers[variable] for variable in outputs]}")
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _shared_inputs(outputs: Sequence[Variable]) -> list[SharedVariable]:
    return [variable for variable in graph_inputs(outputs) if isinstance(variable, SharedVariable)]


def _number(variable: Variable, numbers: dict[Variable, int]) -> int:
    return numbers.setdefault(variable, len(numbers))


def _root(variable: Variable) -> str:
    if isinstance(variable, SharedVariable):
        return f"shared {variable.name} {variable.type}"
    if isinstance(variable, Constant):
        return f"constant {variable.type} {_describe(variable.data)}"
    raise Unkeyable(f"free input {variable} not among the function's inputs")


def _describe(value: object, depth: int = 0) -> str:
    """An exact text of an op, a property value or a constant's data (or :class:`Unkeyable`).

    Ops with ``__props__`` are equal when their properties are; other objects (PyTensor's scalar
    ops, e.g. ``Exp`` or ``Cast``) are described by their type and every attribute.
    """
    if depth > _MAX_DEPTH:
        raise Unkeyable(f"{type(value).__qualname__} nests deeper than {_MAX_DEPTH} levels")
    nested = lambda item: _describe(item, depth + 1)  # noqa: E731
    if isinstance(value, _PLAIN):
        return repr(value)
    if isinstance(value, np.ndarray):
        return f"array {value.dtype} {value.shape} {hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()}"
    if isinstance(value, tuple | list | frozenset):
        items = sorted(map(nested, value)) if isinstance(value, frozenset) else map(nested, value)
        return f"{type(value).__name__}({', '.join(items)})"
    if isinstance(value, dict):
        return f"dict({', '.join(sorted(f'{nested(key)}: {nested(item)}' for key, item in value.items()))})"
    if isinstance(value, slice):
        return f"slice({nested(value.start)}, {nested(value.stop)}, {nested(value.step)})"
    if isinstance(value, Type):
        return str(value)
    if isinstance(value, types.FunctionType | type | np.dtype):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', value)}"
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(value, Op) and getattr(type(value), "__props__", None) is not None:
        return f"{kind}({', '.join(f'{name}={nested(getattr(value, name))}' for name in type(value).__props__)})"
    if hasattr(value, "__dict__"):
        return f"{kind}({', '.join(f'{name}={nested(item)}' for name, item in sorted(vars(value).items()))})"
    raise Unkeyable(f"{kind} has no exact description")


def _version(package: str) -> str:
    return {"pytensor": pytensor, "pymc": pymc, "numba": numba, "numpy": np}[package].__version__


def _write_atomically(path: Path, content: bytes) -> None:
    """Jobs running at once may store the same key: each writes its own file and renames it
    (created as any file, so a cache shared by a group stays readable by it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_bytes(content)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class _deep_recursion:
    """Pickling a graph of a few thousand nodes recurses deeper than Python's default limit."""

    def __enter__(self) -> None:
        self.limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(self.limit, 100_000))

    def __exit__(self, *exc: object) -> None:
        sys.setrecursionlimit(self.limit)
