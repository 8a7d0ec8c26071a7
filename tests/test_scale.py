"""Scale (issue 15): the generated transformer stack of benchmarks/bench_scale.py goes through
every stage at 20k nodes, and the fast paths added for scale agree with the slow ones.

No timing is asserted here (the machine is shared); benchmarks/bench_scale.py prints the
times, per-node costs and peak memory at 1k, 10k and 100k nodes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import nvmc
import nvmc.calibrate as calibrate
from nvmc.backends import shipped_targets
from nvmc.ir import ParseError, nvir_fast, parse_text, print_graph
from nvmc.validate.nets import transformer_stack

from conftest import materialize_weights

REPO = Path(__file__).resolve().parents[1]


def test_generator_is_a_valid_runnable_transformer_stack():
    model = transformer_stack(100)
    onnx.checker.check_model(model, full_check=True)
    assert len(model.graph.node) == 108  # 6 blocks of 18
    ops = {n.op_type for n in model.graph.node}
    assert ops == {"LayerNormalization", "MatMul", "Transpose", "Mul", "Softmax", "Add", "Relu"}
    assert len(model.graph.initializer) == 11  # shared by every block: the file stays small
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((16, 32)).astype(np.float32)
    (y,) = session.run(None, {"x": x})
    assert y.shape == (16, 32) and np.isfinite(y).all()
    assert len(transformer_stack(1000).graph.node) == 1008
    assert len(transformer_stack(20_000).SerializeToString()) < 120 * 20_000


def test_20k_nodes_through_every_stage_and_every_target(tmp_path):
    """The benchmark's own run at 20k nodes: its child checks layers per target and the .nvir round
    trip (a failed check exits non-zero); its --json holds each stage's figures."""
    targets = sorted(shipped_targets())
    assert len(targets) >= 20
    raw = tmp_path / "scale.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_scale.py"), "--sizes", "20000",
                           "--targets", ",".join(targets), "--json", str(raw)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    times = json.loads(raw.read_text())["20000"]
    nodes = int(times.pop("nodes")[0])
    cpu = times.pop("cpu")
    assert set(cpu) == set(times) and all(v >= 0 for v in cpu.values())
    assert nodes == 19_998
    assert {"import", "verify", "verify-types", "canonicalize", "analyze", "nvir-print", "nvir-parse"} <= set(times)
    refused = {k.split(":", 1)[1]: v[2] for k, v in times.items() if len(v) > 2}
    # Only the HDC family refuses a transformer, with a message naming the node, op and target.
    assert set(refused) == {t for t in targets if nvmc.backends.load_target(t).family == "racetrack-hdc"}
    for target, message in refused.items():
        assert f"target '{target}'" in message and "(LayerNormalization)" in message
    assert all(f"backend:{t}" in times for t in targets)


def test_pe_entries_vectorised_equals_per_pe_csc():
    from nvmc.ir import csc
    from nvmc.passes.workload import _pe_entries_batched, csc_entries

    def per_pe(m, pes, rel):
        expect = np.zeros(pes, dtype=np.int64)
        for p in range(min(pes, m.shape[0])):
            expect[p] = csc_entries(m[p::pes], 0, rel)[0]
        return expect

    rng = np.random.default_rng(3)
    for _ in range(300):
        rows, cols = rng.integers(0, 40, 2)
        pes, rel = int(rng.integers(1, 50)), int(rng.integers(1, 5))
        m = rng.standard_normal((rows, cols)) * (rng.random((rows, cols)) < rng.random())
        expect, got = per_pe(m, pes, rel), csc.pe_entries(m[None], pes, rel)[0]
        assert got.dtype == expect.dtype and np.array_equal(got, expect)
    shapes = [(0, 3), (7, 5), (16, 16), (33, 9)]  # same-shape matrices are stacked, in batches
    matrices = {i: rng.standard_normal(shapes[i % 4]) * (rng.random(shapes[i % 4]) < 0.3) for i in range(40)}
    matrices.update({40: rng.standard_normal((7, 5)) + 10, 41: np.ones((33, 9)), 42: np.ones((3, 2))})  # dense
    rel = rng.integers(1, 5, 43).astype(float)
    for batch in (1, 50, 1 << 22):
        got = _pe_entries_batched(matrices, rel, 8, batch_elements=batch)
        assert all(np.array_equal(got[i], per_pe(m, 8, int(rel[i]))) for i, m in matrices.items())


