"""The .nvir text form: golden output, round-trip property, located parse errors."""

from __future__ import annotations

import os
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nvmc
from nvmc.ir import Annotation, Graph, ParseError, TensorType, parse_text, print_graph

GOLDEN = Path(__file__).parent / "data" / "golden"


def test_golden_tiny_cnn(example_models):
    """The printed form of the example CNN is pinned: a diff here is a format change."""
    text = nvmc.load(example_models / "tiny_cnn.onnx").to_text(sidecar="tiny_cnn.npz")
    golden = GOLDEN / "tiny_cnn.nvir"
    if os.environ.get("NVMC_UPDATE_GOLDEN"):  # after an intended format change
        golden.write_text(text)
    assert text == golden.read_text()


def test_annotations_and_holes_print_and_parse():
    g = Graph("g")
    g.add_input("x", TensorType("f32", ("batch", 4, None)))
    g.add_const("w", np.arange(12, dtype=np.float32).reshape(3, 4))
    q = TensorType("f32", ("batch", 3, None), (Annotation.of("quant", {"bits": 8, "scheme": "symmetric",
                                                                      "scales": [0.5, 0.25]}),))
    g.add_node("Op", ["x", "", "w"], ["y"], {"f": 0.1, "i": -3, "s": 'a "q"', "fs": [1.5, -2.0], "e": []},
               name="weird name/1", domain="com.example", types=[q])
    g.outputs = ["y"]
    text, arrays = print_graph(g)
    assert '%y = com.example.Op(%x, _, %w)' in text
    assert '#quant<bits=8, scales=[0.5, 0.25], scheme="symmetric">' in text
    assert '// "weird name/1"' in text
    again = parse_text(text, sidecar=arrays)
    assert print_graph(again)[0] == text
    assert again.node("weird name/1").attrs == {"e": [], "f": 0.1, "fs": [1.5, -2.0], "i": -3, "s": 'a "q"'}


# ---------------------------------------------------------------- property
names = st.text(alphabet=string.ascii_letters + string.digits + "_./-: é", min_size=1, max_size=12)
floats = st.floats(allow_nan=False, width=32)
attr_values = st.one_of(st.integers(-2**40, 2**40), floats, st.text(max_size=8),
                        st.lists(st.integers(-9, 9), min_size=1, max_size=4),
                        st.lists(floats, min_size=1, max_size=3))
dims = st.one_of(st.integers(1, 9), st.sampled_from(["N", "seq", None]))
dtypes = st.sampled_from(["f32", "f16", "i64", "i8", "bool", "bf16"])


@st.composite
def graphs(draw):
    g = Graph(draw(names))
    pool = []
    for i in range(draw(st.integers(1, 3))):
        name = f"in{i}_" + draw(names)
        g.add_input(name, TensorType(draw(dtypes), tuple(draw(st.lists(dims, max_size=4)))))
        pool.append(name)
    for i in range(draw(st.integers(0, 2))):
        size = draw(st.integers(1, 12))
        array = np.array(draw(st.lists(floats, min_size=size, max_size=size)), dtype=np.float32)
        name = f"c{i}_" + draw(names)
        g.add_const(name, array)
        pool.append(name)
    for i in range(draw(st.integers(1, 6))):
        ins = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
        attrs = draw(st.dictionaries(st.sampled_from(["alpha", "axes", "mode", "x y"]), attr_values, max_size=3))
        anns = ()
        if draw(st.booleans()):
            anns = (Annotation.of("sparsity", {"density": draw(st.floats(0, 1, width=32))}),)
        out = f"v{i}_" + draw(names)
        shape = None if draw(st.booleans()) else tuple(draw(st.lists(dims, max_size=3)))
        g.add_node(draw(st.sampled_from(["Relu", "Add", "nvmc.Fake", "Concat"])).split(".")[-1], ins, [out],
                   attrs, name=f"n{i}_" + draw(names), types=[TensorType(draw(dtypes), shape, anns)])
        pool.append(out)
    g.outputs = [pool[-1]]
    return g


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_print_parse_print_is_identity(g):
    text, arrays = print_graph(g, inline_limit=4)
    again = parse_text(text, sidecar=arrays)
    assert print_graph(again, inline_limit=4)[0] == text


# ------------------------------------------------------------------ errors
GOOD = """// nvmc.ir 1  opset=17
graph @g(%x: f32[1,4]) -> (%y: f32[1,4]) {
  %y = Relu(%x) : f32[1,4]  // r
  return %y
}
"""


@pytest.mark.parametrize("bad,line,col,message", [
    (GOOD.replace("Relu(%x)", "Relu(%x9)"), 3, 13, "unknown value '%x9' — did you mean 'x'?"),
    (GOOD.replace("Relu(%x)", "Relu(%x"), 3, 16, "unexpected ':'; expected ')', ','"),
    (GOOD.replace(": f32[1,4]  //", ": q32[1,4]  //"), 3, 19, "unexpected 'q32'; expected element type"),
    (GOOD.replace("  return %y\n", ""), 2, 7, "graph @g has no 'return' statement"),
    (GOOD.replace("  %y = Relu", "  %x = Relu"), 3, 3, "defined twice"),
    (GOOD.replace("-> (%y: f32[1,4])", "-> (%y: f32[1,5])"), 2, 28, "declared f32[1,5] but defined as f32[1,4]"),
])
def test_parse_errors_point_at_the_place(bad, line, col, message):
    with pytest.raises(ParseError) as info:
        parse_text(bad, filename="m.nvir")
    err = info.value
    assert (err.where.line, err.where.col) == (line, col), err.render()
    assert message in err.render()
    rendered = err.render().splitlines()
    assert rendered[0].startswith(f"error: m.nvir:{line}:{col}: ")
    assert rendered[2].strip().startswith("^")


def test_missing_sidecar_is_a_parse_error(tmp_path):
    text = GOOD.replace("  %y = Relu", "  %w = const f32[100] @gone.npz:w\n  %y = Relu")
    with pytest.raises(ParseError, match="cannot read tensor 'w' from sidecar 'gone.npz'"):
        parse_text(text, filename=str(tmp_path / "m.nvir"))


def test_comment_lines_are_ignored():
    text = GOOD.replace("  return", "  // a note for the reader\n\n  return")
    assert parse_text(text).to_text() == GOOD
