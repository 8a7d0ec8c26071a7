#!/usr/bin/env python3
"""nvmc's side of the ZigZag comparison (tests/data/refs/zigzag/README.md).

Run with the nvmc environment, from anywhere:

    python nvmc_side.py specs      # inputs/: ZigZag accelerator, workloads, mappings (from nvmc's resolved target)
    python nvmc_side.py compare    # nvmc on the same layers + zigzag_raw.json -> zigzag_refs.json, README table

``specs`` derives every number of the ZigZag accelerator from nvmc's resolved
``systolic-sram-28nm`` target (``nvmc.backends.systolic.resolve``), so the two tools cost the
same hardware. ``compare`` builds one int8 QDQ ONNX per model (in a temporary folder: the
random int8 weights are not committed), estimates it with nvmc, reads ``zigzag_raw.json``
(written by ``run_zigzag.py`` in the ZigZag venv) and writes ``zigzag_refs.json`` and the
tables between the ``<!-- generated:... -->`` markers of README.md.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import re
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "inputs"
TARGET = "systolic-sram-28nm"
# nvmc settings that make it cost one layer the way ZigZag does (README, "What was made equivalent"):
# every layer reads its inputs from DRAM and writes its output there, and fetches its weights
# from DRAM (no residency across inferences: SRAM is gated between inferences).
NVMC_SETS = {"buffers.activations": "dram", "buffers.power_gating": "idle-sram", "operation.inferences_per_s": 1.0}
BITS = {"W": 8, "I": 8, "O": 32, "O_final": 8}       # int8 operands, 32-bit partial sums (nvmc psum_bytes = 4)
ACCEL_FILE = INPUTS / "accelerator_systolic_sram_28nm.yaml"
MODELS = ("resnet18", "bert_base_layer")


# ------------------------------------------------------------------ the layers
def conv(name, c, k, size, kernel, stride, pad):
    out = (size + 2 * pad - kernel) // stride + 1
    return {"name": name, "op": "Conv", "C": c, "K": k, "IX": size, "IY": size, "FX": kernel, "FY": kernel,
            "stride": stride, "pad": pad, "OX": out, "OY": out,
            "gemm": {"batch": 1, "M": out * out, "N": k, "K": c * kernel * kernel}}


def gemm(name, m, k, n, *, batch=1, weights=True, op="MatMul"):
    return {"name": name, "op": op, "weights": weights, "gemm": {"batch": batch, "M": m, "N": n, "K": k}}


def resnet18() -> list[dict]:
    """torchvision ResNet-18 at 224x224, batch 1 (BN folded): the 20 convolutions and the FC layer,
    in the order of ZigZag's shipped inputs/workload/resnet18.onnx (run_zigzag.py checks the shapes)."""
    layers = [conv("conv1", 3, 64, 224, 7, 2, 3)]
    cin, size = 64, 56
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for blk in range(2):
            stride = 2 if stage > 1 and blk == 0 else 1
            first_in = cin if blk == 0 else cout
            c1 = conv(f"layer{stage}.{blk}.conv1", first_in, cout, size, 3, stride, 1)
            layers += [c1, conv(f"layer{stage}.{blk}.conv2", cout, cout, c1["OX"], 3, 1, 1)]
            if stride == 2:
                layers.append(conv(f"layer{stage}.{blk}.downsample", first_in, cout, size, 1, 2, 0))
            size = c1["OX"]
        cin = cout
    layers.append(gemm("fc", 1, 512, 1000, op="Gemm"))
    return layers


