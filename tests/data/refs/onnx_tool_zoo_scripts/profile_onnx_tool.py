"""Profile every *.onnx in DIR with onnx-tool (onnx_tool_zoo.md, step 2).

    python profile_onnx_tool.py DIR OUT.json [CSVDIR] [--keep-going]

Runs the same sequence as ``onnx_tool.model_profile(path)``::

    m = onnx_tool.Model(path); g = m.graph
    g.graph_reorder_nodes(); g.shape_infer(None); g.profile(exclude_ops=onnx_tool.NoMacsOps)

and writes, per model: the totals ``g.macs[0]`` and ``g.params``, the per-op-type MAC sums, the
bias adds (output elements of each Conv/Gemm that has a 3rd input) and one record per node
(``node.macs[0]``, ``node.params``, output shapes; nodes in NoMacsOps carry shapes only). With
CSVDIR it also writes onnx-tool's own CSV, ``g.print_node_map(CSVDIR/<model>.csv,
exclude_ops=NoMacsOps)``, and checks that its "Total" row equals ``g.macs[0]``.

print_node_map and Graph.profile walk a Python set of node names, so the CSV row order follows
the string hash seed: the script re-runs itself with PYTHONHASHSEED=0 to make it repeatable.
With --keep-going a model that onnx-tool cannot profile is recorded as {"error": "..."} instead
of stopping the run (peer_compare.py uses this: onnx-tool 1.0.1 has no GlobalMaxPool, say).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from pathlib import Path

if os.environ.get("PYTHONHASHSEED") != "0":  # before anything hashes a node name
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])

import numpy as np
import onnx
import onnx_tool

MAC_OPS = ("Conv", "Gemm", "MatMul")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def as_int(x) -> int:
    v = float(x)
    assert v == round(v), x
    return round(v)


def profile(path: Path, csv_path: Path | None) -> dict:
    m = onnx_tool.Model(str(path))
    g = m.graph
    g.graph_reorder_nodes()
    g.shape_infer(None)
    g.profile(exclude_ops=onnx_tool.NoMacsOps)
    assert g.valid_profile
    nodes, per_op, bias_adds = [], {}, 0
    for name, node in g.nodemap.items():  # topological order after graph_reorder_nodes()
        rec = {
            "name": name,
            "op": node.op_type,
            "outputs": list(node.output),
            "output_shapes": [[int(d) for d in g.tensormap[o].get_shape()] for o in node.output],
        }
        if node.op_type in onnx_tool.NoMacsOps:
            rec["hidden"] = True
        else:
            rec["macs"] = as_int(node.macs[0])
            assert as_int(node.macs[1]) == 0, (name, node.macs)
            rec["params"] = int(node.params)
            per_op[node.op_type] = per_op.get(node.op_type, 0) + rec["macs"]
            if node.op_type in ("Conv", "Gemm") and len(node.input) >= 3:
                rec["bias_adds"] = int(np.prod(rec["output_shapes"][0], dtype=np.int64))
                bias_adds += rec["bias_adds"]
        nodes.append(rec)
    total = as_int(g.macs[0])
    assert total == sum(per_op.values()), (total, per_op)
    proto = onnx.load(str(path), load_external_data=False)
    out = {
        "sha256": sha256(path),
        "total_macs": total,
        "params": int(g.params),
        "bias_adds": bias_adds,
        "mac_ops_macs": sum(per_op.get(op, 0) for op in MAC_OPS),
        "per_op_type_macs": dict(sorted(per_op.items())),
        "initializer_elements": int(sum(int(np.prod(t.dims, dtype=np.int64)) for t in proto.graph.initializer)),
        "nodes": nodes,
    }
    if csv_path is not None:
        g.print_node_map(str(csv_path), exclude_ops=onnx_tool.NoMacsOps)
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
        assert rows[-1]["Name"] == "Total" and int(rows[-1]["Forward_MACs"]) == total, rows[-1]
        assert int(rows[-1]["Params"]) == out["params"], rows[-1]
    return out


def main(argv: list[str]) -> None:
    keep_going = "--keep-going" in argv
    argv = [a for a in argv if a != "--keep-going"]
    if len(argv) not in (2, 3):
        sys.exit(__doc__)
    src, out_json = Path(argv[0]), Path(argv[1])
    csv_dir = Path(argv[2]) if len(argv) == 3 else None
    if csv_dir is not None:
        csv_dir.mkdir(parents=True, exist_ok=True)
    models = {}
    for p in sorted(src.glob("*.onnx")):
        try:
            models[p.stem] = profile(p, csv_dir / f"{p.stem}.csv" if csv_dir is not None else None)
        except Exception as e:  # recorded, only with --keep-going
            if not keep_going:
                raise
            models[p.stem] = {"error": f"{type(e).__name__}: {e}"}
            print(f"{p.stem}: onnx-tool failed: {models[p.stem]['error']}", flush=True)
            continue
        print(f"{p.stem}: onnx-tool total {models[p.stem]['total_macs']:,} MACs, params {models[p.stem]['params']:,}",
              flush=True)
    out_json.write_text(json.dumps({"onnx_tool_version": onnx_tool.VERSION, "models": models}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
