"""Compare nvmc's MACs with onnx-tool's on the peer models (onnx_tool_zoo.md, "Peer check").

    python peer_compare.py WORKDIR OUT.json      # standard library only

Reads what peer_models.py (nvmc/<name>.json), profile_onnx_tool.py (onnx_tool_original.json
on models/, onnx_tool_folded.json on folded/) and pure_macs.py (pure.json) wrote in WORKDIR and
writes, per model: the three MAC counts (nvmc, onnx-tool's Conv+Gemm+MatMul less its bias adds,
the pure count), the bias adds of both tools, both tools' params, and one row per op type with
onnx-tool's instruction count next to nvmc's MACs and non-MAC counts. ``nvmc_in_onnx_tool_units``
weighs nvmc's counts with onnx-tool's constants (MAC, add, mul, cmp = 1, div = 4, exp = 32,
sqrt = 24, log = 43, pow = 32, tanh = 38; erf and other are left out: onnx-tool counts Erf as 0).
Conv/Gemm/MatMul nodes are also matched one by one by node name.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

MAC_OPS = ("Conv", "Gemm", "MatMul")
WEIGHTS = {"add": 1, "mul": 1, "cmp": 1, "div": 4, "exp": 32, "sqrt": 24, "log": 43, "pow": 32, "tanh": 38}


def new_row() -> dict:
    return {"onnx_tool_nodes": 0, "nvmc_nodes": 0, "onnx_tool": 0, "onnx_tool_hidden": False, "nvmc_macs": 0,
            "nvmc_nonmac": {}}


def compare(name: str, work: Path, ot_orig: dict, ot_fold: dict, pure: dict) -> dict:
    nv = json.loads((work / "nvmc" / f"{name}.json").read_text())
    model = work / "models" / f"{name}.onnx"
    out = {"sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
           "nvmc": {"macs": nv["totals"]["macs"], "params": nv["totals"]["params"],
                    "bias_adds": sum(n["nonmac_ops"].get("add", 0) for n in nv["nodes"] if n["op"] in ("Conv", "Gemm"))},
           "pure_macs": pure[name]["macs"] if name in pure else None}
    if "error" in ot_fold:
        out["onnx_tool"] = {"error": ot_fold["error"]}
        out["agree"] = None
        return out
    assert ot_orig["total_macs"] == ot_fold["total_macs"], name
    out["onnx_tool"] = {
        "total_macs": ot_fold["total_macs"],
        "mac_ops_macs": ot_fold["mac_ops_macs"],
        "bias_adds": ot_fold["bias_adds"],
        "mac_ops_macs_less_bias": ot_fold["mac_ops_macs"] - ot_fold["bias_adds"],
        "params": ot_fold["params"],
        "params_before_folding": ot_orig["params"],
    }
    ops: dict[str, dict] = {}
    for n in nv["nodes"]:
        row = ops.setdefault(n["op"], new_row())
        row["nvmc_nodes"] += 1
        row["nvmc_macs"] += n["macs"]
        for k, v in n["nonmac_ops"].items():
            row["nvmc_nonmac"][k] = row["nvmc_nonmac"].get(k, 0) + v
    for n in ot_fold["nodes"]:
        row = ops.setdefault(n["op"], new_row())
        row["onnx_tool_nodes"] += 1
        if n.get("hidden"):
            row["onnx_tool_hidden"] = True
        else:
            row["onnx_tool"] += n["macs"]
    for row in ops.values():
        row["nvmc_in_onnx_tool_units"] = row["nvmc_macs"] + sum(WEIGHTS.get(k, 0) * v for k, v in row["nvmc_nonmac"].items())
        row["difference"] = row["onnx_tool"] - row["nvmc_in_onnx_tool_units"]
        row["nvmc_nonmac"] = dict(sorted(row["nvmc_nonmac"].items()))
    out["per_op_type"] = dict(sorted(ops.items()))
    # Conv/Gemm/MatMul node by node, by name
    nv_nodes = {n["name"]: n for n in nv["nodes"] if n["op"] in MAC_OPS}
    matched = mismatched = 0
    for n in ot_fold["nodes"]:
        if n["op"] not in MAC_OPS:
            continue
        m = nv_nodes.get(n["name"])
        if m is None:
            continue
        matched += 1
        if n["macs"] - n.get("bias_adds", 0) != m["macs"] or n.get("bias_adds", 0) != (
                m["nonmac_ops"].get("add", 0) if n["op"] != "MatMul" else 0):
            mismatched += 1
    out["mac_nodes_matched_by_name"] = matched
    out["mac_nodes_total"] = sum(1 for n in nv["nodes"] if n["op"] in MAC_OPS)
    out["mac_nodes_differing"] = mismatched
    out["agree"] = (out["nvmc"]["macs"] == out["onnx_tool"]["mac_ops_macs_less_bias"] == out["pure_macs"]
                    and out["nvmc"]["bias_adds"] == out["onnx_tool"]["bias_adds"] and mismatched == 0)
    return out


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit(__doc__)
    work, dest = Path(argv[0]), Path(argv[1])
    ot_orig = json.loads((work / "onnx_tool_original.json").read_text())["models"]
    ot_fold = json.loads((work / "onnx_tool_folded.json").read_text())["models"]
    pure = json.loads((work / "pure.json").read_text())["models"]
    result = {}
    for p in sorted((work / "nvmc").glob("*.json")):
        name = p.stem
        r = compare(name, work, ot_orig[name], ot_fold[name], pure)
        result[name] = r
        ot = r["onnx_tool"]
        if "error" in ot:
            print(f"{name}: onnx-tool cannot profile it ({ot['error']}); nvmc {r['nvmc']['macs']:,}, pure {r['pure_macs']:,}")
            continue
        print(f"{name}: nvmc {r['nvmc']['macs']:,} | onnx-tool MAC ops - bias {ot['mac_ops_macs_less_bias']:,} | "
              f"pure {r['pure_macs']:,} | bias nvmc {r['nvmc']['bias_adds']:,} onnx-tool {ot['bias_adds']:,} | "
              f"agree: {r['agree']}")
        for op, row in r["per_op_type"].items():
            if row["difference"]:
                print(f"   {op:20s} onnx-tool {row['onnx_tool']:>12,}  nvmc {row['nvmc_in_onnx_tool_units']:>12,} "
                      f"(MACs {row['nvmc_macs']:,}, {row['nvmc_nonmac']})  hidden={row['onnx_tool_hidden']}")
    dest.write_text(json.dumps({"tool": "onnx-tool", "weights": WEIGHTS, "models": result}, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