def bert_base_layer(seq=128, hidden=768, heads=12, ffn=3072) -> list[dict]:
    """The MAC layers of one BERT-base encoder layer at sequence length 128, batch 1. Softmax,
    LayerNorm, GELU and the residual adds are not MAC layers (ZigZag does not cost them)."""
    d = hidden // heads
    return [gemm("q_proj", seq, hidden, hidden), gemm("k_proj", seq, hidden, hidden),
            gemm("v_proj", seq, hidden, hidden),
            gemm("attn_qk", seq, d, seq, batch=heads, weights=False),
            gemm("attn_av", seq, seq, d, batch=heads, weights=False),
            gemm("o_proj", seq, hidden, hidden), gemm("ffn1", seq, hidden, ffn), gemm("ffn2", seq, ffn, hidden)]


def model_layers(model: str) -> list[dict]:
    return {"resnet18": resnet18, "bert_base_layer": bert_base_layer}[model]()


# ------------------------------------------------------------------ ZigZag specs
def resolved():
    from types import SimpleNamespace

    from nvmc.api import _target_with
    from nvmc.backends import systolic
    target = _target_with(TARGET, NVMC_SETS)
    p = systolic.SPEC.params(target)
    chip = systolic.resolve(p)
    return target, SimpleNamespace(**vars(chip), clock_hz=p["array.clock_hz"],
                                   dram_bandwidth=p["dram.bandwidth_bytes_per_s"],
                                   dram_energy_per_bit=chip.dram_energy_per_bit_j)


def _port(name, kind, bw_min, bw_max, alloc):
    return {"name": name, "type": kind, "bandwidth_min": bw_min, "bandwidth_max": bw_max, "allocation": alloc}


def accelerator_spec(cfg) -> tuple[dict, dict]:
    """The ZigZag accelerator equivalent to nvmc's resolved systolic config, and how each number was derived."""
    int8 = 1                                                     # PRECISIONS index of int8
    reg_bits = BITS["I"] + BITS["W"]                             # os: activation + weight move between PEs per MAC
    unit_pj = (cfg.mac_energy_j[int8] + reg_bits * cfg.register_energy_j_per_bit) * 1e12
    dram_bits = round(cfg.dram_bandwidth * 8 / cfg.clock_hz)    # bits per cycle (ZigZag wants an integer)
    dram_pj = cfg.dram_energy_per_bit * dram_bits * 1e12         # one access moves bandwidth_max bits
    psum_bits = int(cfg.psum_bytes * 8)
    memories = {
        "o_reg": {"size": psum_bits, "r_cost": 0.0, "w_cost": 0.0, "area": 0.0, "latency": 1, "operands": ["O"],
                  "ports": [_port("r_port_1", "read", psum_bits, psum_bits, ["O, tl"]),
                            _port("r_port_2", "read", psum_bits, psum_bits, ["O, th"]),
                            _port("w_port_1", "write", psum_bits, psum_bits, ["O, fh"]),
                            _port("w_port_2", "write", psum_bits, psum_bits, ["O, fl"])],
                  "served_dimensions": []},
    }
    derivation = {
        "operational_array.unit_energy": (
            f"nvmc int8 MAC {cfg.mac_energy_j[int8] * 1e12:.6g} pJ + PE registers {reg_bits} bit x "
            f"{cfg.register_energy_j_per_bit * 1e12:.6g} pJ/bit (os moves activation + weight per MAC) = both nvmc "
            "per-MAC components"),
        "o_reg": "the output-stationary accumulator in each PE (served_dimensions []), 32-bit partial sums "
                 "(nvmc psum_bytes = 4); energy 0 because nvmc's int8 MAC energy already holds the 32-bit add",
    }
    for role, operand in (("ifmap", "I1"), ("filter", "I2"), ("ofmap", "O")):
        b = cfg.buffers[role]
        width = b.word_bytes * 8 * b.banks                       # all banks together: one ZigZag access
        rd = ["O, tl", "O, th"] if operand == "O" else [f"{operand}, tl"]
        wr = ["O, fh", "O, fl"] if operand == "O" else [f"{operand}, fh"]
        memories[f"{role}_buffer"] = {
            "size": b.capacity * 8, "r_cost": round(float(b.read_energy_j) * b.banks * 1e12, 6),
            "w_cost": round(float(b.write_energy_j) * b.banks * 1e12, 6), "area": 0.0, "latency": 1,
            "operands": [operand],
            "ports": [_port("r_port_1", "read", 8, width, rd), _port("w_port_1", "write", 8, width, wr)],
            "served_dimensions": ["D1", "D2"]}
        derivation[f"{role}_buffer"] = (
            f"{b.capacity} B {b.technology}; {b.banks} banks x {b.word_bytes * 8}-bit words = {width} bit/cycle "
            f"(bandwidth_max); r/w_cost = {b.banks} x nvmc's {b.read_energy_j * 1e12:.6g} / "
            f"{b.write_energy_j * 1e12:.6g} pJ per word; bandwidth_min 8 bit so that partial words cost their "
            "fraction, as nvmc's bytes / word_bytes")
    memories["dram"] = {
        "size": 10_000_000_000, "r_cost": round(float(dram_pj), 6), "w_cost": round(float(dram_pj), 6), "area": 0.0,
        "latency": 1, "operands": ["I1", "I2", "O"],
        "ports": [_port("rw_port_1", "read_write", 8, dram_bits,
                        ["I1, fh", "I1, tl", "I2, fh", "I2, tl", "O, fh", "O, tl", "O, fl", "O, th"])],
        "served_dimensions": ["D1", "D2"]}
    derivation["dram"] = (f"{cfg.dram_bandwidth / 1e9:g} GB/s at {cfg.clock_hz / 1e6:g} MHz = "
                          f"{cfg.dram_bandwidth * 8 / cfg.clock_hz:g} bit/cycle, rounded to {dram_bits}; "
                          f"{cfg.dram_energy_per_bit * 1e12:g} pJ/bit x {dram_bits} bit per access")
    spec = {"name": "nvmc_systolic_sram_28nm", "memories": memories,
            "operational_array": {"unit_energy": round(float(unit_pj), 9), "unit_area": 1.0, "dimensions": ["D1", "D2"],
                                  "sizes": [cfg.rows, cfg.cols], "systolic_dimensions": ["D1", "D2"]}}
    return spec, derivation


