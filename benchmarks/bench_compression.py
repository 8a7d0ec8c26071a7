"""How quantize, prune and share-weights scale: zoo models (VGG-19: 143 M weights; DenseNet-121:
910 nodes) and generated MLPs of many layers.

    python benchmarks/bench_compression.py                 # zoo models + 1k and 4k layers
    python benchmarks/bench_compression.py --layers 8000 --no-zoo

Each pass runs with ``measure=false`` (the transform alone; measuring the error costs two
onnxruntime runs of the model on top) and one calibration draw. Printed per model and
pass: wall time, weights per second, and per layer, so growth can be judged: the work is
per weight (numpy, vectorised) plus per layer (graph edits), and should be linear in both.
Zoo models are opset 9, so quantize includes the upgrade to opset 13.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import onnx

import nvmc
from nvmc.ir import Graph, TensorType
from nvmc.passes import run_pipeline

ZOO = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
PIPELINES = ("quantize{bits=8,samples=1,measure=false}", "quantize{bits=4,activations=false,measure=false}",
             "prune{sparsity=0.8,measure=false}", 'prune{pattern="n:m",measure=false}',
             "prune{pattern=channel,sparsity=0.5,measure=false}", "share-weights{clusters=16,measure=false}")


def random_weights(graph: Graph, seed: int = 0) -> Graph:
    rng = np.random.default_rng(seed)
    for name, array in list(graph.consts.items()):
        if array.dtype == np.float32 and array.ndim >= 1:
            graph.set_const(name, rng.standard_normal(array.shape, dtype=np.float32) * np.float32(0.05))
    return graph


def generated_mlp(layers: int, width: int = 64, seed: int = 0) -> Graph:
    """x -> (MatMul -> Add bias -> Relu) x layers, width x width weights."""
    rng = np.random.default_rng(seed)
    g = Graph("mlp", {"": 17})
    act = TensorType("f32", (1, width))
    g.add_input("x", act)
    x = "x"
    for i in range(layers):
        w, b = f"w{i}", f"b{i}"
        g.add_const(w, (rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32))
        g.add_const(b, np.zeros(width, np.float32))
        g.add_node("MatMul", [x, w], [f"h{i}"], name=f"fc{i}", types=[act])
        g.add_node("Add", [f"h{i}", b], [f"a{i}"], name=f"bias{i}", types=[act])
        g.add_node("Relu", [f"a{i}"], [f"r{i}"], name=f"relu{i}", types=[act])
        x = f"r{i}"
    g.outputs = [x]
    return g


def bench(label: str, graph: Graph, pipelines=PIPELINES) -> None:
    weights = nvmc.analyze(graph).totals["params"]
    layers = sum(n.op in ("Conv", "Gemm", "MatMul", "ConvTranspose") for n in graph.nodes)
    print(f"\n{label}: {len(graph)} nodes, {layers} MAC layers, {weights / 1e6:.1f} M weights")
    for pipeline in pipelines:
        g = graph.copy()
        start = time.perf_counter()
        result = run_pipeline(g, pipeline, verify_each=False)
        seconds = time.perf_counter() - start
        stats = result.records[0].result.stats
        saved = stats.get("weight_bytes_saved", 0) / 2**20
        print(f"  {pipeline.split(',measure')[0].split(',samples')[0] + '}':42s} {seconds:7.3f} s  "
              f"{weights / seconds / 1e6:7.1f} M weights/s  {1e3 * seconds / max(layers, 1):7.3f} ms/layer  "
              f"weights -{saved:.1f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="*", default=[1000, 4000], help="generated MLP depths")
    parser.add_argument("--no-zoo", action="store_true", help="skip the zoo models")
    args = parser.parse_args()
    if not args.no_zoo:
        for name in ("light_resnet50", "light_densenet121", "light_vgg19"):
            bench(name, random_weights(nvmc.load(ZOO / f"{name}.onnx")))
    for layers in args.layers:
        bench(f"generated MLP x{layers}", generated_mlp(layers))


if __name__ == "__main__":
    main()
