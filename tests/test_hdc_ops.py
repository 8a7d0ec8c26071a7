"""nvmc HDC ops (ir/dialect/hdc.py): verifier, ONNX lowering run in onnxruntime, text form,
workload counts (hand-computed)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import nvmc
from nvmc.ir import Graph, TensorType, VerifyError, parse_text, verify_structure
from nvmc.passes import analyze

D = 16


def hv(shape) -> TensorType:
    return TensorType("bool", tuple(shape))


def run(graph: Graph, feeds: dict) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(nvmc.export(graph).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def bits(rng, shape) -> np.ndarray:
    return rng.integers(0, 2, shape).astype(bool)


def test_bind_lowers_to_xor_with_broadcasting():
    rng = np.random.default_rng(0)
    g = Graph("bind")
    for name, shape in (("a", (2, 3, D)), ("b", (2, 3, D)), ("c", (1, 1, D))):
        g.add_input(name, hv(shape))
    g.add_node("Bind", ["a", "b", "c"], ["y"], domain="nvmc", types=[hv((2, 3, D))])
    g.outputs = ["y"]
    nvmc.verify(g)
    a, b, c = bits(rng, (2, 3, D)), bits(rng, (2, 3, D)), bits(rng, (1, 1, D))
    (y,) = run(g, {"a": a, "b": b, "c": c})
    assert np.array_equal(y, a ^ b ^ c)


@pytest.mark.parametrize("shift", [1, 3, D - 1])
def test_permute_is_numpy_roll(shift):
    rng = np.random.default_rng(1)
    g = Graph("permute")
    g.add_input("x", hv((3, D)))
    g.add_node("Permute", ["x"], ["y"], {"axis": -1, "shift": shift}, domain="nvmc", types=[hv((3, D))])
    g.outputs = ["y"]
    nvmc.verify(g)
    x = bits(rng, (3, D))
    assert np.array_equal(run(g, {"x": x})[0], np.roll(x, shift, axis=-1))


@pytest.mark.parametrize("threshold,keepdims", [(None, 0), (None, 1), (2, 0)])
def test_bundle_counts_or_majority(threshold, keepdims):
    rng = np.random.default_rng(2)
    g = Graph("bundle")
    g.add_input("x", hv((2, 5, D)))
    attrs = {"axis": 1, "count_type": "i32", "keepdims": keepdims}
    out_shape = (2, 1, D) if keepdims else (2, D)
    if threshold is not None:
        attrs["threshold"] = threshold
    out = hv(out_shape) if threshold is not None else TensorType("i32", out_shape)
    g.add_node("Bundle", ["x"], ["y"], attrs, domain="nvmc", types=[out])
    g.outputs = ["y"]
    nvmc.verify(g)
    x = bits(rng, (2, 5, D))
    counts = x.sum(axis=1, keepdims=bool(keepdims), dtype=np.int32)
    expect = counts > threshold if threshold is not None else counts
    assert np.array_equal(run(g, {"x": x})[0], expect)


def test_similarity_is_hamming_distance():
    rng = np.random.default_rng(3)
    g = Graph("similarity")
    g.add_input("q", hv((4, 1, D)))
    g.add_const("am", bits(rng, (3, D)))
    g.add_node("Similarity", ["q", "am"], ["d"], {"metric": "hamming", "count_type": "i64", "keepdims": 0},
               domain="nvmc", types=[TensorType("i64", (4, 3))])
    g.outputs = ["d"]
    nvmc.verify(g)
    q = bits(rng, (4, 1, D))
    assert np.array_equal(run(g, {"q": q})[0], (q ^ g.consts["am"]).sum(axis=-1))


@pytest.mark.parametrize("op,inputs,attrs,out,why", [
    ("Bind", [("a", "i32", (D,)), ("b", "i32", (D,))], {}, hv((D,)), "bool hypervectors"),
    ("Bind", [("a", "bool", (D,))], {}, hv((D,)), "at least 2 inputs"),
    ("Permute", [("x", "bool", (D,))], {"axis": 0, "shift": D}, hv((D,)), "shift 16 must lie in 1..15"),
    ("Permute", [("x", "bool", (D,))], {"shift": 1}, hv((D,)), "needs the attribute 'axis'"),
    ("Bundle", [("x", "bool", (3, D))], {"axis": 1}, TensorType("i32", (3,)), "other than the last"),
    ("Bundle", [("x", "bool", (3, D))], {"axis": 0, "keepdims": 0}, hv((D,)), "expected i32"),
    ("Similarity", [("q", "bool", (D,)), ("m", "bool", (2, D))], {"metric": "cosine"}, TensorType("i32", (2, 1)),
     "metric: expected one of 'hamming'"),
])
def test_verifier_names_what_is_wrong(op, inputs, attrs, out, why):
    g = Graph("bad")
    for name, dtype, shape in inputs:
        g.add_input(name, TensorType(dtype, shape))
    g.add_node(op, [i[0] for i in inputs], ["y"], attrs, domain="nvmc", types=[out])
    g.outputs = ["y"]
    with pytest.raises(VerifyError, match=why):
        verify_structure(g)


def test_text_form_round_trips():
    text = """// nvmc.ir 1  opset=17
graph @h(%x: bool[2,4,16]) -> (%d: i32[2,3]) {
  %am = const bool[3,16] @w.npz:am
  %r = nvmc.Permute(%x) {axis=2, shift=1} : bool[2,4,16]  // r
  %g = nvmc.Bind(%x, %r) : bool[2,4,16]  // g
  %q = nvmc.Bundle(%g) {axis=1, count_type="i32", keepdims=1, threshold=2} : bool[2,1,16]  // q
  %d = nvmc.Similarity(%q, %am) {count_type="i32", keepdims=0, metric="hamming"} : i32[2,3]  // d
  return %d
}
"""
    g = parse_text(text, sidecar={"am": bits(np.random.default_rng(4), (3, 16))})
    nvmc.verify(g)
    assert g.to_text(sidecar="w.npz", inline_limit=0) == text


def test_workload_counts():
    """Hand-computed: Bind of 3 x [2,8,16] -> 2 x 256 XORs; Bundle of 8 vectors -> 8*32 - 32
    adds + 32 compares; Similarity of [2,1,16] vs [3,16] -> 96 XORs and 96 - 6 adds."""
    g = Graph("counts")
    g.add_input("x", hv((2, 8, D)))
    g.add_const("am", np.zeros((3, D), dtype=bool))
    g.add_node("Permute", ["x"], ["r"], {"axis": 2, "shift": 1}, domain="nvmc", types=[hv((2, 8, D))])
    g.add_node("Bind", ["x", "r", "x"], ["b"], domain="nvmc", types=[hv((2, 8, D))])
    g.add_node("Bundle", ["b"], ["q"], {"axis": 1, "keepdims": 1, "threshold": 4}, domain="nvmc",
               types=[hv((2, 1, D))])
    g.add_node("Similarity", ["q", "am"], ["d"], {"keepdims": 0}, domain="nvmc", types=[TensorType("i32", (2, 3))])
    g.outputs = ["d"]
    nvmc.verify(g)
    w = analyze(g)
    rows = {w.names[i]: w.row(i) for i in range(len(w))}
    assert rows["r"]["nonmac_ops"] == {}
    assert rows["b"]["nonmac_ops"] == {"other": 2 * 256}
    assert rows["q"]["nonmac_ops"] == {"add": 256 - 32, "cmp": 32}
    assert rows["d"]["nonmac_ops"] == {"other": 96, "add": 90}
    assert not w.notices