def zigzag_layer(i: int, L: dict) -> dict:
    prec = dict(BITS)
    if L["op"] == "Conv":
        s = L["stride"]
        return {"id": i, "name": L["name"], "operator_type": "Conv",
                "equation": "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]",
                "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
                "loop_dims": ["B", "K", "C", "OY", "OX", "FY", "FX"],
                "loop_sizes": [1, L["K"], L["C"], L["OY"], L["OX"], L["FY"], L["FX"]],
                "operand_precision": prec, "operand_source": {"W": i, "I": i},
                "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [L["IX"], L["IY"]],
                "padding": [[L["pad"], L["pad"]], [L["pad"], L["pad"]]]}
    g = L["gemm"]
    # ZigZag's GEMM names (its ONNX parser): O[d][k] += I[d][c] * W[c][k]: D = M, C = K, K = N
    if g["batch"] > 1:
        eq, dims = "O[h][d][k]+=I[h][d][c]*W[h][c][k]", ["H", "D", "C", "K"]
        sizes = [g["batch"], g["M"], g["K"], g["N"]]
    else:
        eq, dims, sizes = "O[d][k]+=I[d][c]*W[c][k]", ["D", "C", "K"], [g["M"], g["K"], g["N"]]
    return {"id": i, "name": L["name"], "operator_type": "Gemm", "equation": eq, "loop_dims": dims,
            "loop_sizes": sizes, "operand_precision": prec, "operand_source": {"W": i, "I": i}}


