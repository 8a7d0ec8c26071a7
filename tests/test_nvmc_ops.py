"""The nvmc dialect (ir/ops.py, ir/dialect/): every nvmc op is defined once in the IR layer, so a
.nvir text with nvmc ops parses and verifies without the passes, and exports to ONNX that
onnxruntime runs with the op's outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnxruntime as ort
import pytest

import nvmc
from nvmc.ir import NVMC_OPS, VerifyError, parse_text
from nvmc.ir.ops import Attr

ALL_OPS = ["Bind", "Bundle", "NeonApprox", "Permute", "Similarity", "WinogradConv"]


def _text() -> str:
    """HDC ops on a bool input, NEON's net on a float one, and a Winograd F(2x2,3x3) 3x3 conv
    (one channel, U = G g G^T of a 3x3 kernel of ones, written out)."""
    g = np.array([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]])
    u = np.einsum("ia,ab,jb->ij", g, np.ones((3, 3)), g).reshape(16, 1, 1)
    return f"""// nvmc.ir 1  opset=17,nvmc:1
graph @ops(%x: bool[2,4,16], %f: f32[2,3], %img: f32[1,1,4,4]) -> (%d: i32[2,3], %y: f32[2,3], %c: f32[1,1,4,4]) {{
  %am = const bool[3,16] [{", ".join(["true", "false"] * 24)}]
  %w1 = const f32[1,2] [1.0, -1.0]
  %b1 = const f32[2] [0.5, 0.0]
  %w2 = const f32[2,1] [2.0, 1.0]
  %b2 = const f32[1] [0.25]
  %u = const f32[16,1,1] [{", ".join(repr(float(v)) for v in u.ravel())}]
  %r = nvmc.Permute(%x) {{axis=2, shift=1}} : bool[2,4,16]  // r
  %g = nvmc.Bind(%x, %r) : bool[2,4,16]  // g
  %q = nvmc.Bundle(%g) {{axis=1, count_type="i32", keepdims=1, threshold=2}} : bool[2,1,16]  // q
  %d = nvmc.Similarity(%q, %am) {{count_type="i32", keepdims=0, metric="hamming"}} : i32[2,3]  // d
  %y = nvmc.NeonApprox(%f, %w1, %b1, %w2, %b2) {{fn="exp", hi=0.0, lo=-1.0}} : f32[2,3]  // y
  %c = nvmc.WinogradConv(%img, %u) {{bits=8, pads=[1,1,1,1], quant="none", tile=2}} : f32[1,1,4,4]  // c
  return %d, %y, %c
}}
"""


def test_a_text_with_nvmc_ops_parses_and_verifies_without_the_passes():
    code = ("import json, sys, nvmc.ir; from nvmc.ir import NVMC_OPS, parse_text, verify_structure; "
            "verify_structure(parse_text(sys.argv[1])); print(json.dumps([sorted(NVMC_OPS), sorted(sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", code, _text()], capture_output=True, text=True, check=True).stdout
    ops, loaded = json.loads(out)
    assert ops == ALL_OPS
    bad = [m for m in loaded if m.split(".")[0] in ("onnx", "onnxruntime") or m.startswith(
        ("nvmc.passes", "nvmc.backends", "nvmc.frontend"))]
    assert not bad, bad


def test_the_text_exports_and_runs_with_the_ops_outputs():
    graph = parse_text(_text())
    nvmc.verify(graph)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (2, 4, 16)).astype(bool)
    f = rng.standard_normal((2, 3)).astype(np.float32)
    img = rng.standard_normal((1, 1, 4, 4)).astype(np.float32)
    session = ort.InferenceSession(nvmc.export(graph).SerializeToString(), providers=["CPUExecutionProvider"])
    d, y, c = session.run(None, {"x": x, "f": f, "img": img})
    bound = np.logical_xor(x, np.roll(x, 1, axis=2)).sum(axis=1, keepdims=True) > 2
    am = np.array([True, False] * 24).reshape(3, 16)
    np.testing.assert_array_equal(d, np.logical_xor(bound, am).sum(axis=-1))
    hidden = np.maximum(f[..., None] * np.array([1.0, -1.0]) + np.array([0.5, 0.0]), 0)
    np.testing.assert_allclose(y, hidden @ np.array([2.0, 1.0]) + 0.25, rtol=1e-6)
    padded = np.pad(img[0, 0], 1)
    direct = np.array([[padded[i:i + 3, j:j + 3].sum() for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(c[0, 0], direct, rtol=1e-5, atol=1e-5)


def test_declared_operands_and_attributes_are_verified_generically():
    text = _text()
    for old, new, why in [("tile=2}", "tile=3}", "tile: expected one of 2, 4, got 3"),
                          ("{axis=2, shift=1}", "{shift=1}", "needs the attribute 'axis'"),
                          ('metric="hamming"', 'metric="cosine"', "metric: expected one of 'hamming'"),
                          ('keepdims=0, metric', 'keepdims=2, metric', "keepdims: expected one of 0, 1, got 2"),
                          ("nvmc.Bind(%x, %r)", "nvmc.Bind(%x)", "at least 2 inputs"),
                          ("%f, %w1, %b1", "%f, %f, %b1", "operand 'w1' .* must be a constant")]:
        with pytest.raises(VerifyError, match=why):
            nvmc.verify(parse_text(text.replace(old, new)))


def test_the_ir_keeps_what_it_mirrors_in_step():
    """The HDC count types' ONNX codes are onnx's, NeonApprox's functions are neon_fit's."""
    from onnx import helper

    from nvmc.ir.dialect import hdc, neon
    from nvmc.ir.types import numpy_dtype
    from nvmc.passes.neon_fit import FUNCTIONS

    assert hdc.COUNT_TYPES == {t: helper.np_dtype_to_tensor_dtype(numpy_dtype(t)) for t in hdc.COUNT_TYPES}
    assert neon.FUNCTIONS == tuple(FUNCTIONS)
    assert sorted(NVMC_OPS) == ALL_OPS
    assert NVMC_OPS["NeonApprox"].attrs[0] == Attr("fn", str, choices=neon.FUNCTIONS)
