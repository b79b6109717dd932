"""crsmeta.model.function_cache: one compile per graph, whatever the data; a function loaded for
another graph's data computes what a fresh compile of that graph computes; nothing it cannot
describe exactly is cached."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.builders import OpFromGraph

from crsmeta.model.function_cache import Unkeyable, cached_function, graph_key, shared_values


def density(values: np.ndarray, scale: float = 2.0) -> tuple[pt.TensorVariable, list]:
    """A log density of ``x`` with data (shared) ``values`` and a constant ``scale``."""
    x = pt.dvector("x")
    data = pytensor.shared(values, name="data")
    index = pytensor.shared(np.arange(len(values)) % 2, name="index")
    return x, [-(((data - x[index]) / scale) ** 2).sum()]


def counting_compiler(x, outputs, calls: list):
    def compile_now():
        calls.append(1)
        return pytensor.function([x], outputs, mode="FAST_COMPILE")

    return compile_now


def test_same_graph_with_other_data_compiles_once_and_computes_the_other_data(tmp_path) -> None:
    calls: list = []
    x, first = density(np.array([1.0, 2.0, 3.0]))
    cached_function([x], first, counting_compiler(x, first, calls), folder=tmp_path)
    y, second = density(np.array([0.5, -1.0, 4.0, 7.0]))  # other data, other length
    loaded = cached_function([y], second, counting_compiler(y, second, calls), folder=tmp_path)
    assert len(calls) == 1 and len(list(tmp_path.iterdir())) == 1
    point = np.array([0.3, -0.2])
    fresh = pytensor.function([y], second, mode="FAST_COMPILE")
    for variable in loaded.get_shared():  # this graph's data in place of the pickled ones
        variable.set_value(shared_values(loaded, second)[variable.name])
    np.testing.assert_allclose(loaded(point), fresh(point))


@pytest.mark.parametrize("change", ["constant", "op", "shared_name", "context"])
def test_a_different_graph_has_a_different_key(change) -> None:
    x, outputs = density(np.array([1.0, 2.0]))
    base = graph_key([x], outputs, ["a"])
    if change == "constant":
        x, outputs = density(np.array([1.0, 2.0]), scale=3.0)
    elif change == "op":
        outputs = [pt.exp(outputs[0])]
    elif change == "shared_name":
        outputs = [outputs[0] + pytensor.shared(np.zeros(2), name="other").sum()]
    key = graph_key([x], outputs, ["b"] if change == "context" else ["a"])
    assert key != base


def test_same_graph_built_twice_has_the_same_key() -> None:
    x, first = density(np.array([1.0, 2.0]))
    y, second = density(np.array([5.0, 6.0, 7.0]))
    assert graph_key([x], first) == graph_key([y], second)


def test_what_cannot_be_described_exactly_is_compiled_without_the_cache(tmp_path) -> None:
    x = pt.dvector("x")
    inner = OpFromGraph([x], [x * 2.0])  # an inner graph: no exact description
    outputs = [inner(x).sum()]
    with pytest.raises(Unkeyable):
        graph_key([x], outputs)
    calls: list = []
    function = cached_function([x], outputs, counting_compiler(x, outputs, calls), folder=tmp_path)
    assert calls == [1] and list(tmp_path.iterdir()) == []
    assert function(np.array([1.0, 2.0]))[0] == pytest.approx(6.0)


def test_unnamed_shared_variables_are_not_keyed() -> None:
    x = pt.dvector("x")
    with pytest.raises(Unkeyable, match="unique name"):
        graph_key([x], [(x * pytensor.shared(np.ones(2))).sum()])
