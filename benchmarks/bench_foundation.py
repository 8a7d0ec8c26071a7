"""Import + verify + analyze time against onnx.load + onnx.shape_inference on the same model.

    python benchmarks/bench_foundation.py [--nodes 100000]

Prints, for the ResNet-50 zoo model and a generated chain of N nodes: the time of
onnx.load + infer_shapes (the baseline), of nvmc's load (which includes both) + verify
(structural and ONNX type check) + analyze, their ratio (goal <= 3x), the .nvir print and
parse times, and the peak Python memory (tracemalloc, in a separate untimed run).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import nvmc
from nvmc.ir import parse_text, print_graph

ZOO = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"


def chain_model(n_nodes: int, width: int = 16) -> onnx.ModelProto:
    """A long transformer-like chain: MatMul + Add + Relu repeated (n_nodes in total)."""
    w = numpy_helper.from_array(np.eye(width, dtype=np.float32), "w")
    b = numpy_helper.from_array(np.zeros(width, np.float32), "b")
    nodes, prev = [], "x"
    ops = ("MatMul", "Add", "Relu")
    for i in range(n_nodes):
        op = ops[i % 3]
        ins = [prev, "w"] if op == "MatMul" else [prev, "b"] if op == "Add" else [prev]
        nodes.append(helper.make_node(op, ins, [f"t{i}"], name=f"n{i}"))
        prev = f"t{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, width])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [8, width])], [w, b])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def timed(fn, *args, **kw):
    t = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t


def bench(label: str, path: Path) -> None:
    _, t_load = timed(onnx.load, path)
    model = onnx.load(path)
    _, t_infer = timed(onnx.shape_inference.infer_shapes, model, data_prop=True)
    baseline = t_load + t_infer

    graph, t_import = timed(nvmc.load, path)
    _, t_verify = timed(nvmc.verify, graph)
    workload, t_analyze = timed(nvmc.analyze, graph)
    del graph
    tracemalloc.start()  # a second, untimed run: tracing slows allocation-heavy code severalfold
    graph = nvmc.load(path)
    nvmc.verify(graph)
    nvmc.analyze(graph)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    (text, arrays), t_print = timed(print_graph, graph)
    _, t_parse = timed(parse_text, text, sidecar=arrays)
    ours = t_import + t_verify + t_analyze
    print(f"{label}: {len(graph)} nodes, {workload.totals['macs'] / 1e9:.3f} GMAC")
    print(f"  baseline onnx.load + infer_shapes : {baseline * 1e3:9.1f} ms")
    print(f"  nvmc load {t_import * 1e3:.1f} + verify {t_verify * 1e3:.1f} + analyze {t_analyze * 1e3:.1f} "
          f"= {ours * 1e3:.1f} ms   ratio {ours / baseline:.2f}x (goal <= 3x)")
    print(f"  .nvir print {t_print * 1e3:.1f} ms, parse {t_parse * 1e3:.1f} ms; "
          f"per node {1e6 * (t_import + t_verify + t_analyze) / max(1, len(graph)):.1f} µs; "
          f"peak traced memory {peak / 2**20:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=100_000)
    args = parser.parse_args()
    bench("light_resnet50 (zoo)", ZOO / "light_resnet50.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain.onnx"
        onnx.save(chain_model(args.nodes), path)
        bench("generated chain", path)


if __name__ == "__main__":
    main()