def os_unroll(L: dict, rows: int, cols: int) -> dict:
    """nvmc's os dataflow in ZigZag terms: output pixels (GEMM M) on the rows (D1), output channels
    (GEMM N) on the columns (D2), the reduction in time with the partial sum held in the PE. nvmc
    flattens a conv's OY x OX into M; ZigZag unrolls layer dimensions, so D1 takes the OX x OY
    rectangle of at most `rows` pixels that needs the fewest steps."""
    if L["op"] == "Conv":
        best = None
        for a in range(1, min(rows, L["OX"]) + 1):
            for b in range(1, min(rows // a, L["OY"]) + 1):
                key = (math.ceil(L["OX"] / a) * math.ceil(L["OY"] / b), b > 1, -a)
                if best is None or key < best[0]:
                    best = (key, a, b)
        _, a, b = best
        d1 = [f"OX, {a}"] + ([f"OY, {b}"] if b > 1 else [])
        return {"D1": d1, "D2": [f"K, {min(cols, L['K'])}"]}
    g = L["gemm"]
    return {"D1": [f"D, {min(rows, g['M'])}"], "D2": [f"K, {min(cols, g['N'])}"]}


def _yaml(data) -> str:
    import yaml  # PyYAML: in nvmc's environment (and ZigZag's)

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data):  # no &id001 anchors: every mapping entry written out
            return True
    return yaml.dump(data, Dumper=Dumper, sort_keys=False, width=120, default_flow_style=None)


def write_specs() -> None:
    _, cfg = resolved()
    INPUTS.mkdir(exist_ok=True)
    spec, derivation = accelerator_spec(cfg)
    header = ("# ZigZag accelerator equivalent to nvmc's systolic-sram-28nm target, generated by nvmc_side.py specs\n"
              "# from nvmc's resolved parameters (sizes in bits, costs in pJ per access of bandwidth_max bits).\n"
              + "".join(f"# {k}: {v}\n" for k, v in derivation.items()))
    ACCEL_FILE.write_text(header + _yaml(spec))
    links = {"O": "O", "W": "I2", "I": "I1"}
    for model in MODELS:
        layers = model_layers(model)
        wl = [zigzag_layer(i, L) for i, L in enumerate(layers)]
        (INPUTS / f"workload_{model}.yaml").write_text(
            f"# {model}: the MAC layers as ZigZag layers (int8 W/I, 32-bit partial sums, int8 outputs); "
            "generated by nvmc_side.py specs\n" + _yaml(wl))
        mapping = [{"name": L["name"], "spatial_mapping": os_unroll(L, cfg.rows, cfg.cols),
                    "memory_operand_links": links} for L in layers]
        mapping.append({"name": "default", "spatial_mapping": {"D1": ["D, 16"], "D2": ["K, 16"]},
                        "memory_operand_links": links})
        (INPUTS / f"mapping_os_{model}.yaml").write_text(
            "# nvmc's os dataflow, pinned per layer: output pixels / GEMM rows on D1, output channels on D2\n"
            + _yaml(mapping))
    (INPUTS / "mapping_free.yaml").write_text(
        "# no spatial mapping: ZigZag chooses the spatial unrolling itself (its spatial mapping search)\n"
        + _yaml([{"name": "default", "memory_operand_links": links}]))
    print(f"wrote {', '.join(sorted(p.name for p in INPUTS.iterdir()))}")


# ------------------------------------------------------------------ nvmc's estimate
def build_onnx(model: str, path: Path) -> None:
    """One graph of independent int8 QDQ layers: input -> QuantizeLinear/DequantizeLinear -> MAC
    (int8 weight through DequantizeLinear) -> QuantizeLinear/DequantizeLinear -> output, so that
    nvmc costs int8 operands and an int8 output, as the ZigZag workload says."""
    import onnx
    from onnx import TensorProto as TP, helper as h, numpy_helper as nh
    rng = np.random.default_rng(0)
    nodes, inits, inputs, outputs = [], [], [], []

    def scalar(name, value, dtype):
        inits.append(nh.from_array(np.array(value, dtype), name))
        return name

    def qdq(x, tag):
        s, z = scalar(f"{tag}.s", 0.05, np.float32), scalar(f"{tag}.z", 0, np.int8)
        nodes.extend([h.make_node("QuantizeLinear", [x, s, z], [f"{tag}.q"], name=f"{tag}.Q"),
                      h.make_node("DequantizeLinear", [f"{tag}.q", s, z], [f"{tag}.dq"], name=f"{tag}.DQ")])
        return f"{tag}.dq"

    def weight(name, shape):
        inits.append(nh.from_array(rng.integers(-127, 128, size=shape, dtype=np.int8), f"{name}.wq"))
        s, z = scalar(f"{name}.ws", 0.01, np.float32), scalar(f"{name}.wz", 0, np.int8)
        nodes.append(h.make_node("DequantizeLinear", [f"{name}.wq", s, z], [f"{name}.w"], name=f"{name}.wDQ"))
        return f"{name}.w"

    def graph_input(name, shape):
        inputs.append(h.make_tensor_value_info(name, TP.FLOAT, shape))
        return qdq(name, f"{name}.in")

    for L in model_layers(model):
        n, y = L["name"], f"{L['name']}.y"
        if L["op"] == "Conv":
            x = graph_input(f"{n}.x", [1, L["C"], L["IY"], L["IX"]])
            w = weight(n, (L["K"], L["C"], L["FY"], L["FX"]))
            p = L["pad"]
            nodes.append(h.make_node("Conv", [x, w], [y], name=n, kernel_shape=[L["FY"], L["FX"]],
                                     strides=[L["stride"]] * 2, pads=[p, p, p, p]))
            out_shape = [1, L["K"], L["OY"], L["OX"]]
        else:
            g = L["gemm"]
            if L["op"] == "Gemm":
                x = graph_input(f"{n}.x", [g["M"], g["K"]])
                nodes.append(h.make_node("Gemm", [x, weight(n, (g["N"], g["K"]))], [y], name=n, transB=1))
                out_shape = [g["M"], g["N"]]
            elif L["weights"]:
                x = graph_input(f"{n}.x", [1, g["M"], g["K"]])
                nodes.append(h.make_node("MatMul", [x, weight(n, (g["K"], g["N"]))], [y], name=n))
                out_shape = [1, g["M"], g["N"]]
            else:
                a = graph_input(f"{n}.a", [1, g["batch"], g["M"], g["K"]])
                b = graph_input(f"{n}.b", [1, g["batch"], g["K"], g["N"]])
                nodes.append(h.make_node("MatMul", [a, b], [y], name=n))
                out_shape = [1, g["batch"], g["M"], g["N"]]
        outputs.append(h.make_tensor_value_info(qdq(y, f"{n}.out"), TP.FLOAT, out_shape))
    m = h.make_model(h.make_graph(nodes, model, inputs, outputs, inits), opset_imports=[h.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def nvmc_records(model: str, cfg) -> dict[str, dict]:
    import nvmc
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{model}_int8_qdq.onnx"
        build_onnx(model, path)
        est = nvmc.estimate(str(path), TARGET, **{k: v for k, v in NVMC_SETS.items()})
    clock = cfg.clock_hz
    out = {}
    for row in est.layers():
        if row["macs"] <= 0:
            continue
        e = {k: v * 1e12 for k, v in row["energy_by_component_j"].items()}
        by_level = {"mac": e["mac"] + e["pe_registers"]}
        for role in ("ifmap", "filter", "ofmap"):
            by_level[f"{role}_buffer"] = e[f"{role}_read"] + e[f"{role}_write"]
        by_level["dram"] = e["dram"]
        lat = row["latency_by_component_s"]
        words = {r: cfg.buffers[r].word_bytes for r in ("ifmap", "filter", "ofmap")}
        out[row["name"]] = {
            "macs": int(row["macs"]),
            "latency_cycles": row["latency_s"] * clock,
            "compute_cycles": row["array_cycles"],
            "bound_by": max(lat, key=lat.get),
            "latency_by_unit_cycles": {k: v * clock for k, v in lat.items()},
            "energy_pJ": sum(by_level.values()),            # dynamic: what ZigZag counts
            "energy_with_leakage_pJ": row["energy_j"] * 1e12,
            "by_level_pJ": by_level,
            "leakage_pJ": e["buffer_leakage"],
            "other_pJ": {k: e[k] for k in ("vector", "idle_leakage") if k in e},
            "bytes": {**{f"{r}_{k}": row[f"{r}_{k}s"] * words[r] for r in words for k in ("read", "write")},
                      "dram_read": row["dram_read_bytes"], "dram_write": row["dram_write_bytes"]},
        }
    info = {"weights_resident": est.info.get("weights_resident"), "activations": est.info.get("activations"),
            "mac_precision": est.info.get("mac_precision")}
    return out, info


# ------------------------------------------------------------------ comparison
LEVELS = ("mac", "ifmap_buffer", "filter_buffer", "ofmap_buffer", "dram")


def zigzag_levels(z: dict) -> dict:
    lv = {"mac": z["mac_energy_pJ"]}
    for name in LEVELS[1:]:
        lv[name] = sum(e for per_op in z["energy_by_memory_pJ"].values() for mem, e in per_op.items() if mem == name)
    lv["o_reg"] = sum(e for per_op in z["energy_by_memory_pJ"].values() for mem, e in per_op.items() if mem == "o_reg")
    return lv


def zigzag_bytes(z: dict) -> dict:
    """ZigZag's accesses as bytes per buffer and direction (accesses x bandwidth_max / 8)."""
    out = {}
    for op, levels in z["accesses"].items():
        for lv in levels:
            mem, bw = lv["memory"], lv["bandwidth_max_bits"]
            rd = (lv["rd_out_to_low"] + lv["rd_out_to_high"]) * bw / 8
            wr = (lv["wr_in_by_high"] + lv["wr_in_by_low"]) * bw / 8
            key = {"ifmap_buffer": "ifmap", "filter_buffer": "filter", "ofmap_buffer": "ofmap", "dram": "dram"}.get(mem)
            if key:
                out[f"{key}_read"] = out.get(f"{key}_read", 0.0) + rd
                out[f"{key}_write"] = out.get(f"{key}_write", 0.0) + wr
    return out


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def ratio(a, b):
    return a / b if b else (1.0 if not a else float("inf"))


def summarize(records, variant):
    rows = [r for r in records if variant in r["zigzag"]]
    lat = [r["zigzag"][variant]["latency_cycles"] / r["nvmc"]["latency_cycles"] for r in rows]
    cyc = [r["zigzag"][variant]["compute_cycles"] / r["nvmc"]["compute_cycles"] for r in rows]
    en = [r["zigzag"][variant]["energy_pJ"] / r["nvmc"]["energy_pJ"] for r in rows]
    tot = lambda side, key: sum((r[side][variant] if side == "zigzag" else r[side])[key] for r in rows)
    return {"layers": len(rows),
            "latency_ratio": {"median": statistics.median(lat), "geomean": geomean(lat), "min": min(lat),
                              "max": max(lat),
                              "total": tot("zigzag", "latency_cycles") / tot("nvmc", "latency_cycles")},
            "compute_cycles_ratio": {"median": statistics.median(cyc), "geomean": geomean(cyc), "min": min(cyc),
                                     "max": max(cyc)},
            "energy_ratio": {"median": statistics.median(en), "geomean": geomean(en), "min": min(en), "max": max(en),
                             "total": tot("zigzag", "energy_pJ") / tot("nvmc", "energy_pJ")},
            "nvmc_leakage_over_dynamic": sum(r["nvmc"]["leakage_pJ"] for r in rows) / tot("nvmc", "energy_pJ")}


def fmt(x):
    """A ratio, three decimals."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.3f}" if x < 100 else f"{x:.0f}"


def tables(records, summary, variants) -> str:
    out = []
    for model in MODELS:
        rows = [r for r in records if r["model"] == model]
        out.append(f"\n#### {model}: per layer, ZigZag `os_pinned` vs nvmc (ratios are ZigZag / nvmc)\n")
        out.append("| layer | shape | MACs | nvmc cycles (bound) | ZZ cycles | latency | compute cycles | nvmc µJ "
                   "| ZZ µJ | E ratio | E ifmap buf | E filter buf | E ofmap buf | E DRAM | free: lat | free: E |")
        out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            n, z = r["nvmc"], r["zigzag"].get("os_pinned")
            f = r["zigzag"].get("free")
            lv = lambda k: fmt(ratio(z["by_level_pJ"][k], n["by_level_pJ"][k]))
            out.append(f"| {r['layer']} | {r['shape']} | {r['macs'] / 1e6:.1f}M | {n['latency_cycles']:.0f} "
                       f"({n['bound_by']}) | {z['latency_cycles']:.0f} | {fmt(r['ratios']['os_pinned']['latency'])} "
                       f"| {fmt(r['ratios']['os_pinned']['compute_cycles'])} | {n['energy_pJ'] / 1e6:.2f} "
                       f"| {z['energy_pJ'] / 1e6:.2f} | {fmt(r['ratios']['os_pinned']['energy'])} "
                       f"| {lv('ifmap_buffer')} "
                       f"| {lv('filter_buffer')} | {lv('ofmap_buffer')} | {lv('dram')} "
                       f"| {fmt(r['ratios']['free']['latency']) if f else '-'} "
                       f"| {fmt(r['ratios']['free']['energy']) if f else '-'} |")
    out.append("\n#### Summary (per-layer ratios ZigZag / nvmc; `total` = sum over the model's layers)\n")
    out.append("| model | ZigZag variant | layers | latency median | latency geomean | latency min-max | latency total "
               "| compute-cycle median | energy median | energy geomean | energy min-max | energy total "
               "| nvmc leakage / dynamic |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for key, s in summary.items():
        model, variant = key.split("/")
        L, C, E = s["latency_ratio"], s["compute_cycles_ratio"], s["energy_ratio"]
        out.append(f"| {model} | {variant} | {s['layers']} | {L['median']:.3f} | {L['geomean']:.3f} | "
                   f"{L['min']:.3f}-{L['max']:.3f} | {L['total']:.3f} | {C['median']:.3f} | {E['median']:.3f} | "
                   f"{E['geomean']:.3f} | {E['min']:.3f}-{E['max']:.3f} | {E['total']:.3f} "
                   f"| {s['nvmc_leakage_over_dynamic']:.2f} |")
    return "\n".join(out) + "\n"


def shape_text(L):
    if L["op"] == "Conv":
        return f"C{L['C']} K{L['K']} {L['OY']}x{L['OX']} k{L['FX']} s{L['stride']}"
    g = L["gemm"]
    return (f"{g['batch']}x " if g["batch"] > 1 else "") + f"M{g['M']} N{g['N']} K{g['K']}"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compare() -> None:
    import nvmc
    from nvmc.backends import load_target
    raw = json.loads((HERE / "zigzag_raw.json").read_text())
    current = {p.name: sha256(p) for p in sorted(INPUTS.iterdir())}
    if raw["meta"]["inputs_sha256"] != current:
        sys.exit("zigzag_raw.json was made from other inputs/ files: rerun run_zigzag.py after nvmc_side.py specs")
    target, cfg = resolved()
    variants = list(raw["variants"])
    records, nv_info = [], {}
    for model in MODELS:
        nv, nv_info[model] = nvmc_records(model, cfg)
        for L in model_layers(model):
            name = L["name"]
            n = nv[name]
            rec = {"model": model, "layer": name, "op": L["op"], "shape": shape_text(L), "macs": n["macs"],
                   "dims": {k: v for k, v in L.items() if k not in ("name", "op")}, "nvmc": n, "zigzag": {},
                   "ratios": {}}
            for variant in variants:
                z = raw["results"][model][variant].get(name)
                if z is None:
                    continue
                lv = zigzag_levels(z)
                zz = {"latency_cycles": z["latency_total2"], "compute_cycles": z["ideal_temporal_cycle"],
                      "energy_pJ": z["energy_total_pJ"], "by_level_pJ": lv, "bytes": zigzag_bytes(z),
                      "macs": z["total_mac_count"], "spatial_mapping": z["spatial_mapping"],
                      "temporal_mapping": z["temporal_mapping"],
                      "latency_parts": {k: z[k] for k in ("ideal_cycle", "ideal_temporal_cycle", "stall_slack_comb",
                                                          "data_onloading_cycle", "data_offloading_cycle",
                                                          "systolic_drain_cycle", "latency_total0", "latency_total2")}}
                if zz["macs"] != n["macs"]:
                    sys.exit(f"MAC count differs on {model}/{name}: nvmc {n['macs']}, ZigZag {zz['macs']}")
                rec["zigzag"][variant] = zz
                rec["ratios"][variant] = {
                    "latency": ratio(zz["latency_cycles"], n["latency_cycles"]),
                    "compute_cycles": ratio(zz["compute_cycles"], n["compute_cycles"]),
                    "energy": ratio(zz["energy_pJ"], n["energy_pJ"]),
                    "by_level": {k: ratio(lv[k], n["by_level_pJ"][k]) for k in LEVELS}}
            records.append(rec)
    summary = {}
    for model in MODELS:
        for variant in variants:
            summary[f"{model}/{variant}"] = summarize([r for r in records if r["model"] == model], variant)
    for variant in variants:
        summary[f"all/{variant}"] = summarize(records, variant)
    spec_files = sorted(INPUTS.iterdir())
    spec_hash = hashlib.sha256(b"".join(sha256(p).encode() for p in spec_files)).hexdigest()
    meta = {
        "schema": "nvmc.zigzag_refs/1",
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "nvmc": {"version": nvmc.__version__, "target": TARGET, "target_sha256": load_target(TARGET).hash,
                 "target_with_sets_sha256": target.hash, "sets": NVMC_SETS,
                 "info": nv_info},
        "zigzag": raw["meta"],
        "spec_sha256": spec_hash,
        "spec_files": {p.name: sha256(p) for p in spec_files},
        "units": {"latency": "cycles at the target clock", "energy": "pJ", "bytes": "bytes"},
        "notes": ["nvmc energy_pJ is dynamic energy (mac + pe_registers + buffer reads/writes + dram); buffer leakage, "
                  "which ZigZag does not model, is in energy_with_leakage_pJ / leakage_pJ",
                  "zigzag latency_cycles = latency_total2 (computation + stalls + onloading + offloading + systolic "
                  "drain); compute_cycles = ideal_temporal_cycle; nvmc compute_cycles = SCALE-Sim array cycles"],
    }
    doc = {"meta": meta, "summary": summary, "records": records}
    (HERE / "zigzag_refs.json").write_text(json.dumps(doc, indent=1, default=float) + "\n")
    text = tables(records, summary, variants)
    readme = HERE / "README.md"
    if readme.exists():
        t = readme.read_text()
        t2 = re.sub(r"(<!-- generated:begin -->\n).*?(<!-- generated:end -->)",
                    lambda m: m.group(1) + text + m.group(2), t, flags=re.S)
        if t2 != t:
            readme.write_text(t2)
    print(text)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("specs", "compare"))
    args = ap.parse_args(argv)
    write_specs() if args.what == "specs" else compare()


if __name__ == "__main__":
    main()
