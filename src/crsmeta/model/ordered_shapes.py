"""PyTensor's broadcast shape checks in a fixed order, so that a model compiles to the same graph,
and finds its compiled code under the same cache key, in every process.

When two vectors of unknown length meet in one operation, ``broadcast_shape_iter`` (pytensor
2.38, ``pytensor.tensor.extra_ops``) asserts that their lengths agree, collecting the lengths in
a ``set`` of variables, which iterates in the order of the variables' ids. With the model's data
as inputs of the compiled code (crsmeta.model.build) many lengths are unknown, and the same model
compiled to graphs that differed only in the order of these assertions: a new cache key, and
a minute of compiling, in every process. The module's ``set`` is replaced by a set that iterates
in insertion order (the function uses nothing else of ``set``; tests/test_nutpie_model.py checks
that a model's key is the same in two processes).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable

from pytensor.tensor import extra_ops


class InsertionOrderedSet(dict):
    """What ``broadcast_shape_iter`` uses of ``set`` (``set()``, ``add``, ``len``, iteration),
    iterating in insertion order."""

    def __init__(self, items: Iterable[Hashable] = ()) -> None:
        super().__init__(dict.fromkeys(items))

    def add(self, item: Hashable) -> None:
        self[item] = None


def order_broadcast_shape_checks() -> None:
    """Make ``pytensor.tensor.extra_ops``'s ``set`` the insertion-ordered one (idempotent)."""
    extra_ops.set = InsertionOrderedSet