@pytest.mark.parametrize("name", ["light_squeezenet", "light_inception_v1"])
def test_activation_density_in_pieces_equals_one_session(name, monkeypatch):
    g = nvmc.load(materialize_weights(name))
    w = nvmc.analyze(g)
    whole = calibrate.activation_density(g, w)
    monkeypatch.setattr(calibrate, "PIECE_NODES", 17)
    assert len(calibrate._pieces(g, [])) > 1
    pieces = calibrate.activation_density(g, w)
    assert np.array_equal(whole, pieces, equal_nan=True)
    assert np.isfinite(whole).sum() > 10


def _grammar_only(monkeypatch):
    monkeypatch.setattr(nvir_fast, "split", lambda text: (text, []))


def test_fast_nvir_lines_parse_as_the_grammar_does(monkeypatch):
    g = nvmc.load(REPO / "examples" / "models" / "tiny_transformer.onnx")
    g.add_node("Identity", ["out"], ["odd"], {"s": "a, b=1", "f": 1.5, "i": -2, "b": True, "l": [1, 2], "e": [],
                                              "fl": [0.5, -1e-5], "n": float("nan")}, name="odd")
    text, arrays = print_graph(g)
    skeleton, actions = nvir_fast.split(text)
    assert len(actions) == len(g) + len(g.consts) and len(skeleton.split("\n")) == len(text.split("\n"))
    fast = parse_text(text, sidecar=arrays)
    _grammar_only(monkeypatch)
    slow = parse_text(text, sidecar=arrays)
    assert print_graph(fast)[0] == print_graph(slow)[0] == text
    assert repr(fast.node("odd").attrs) == repr(slow.node("odd").attrs)
    assert [(v.name, v.type) for v in fast.values.values()] == [(v.name, v.type) for v in slow.values.values()]


@pytest.mark.parametrize("edit", [
    lambda s: s.replace("MatMul(%h, %wq)", "MatMul(%h, %wqq)"),      # unknown value (semantic)
    lambda s: s.replace("%k0 = MatMul", "%q0 = MatMul"),              # defined twice (semantic)
    lambda s: s.replace("MatMul(%h, %wk)", "MatMul(%h %wk)"),         # syntax, in a fast-form region
    lambda s: s.replace("{axis=-1}", "{axis=-1, axis=2}", 1),         # key given twice
    lambda s: s.replace("const f32[] [0.25]", "const f32[2] [0.25]"),  # element count
    lambda s: s.replace("  return %out", "  %zz = Relu(%nope) : f32[1]  // zz\n  return %out"),  # after the run
])
def test_fast_path_errors_are_the_grammars(edit, monkeypatch):
    g = nvmc.load(REPO / "examples" / "models" / "tiny_transformer.onnx")
    text, arrays = print_graph(g)
    bad = edit(text)
    assert bad != text
    with pytest.raises(ParseError) as fast:
        parse_text(bad, filename="m.nvir", sidecar=arrays)
    _grammar_only(monkeypatch)
    with pytest.raises(ParseError) as slow:
        parse_text(bad, filename="m.nvir", sidecar=arrays)
    assert str(fast.value) == str(slow.value) and "m.nvir:" in str(fast.value) and "^" in str(fast.value)


def test_topo_order_cache_follows_edits():
    g = nvmc.load(REPO / "examples" / "models" / "tiny_cnn.onnx")
    first = g.topo_nodes()
    assert g.topo_nodes() == first and g.topo_nodes() is not g.topo_nodes()
    last = first[-1]
    # a node appended that feeds an earlier one: insertion order is no longer topological
    early = first[1]
    g.add_node("Identity", [g.inputs[0]], ["fresh"], name="late_identity")
    early.inputs = ("fresh", *early.inputs[1:])
    order = [n.name for n in g.topo_nodes()]
    assert order.index("late_identity") < order.index(early.name) and order[-1] == last.name
