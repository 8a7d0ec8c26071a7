"""How `canonicalize` scales: the ResNet-50 zoo model and generated graphs of 10k and 100k nodes.

    python benchmarks/bench_passes.py            # ResNet-50, 10k and 100k nodes
    python benchmarks/bench_passes.py --nodes 20000 --no-zoo

The generated graph repeats a 10-node block that gives every rule of canonicalize work:

    %c = Conv(%x, %w)             -> fuse-conv-bn folds the BN into it
    %b = BatchNormalization(%c, ...)
    %r = Relu(%b)                 -> fuse-activation annotates the Conv
    %a = Add(%r, %x)
    %s = Shape(%a)    %s2 = Shape(%a)      -> cse merges them; fold-constants folds the
    %n = Gather(%s, %zero)                    shape arithmetic into one constant
    %n1 = Unsqueeze(%n, %axes)
    %shape = Concat(%n1, %rest)
    %x' = Reshape(%a, %shape)

Per-node time should stay flat as the graph grows (linear total time); the script prints the
ratios of per-node times. Verification (ONNX shape inference) is timed separately.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from nvmc.ir import Graph, TensorType
from nvmc.passes import run_pipeline

BLOCK_NODES = 10


def generated_graph(nodes: int, channels: int = 4, size: int = 4, seed: int = 0) -> Graph:
    """A chain of ``nodes // 10`` blocks (see the module doc) on f32[1, channels, size, size]."""
    rng = np.random.default_rng(seed)
    g = Graph("generated", {"": 17})
    act = TensorType("f32", (1, channels, size, size))
    shape_t = TensorType("i64", (4,))
    g.add_input("x", act)
    x = "x"
    for i in range(max(1, nodes // BLOCK_NODES)):
        p = f"b{i}_"
        # Every block has its own small constants, as exporters write them (cse merges them).
        g.add_const(p + "zero", np.array([0], np.int64))  # 1-D index: Gather keeps a dimension
        g.add_const(p + "rest", np.array([channels, size, size], np.int64))
        g.add_const(p + "w", (rng.standard_normal((channels, channels, 1, 1)) / np.sqrt(channels)).astype(np.float32))
        for k, (lo, hi) in {"scale": (0.5, 1.5), "bias": (-0.1, 0.1), "mean": (-0.1, 0.1), "var": (0.5, 1.5)}.items():
            g.add_const(p + k, rng.uniform(lo, hi, channels).astype(np.float32))
        g.add_node("Conv", [x, p + "w"], [p + "c"], {"kernel_shape": [1, 1]}, types=[act])
        g.add_node("BatchNormalization", [p + "c", p + "scale", p + "bias", p + "mean", p + "var"], [p + "b"],
                   {"epsilon": 1e-5}, types=[act])
        g.add_node("Relu", [p + "b"], [p + "r"], types=[act])
        g.add_node("Add", [p + "r", x], [p + "a"], types=[act])
        g.add_node("Shape", [p + "a"], [p + "s"], types=[shape_t])
        g.add_node("Shape", [p + "a"], [p + "s2"], types=[shape_t])
        g.add_node("Gather", [p + "s", p + "zero"], [p + "n"], {"axis": 0}, types=[TensorType("i64", (1,))])
        g.add_node("Gather", [p + "s2", p + "zero"], [p + "n2"], {"axis": 0}, types=[TensorType("i64", (1,))])
        g.add_node("Concat", [p + "n", p + "rest"], [p + "shape"], {"axis": 0}, types=[shape_t])
        g.add_node("Reshape", [p + "a", p + "shape"], [p + "y"], types=[act])
        x = p + "y"
    g.outputs.append(x)
    return g


def measure(label: str, graph: Graph, pipeline: str = "canonicalize") -> float:
    nodes = len(graph)
    start = time.perf_counter()
    result = run_pipeline(graph, pipeline, verify_each=False)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    import nvmc

    nvmc.verify(graph)
    verify_seconds = time.perf_counter() - start
    per_node = seconds / nodes
    print(f"{label:>22}: {nodes:7d} nodes -> {len(graph):7d}  canonicalize {seconds:8.3f} s  "
          f"{1e6 * per_node:7.1f} us/node  (verify {verify_seconds:.2f} s)  {result.records[0].result.stats}")
    return per_node


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, nargs="*", default=[10_000, 100_000], help="sizes of generated graphs")
    ap.add_argument("--no-zoo", action="store_true", help="skip the ResNet-50 zoo model")
    args = ap.parse_args()
    per_node: dict[str, float] = {}
    if not args.no_zoo:
        import onnx

        import nvmc

        path = Path(onnx.__file__).parent / "backend/test/data/light/light_resnet50.onnx"
        per_node["resnet50"] = measure("resnet50 (zoo)", nvmc.load(path))
    for n in args.nodes:
        start = time.perf_counter()
        graph = generated_graph(n)
        print(f"{'':>22}  (built {len(graph)} nodes in {time.perf_counter() - start:.2f} s)")
        per_node[f"{n}"] = measure(f"generated {n}", graph)
    names = list(per_node)
    base = names[0]
    for name in names[1:]:
        print(f"per-node time ratio {name} / {base}: {per_node[name] / per_node[base]:.2f}")
    if len(names) > 2:
        print(f"per-node time ratio {names[-1]} / {names[-2]}: {per_node[names[-1]] / per_node[names[-2]]:.2f}")


if __name__ == "__main__":
    main()
