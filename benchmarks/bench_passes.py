"""How `canonicalize` scales: the ResNet-50 zoo model and generated graphs of 10k and 100k nodes.

    python benchmarks/bench_passes.py            # ResNet-50, 10k and 100k nodes
    python benchmarks/bench_passes.py --nodes 20000 --no-zoo

The generated graph (nvmc.validate.nets.canonicalize_chain, whose docstring draws it) repeats a
10-node block that gives every rule of canonicalize work.

Per-node time should stay flat as the graph grows (linear total time); the script prints the
ratios of per-node times. Verification (ONNX shape inference) is timed separately.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nvmc.ir import Graph
from nvmc.passes import run_pipeline
from nvmc.validate.nets import canonicalize_chain

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
        graph = canonicalize_chain(n)
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
