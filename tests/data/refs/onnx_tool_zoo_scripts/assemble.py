"""Check the three runs against each other and write the reference files (onnx_tool_zoo.md, step 4).

    python assemble.py WORKDIR [--date YYYY-MM-DD] [--check COMMITTED.json]

Reads WORKDIR/profile_original.json and WORKDIR/profile_folded.json (profile_onnx_tool.py on the
original and on the folded models) and WORKDIR/pure.json (pure_macs.py), asserts

  (a) onnx-tool's total, and every node's MACs, are the same on the folded and original files;
  (b) per model and per node, onnx-tool's Conv+Gemm+MatMul MACs - bias adds == the pure count;
  (c) every onnx-tool output shape (both runs) equals the one from onnx shape inference (where
      onnx gives one: it leaves the unused mask output of opset-9 Dropout untyped),

and writes WORKDIR/onnx_tool_zoo.json (the file tests/test_workload.py reads) and
WORKDIR/onnx_tool_zoo_nodes.json (one row per node that onnx-tool profiles). With --check it
compares the new onnx_tool_zoo.json with COMMITTED field by field, "date" excepted, prints
every difference and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import platform
import sys
from pathlib import Path

MODELS_SOURCE = (
    "onnx wheel: onnx/backend/test/data/light/light_*.onnx (ConstantOfShape weights folded to "
    "initializers for onnx-tool; MACs identical with and without folding)"
)
METHOD = (
    "onnx_tool.Model(path) -> graph.graph_reorder_nodes() -> graph.shape_infer(None) -> "
    "graph.profile(exclude_ops=onnx_tool.NoMacsOps), same sequence as onnx_tool.model_profile(); "
    "see onnx_tool_zoo.md"
)
CONVENTIONS = {
    'source': (
        'onnx_tool/node.py (per-op profile()), onnx_tool/graph.py Graph.profile(), '
        'onnx_tool/__init__.py model_profile()/NoMacsOps; onnx-tool 1.0.1'
    ),
    'unit': (
        "onnx-tool 'MACs' = count of x86-ish instructions; MUL=ADD=CMP=1, DIV=4, EXP=32, SQRT=24, "
        'LOG=43 (constants at top of node.py). A Conv/Gemm multiply-accumulate counts 1.'
    ),
    'Conv': (
        'ConvNode.profile: out_elems * prod(W.shape[1:]) (= N*Cout*Hout*Wout*(Cin/group)*kh*kw) * '
        'MUL_MACS, PLUS out_elems * ADD_MACS when a bias input is present (3 inputs). I.e. bias = '
        '+1 per output element.'
    ),
    'Gemm': (
        'GemmNode.profile: out_elems(M*N) * K (K = W.shape[-1] if transB else W.shape[-2]), PLUS '
        "M*N * ADD_MACS when input C is present (bias = +1 per output element, regardless of C's "
        'broadcast shape).'
    ),
    'MatMul': (
        'MatMulNode(GemmNode): out_elems * B.shape[-2] (= batch*M*N*K), no bias.'
    ),
    'BatchNormalization': (
        'BatchNormalizationNode.profile: out_elems * (ADD+SQRT+DIV+ADD+MUL) = 31 per element (not '
        'folded into Conv).'
    ),
    'Relu': (
        'ReluNode(PWNode): 1 (CMP) per output element.'
    ),
    'Add/Sub/Mul/Max': (
        'NpMathBase: out_elems * (n_inputs-1) * op_mac; Add/Sub/Mul/Max = 1, Div = 4.'
    ),
    'Sum': (
        'SumNode(PWNode): out_elems * (n_inputs-1) * 1.'
    ),
    'MaxPool/AveragePool': (
        "PoolBase.profile: out_elems * kh * kw * CMP_MACS(=1) for both (AveragePool's op_mac=ADD is "
        'unused but equal to 1); no divide counted.'
    ),
    'GlobalAveragePool': (
        'GlobalAveragePoolNode.profile: in_elems * ADD + out_elems * DIV = in_elems + 4*out_elems.'
    ),
    'LRN': (
        'LRNNode.profile: out_elems * (DIV + EXP + ADD + size*MUL) = (37+size) per element (42 for '
        'size=5).'
    ),
    'Softmax': (
        'SoftmaxNode: out_elems * (EXP + DIV) = 36 per element.'
    ),
    'zero': (
        'Dropout, Identity, Erf, Floor, Trilu (FusedBase) = 0; Transpose, Flatten and any op '
        'without profile() = 0 (Node.profile returns [0,0]).'
    ),
    'hidden': (
        'model_profile() passes exclude_ops=NoMacsOps = {Identity, Constant, Shape, Squeeze, '
        'Unsqueeze, Reshape, ConstantOfShape, Cast, Pad, Concat, Slice, Gather}: these nodes are '
        'skipped entirely (0 MACs and their initializer inputs are NOT counted as params).'
    ),
    'params': (
        'Graph.profile: sum of elements of every initializer consumed by a non-hidden node, each '
        'counted once. Includes BN mean/var. Excludes initializers feeding hidden ops (e.g. '
        "inception_v1's classifier weight goes through a Reshape and is not counted; "
        'densenet121/inception_v2 bn_w/bn_b go through Unsqueeze). Only meaningful after '
        'ConstantOfShape folding (otherwise weights are not initializers).'
    ),
    'backward': (
        'node.macs is [forward, backward]; backward is 0 for all ops here; only forward is '
        'reported.'
    ),
}

NODE_COLUMNS = ["name", "op", "output", "output_shape", "macs_onnx_tool", "bias_adds", "pure_macs", "params_onnx_tool"]


def by_output(nodes: list[dict]) -> dict[str, dict]:
    return {n["outputs"][0]: n for n in nodes}


def check_model(name: str, orig: dict, fold: dict, pure: dict) -> list[list]:
    # (a) folding changes no MAC count
    assert orig["total_macs"] == fold["total_macs"], (name, orig["total_macs"], fold["total_macs"])
    assert orig["per_op_type_macs"] == fold["per_op_type_macs"], name
    assert orig["bias_adds"] == fold["bias_adds"], name
    o_nodes, p_nodes = by_output(orig["nodes"]), by_output(pure["nodes"])
    rows = []
    for n in fold["nodes"]:
        out = n["outputs"][0]
        o, p = o_nodes[out], p_nodes[out]
        # (c) onnx-tool's shapes == onnx shape inference's, on both files, for every output that
        # onnx types (it leaves opset-9 Dropout's unused mask output untyped)
        assert n["output_shapes"] == o["output_shapes"], (name, out)
        for t, mine, theirs in zip(n["outputs"], n["output_shapes"], p["output_shapes"]):
            assert mine == theirs or (theirs is None and n["op"] == "Dropout" and t != out), (name, t, mine, theirs)
        if n.get("hidden"):
            continue
        assert o["macs"] == n["macs"], (name, out, o["macs"], n["macs"])
        bias = n.get("bias_adds", 0)
        if "macs" in p:  # (b) per node
            assert n["macs"] - bias == p["macs"], (name, out, n["macs"], bias, p["macs"])
        else:
            assert n["op"] not in ("Conv", "Gemm", "MatMul") and bias == 0, (name, out)
        rows.append([n["name"], n["op"], out, n["output_shapes"][0], n["macs"], bias, p.get("macs"), n["params"]])
    for n in orig["nodes"]:  # the ConstantOfShape nodes that folding removed
        if n["outputs"][0] not in by_output(fold["nodes"]):
            assert n["op"] == "ConstantOfShape" and n["output_shapes"] == p_nodes[n["outputs"][0]]["output_shapes"]
    # (b) per model
    assert fold["mac_ops_macs"] - fold["bias_adds"] == pure["macs"], (name, fold["mac_ops_macs"], pure["macs"])
    return rows


def nodes_json(models: dict) -> str:
    parts = ['{\n "columns": ' + json.dumps(NODE_COLUMNS) + ',\n "models": {']
    for i, (name, m) in enumerate(models.items()):
        rows = ",\n".join("    " + json.dumps(r) for r in m["rows"])
        parts.append(f'  "{name}": {{\n'
                     f'   "sha256_original_model": "{m["sha256_original_model"]}",\n'
                     f'   "initializer_elements_after_folding": {m["initializer_elements_after_folding"]},\n'
                     f'   "params_onnx_tool_unfolded": {m["params_onnx_tool_unfolded"]},\n'
                     f'   "nodes": [\n{rows}\n   ]\n  }}' + ("," if i < len(models) - 1 else ""))
    parts.append(" }\n}\n")
    return "\n".join(parts)


def diff(new, old, path="") -> list[str]:
    if isinstance(new, dict) and isinstance(old, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            if path == "" and k == "date":
                continue
            if k not in new:
                out.append(f"{path}/{k}: missing in the new file (committed: {old[k]!r})")
            elif k not in old:
                out.append(f"{path}/{k}: not in the committed file (new: {new[k]!r})")
            else:
                out += diff(new[k], old[k], f"{path}/{k}")
        return out
    if new != old or type(new) is not type(old):
        return [f"{path}: new {new!r} != committed {old!r}"]
    return []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workdir", type=Path)
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--check", type=Path)
    args = ap.parse_args()
    w = args.workdir
    orig = json.loads((w / "profile_original.json").read_text())["models"]
    fold = json.loads((w / "profile_folded.json").read_text())["models"]
    pure = json.loads((w / "pure.json").read_text())["models"]
    assert sorted(orig) == sorted(fold) == sorted(pure) and orig, (sorted(orig), sorted(fold), sorted(pure))
    models, node_models = {}, {}
    for name in sorted(orig):
        rows = check_model(name, orig[name], fold[name], pure[name])
        f = fold[name]
        non_mac = f["total_macs"] - f["mac_ops_macs"]
        assert f["total_macs"] == pure[name]["macs"] + f["bias_adds"] + non_mac
        models[name] = {
            "sha256_original_model": orig[name]["sha256"],
            "total_macs_onnx_tool": f["total_macs"],
            "conv_gemm_matmul_macs_no_bias": pure[name]["macs"],
            "bias_adds": f["bias_adds"],
            "non_mac_ops_macs_onnx_tool": non_mac,
            "params": f["params"],
            "per_op_type_macs_onnx_tool": f["per_op_type_macs"],
        }
        node_models[name] = {
            "sha256_original_model": orig[name]["sha256"],
            "initializer_elements_after_folding": f["initializer_elements"],
            "params_onnx_tool_unfolded": orig[name]["params"],
            "rows": rows,
        }
        print(f"{name}: checks (a) (b) (c) pass; total {f['total_macs']:,} = pure {pure[name]['macs']:,} "
              f"+ bias {f['bias_adds']:,} + non-MAC {non_mac:,}; params {f['params']:,}")
    ref = {
        "tool": "onnx-tool",
        "version": importlib.metadata.version("onnx-tool"),
        "onnx_version": importlib.metadata.version("onnx"),
        "numpy_version": importlib.metadata.version("numpy"),
        "python_version": platform.python_version(),
        "date": args.date,
        "models_source": MODELS_SOURCE,
        "method": METHOD,
        "conventions": CONVENTIONS,
        "models": models,
    }
    (w / "onnx_tool_zoo.json").write_text(json.dumps(ref, indent=1))  # no final newline, like the committed file
    (w / "onnx_tool_zoo_nodes.json").write_text(nodes_json(node_models))
    print(f"wrote {w / 'onnx_tool_zoo.json'} and {w / 'onnx_tool_zoo_nodes.json'}")
    if args.check:
        problems = diff(ref, json.loads(args.check.read_text()))
        for p in problems:
            print("DIFF", p)
        if problems:
            sys.exit(f"{len(problems)} field(s) differ from {args.check}")
        print(f"every field equals {args.check} (date aside)")


if __name__ == "__main__":
    main()
