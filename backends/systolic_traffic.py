"""The systolic family's per-node arithmetic: precision, fusion, cycles, buffer and DRAM traffic,
busy times. The model and its rules are documented in backends/systolic.py (points 1-5,
"Precision", "Time"); this module only computes them, vectorised over the layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from . import systolic_map as smap
from .support import op_mask

if TYPE_CHECKING:  # pragma: no cover
    from .systolic import Config

BUFFERS = ("ifmap", "filter", "ofmap")
VIEW_OPS = frozenset({"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Size",
                      "Constant", "Optional", "OptionalGetElement"})
MATMUL_OPS = ("MatMul", "MatMulInteger", "QLinearMatMul", "FusedMatMul")
GEMM_OPS = (*MATMUL_OPS, "Gemm")
TRANSPOSED_CONV = ("ConvTranspose",)
ELEMENTWISE = frozenset({"Relu", "LeakyRelu", "PRelu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu",
                         "Selu", "Celu", "Softplus", "Softsign", "Mish", "Gelu", "Erf", "ThresholdedRelu", "Abs", "Neg",
                         "Exp", "Sqrt", "Reciprocal", "Pow", "BatchNormalization", "Add", "Sub", "Mul", "Div"})
_TRANSCENDENTAL = ("div", "exp", "log", "sqrt", "pow", "tanh", "erf")
PRECISIONS = ("int4", "int8", "fp16", "fp32")     # index = class
_CLASS_BITS = np.array([4.0, 8.0, 16.0, 32.0])


def _nearest_class(bits: np.ndarray) -> np.ndarray:
    """Precision class (index into PRECISIONS) nearest in log2 to an element width in bits."""
    b = np.log2(np.clip(bits, 1.0, 64.0))[..., None]
    return np.argmin(np.abs(b - np.log2(_CLASS_BITS)), axis=-1)


def precisions(workload, is_mac: np.ndarray, gb, gm, gn, gk) -> dict[str, np.ndarray]:
    """Per-node precision classes of the MAC operands (module docstring, "Precision")."""
    c = workload.columns
    f = np.float64
    params, wbytes, inp = (c[k].astype(f) for k in ("params", "weight_bytes", "input_bytes"))
    ops = np.asarray(workload.ops, dtype=object)
    has_w = is_mac & (params > 0)
    node_wbits = 8.0 * wbytes / np.maximum(params, 1.0)
    if has_w.any():
        classes = _nearest_class(node_wbits[has_w])
        counts = np.bincount(classes, weights=params[has_w], minlength=len(PRECISIONS))
        graph_w = int(np.argmax(counts))
    else:
        graph_w = len(PRECISIONS) - 1
    w_class = np.where(node_wbits >= 28.0, 3, graph_w)
    a_el, b_el = gb * gm * gk, gb * gk * gn
    if "input_elems" in c:
        a_bits = 8.0 * inp / np.maximum(c["input_elems"].astype(f), 1.0)
        a_known = is_mac
    else:
        a_bits = np.where(has_w, 8.0 * inp / np.maximum(a_el, 1.0), 8.0 * inp / np.maximum(a_el + b_el, 1.0))
        a_known = is_mac & (op_mask(ops, GEMM_OPS) | ~has_w)
    a_class = np.where(a_known, _nearest_class(a_bits), w_class)
    mac_class = np.where(has_w, np.maximum(w_class, a_class), a_class)
    mac_class = np.where(is_mac, mac_class, 0)
    macs = c["macs"].astype(f)
    graph = int(np.argmax(np.bincount(mac_class[is_mac], weights=macs[is_mac], minlength=len(PRECISIONS)))) \
        if is_mac.any() else len(PRECISIONS) - 1
    return {"mac": mac_class, "act": a_class, "weight": np.where(has_w, w_class, a_class), "graph": graph}


def _miss(nbytes, usable: float):
    """Fraction of an operand of ``nbytes`` that does not stay in a buffer of ``usable`` bytes."""
    return np.clip(1.0 - usable / np.maximum(nbytes, 1e-9), 0.0, 1.0)



def fusion(ops, work, is_mac, inp, out) -> np.ndarray:
    """For each node, the MAC node whose output path runs it (-1: none).

    An element-wise op (ELEMENTWISE) whose activation input is exactly the previous costed
    node's output (its other operands are constants) is fused into that node when the
    chain leading to it starts at a MAC node: Conv -> BatchNormalization -> Relu, MatMul ->
    Add (bias) -> Gelu, ... (producer and consumer adjacent in topological order; optimistic
    when the MAC's raw output has other readers)."""
    owner = np.full(len(ops), -1)
    idx = np.flatnonzero(work)
    if idx.size < 2:
        return owner
    cand = np.zeros(idx.size, dtype=bool)
    cand[1:] = (op_mask(ops[idx[1:]], list(ELEMENTWISE)) & ~is_mac[idx[1:]]
                & np.isclose(inp[idx[1:]], out[idx[:-1]]) & (inp[idx[1:]] > 0))
    pos = np.arange(idx.size)
    head = idx[np.maximum.accumulate(np.where(cand, 0, pos))]   # the chain's first node
    fused = cand & is_mac[head]
    owner[idx[fused]] = head[fused]
    return owner


def traffic(workload, cfg: "Config") -> dict[str, np.ndarray]:
    """Cycles, buffer accesses and DRAM bytes per node (module docstring, points 1-5)."""
    c = workload.columns
    f = np.float64
    n = len(workload.names)
    ops = np.asarray(workload.ops, dtype=object)
    macs = c["macs"].astype(f)
    folded = c["folded"].astype(bool) if "folded" in c else np.zeros(n, dtype=bool)
    work = ~folded & ~(op_mask(ops, list(VIEW_OPS)) & (macs == 0))
    is_mac = work & (macs > 0)
    w, inp, out, params = (c[k].astype(f) for k in ("weight_bytes", "input_bytes", "output_bytes", "params"))
    gb, gm, gn, gk = (np.where(is_mac, c[k], 0).astype(f) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k"))
    # a weight shared by every GEMM of a batched MatMul: one GEMM of batch x M rows
    shared = is_mac & op_mask(ops, MATMUL_OPS) & (params > 0) & (gb > 1) & (params < gb * gk * gn)
    gm, gb = np.where(shared, gb * gm, gm), np.where(shared, 1.0, gb)
    prec = precisions(workload, is_mac, gb, gm, gn, gk)
    bits = _CLASS_BITS
    a_el, w_el = bits[prec["act"]] / 8, bits[prec["weight"]] / 8
    psum = cfg.psum_bytes

    # element-wise ops fused into their MAC producer: it writes the chain's last output
    owner = fusion(ops, work, is_mac, inp, out) if cfg.fusion == "elementwise" else np.full(n, -1)
    fused = owner >= 0
    moves = work & ~fused                     # nodes that move activations through buffers / DRAM
    last = np.full(n, -1)
    np.maximum.at(last, owner[fused], np.flatnonzero(fused))
    out = np.where(last >= 0, out[np.maximum(last, 0)], out)
    transposed = is_mac & op_mask(ops, TRANSPOSED_CONV)
    o_el = np.where(transposed, psum, np.clip(out / np.maximum(gb * gm * gn, 1.0), 0.5, psum))

    R, C, df = cfg.rows, cfg.cols, cfg.dataflow
    cycles = np.where(is_mac, gb * smap.compute_cycles(df, R, C, gm, gn, gk), 0.0)
    acc = smap.operand_accesses(df, R, C, gm, gn, gk)
    rf, cf = acc["row_folds"], acc["col_folds"]

    # unique operand bytes: A (activations) and B (weights, or the second activation)
    act_b = is_mac & (params <= 0)
    b_share = np.where(act_b, gb * gk * gn / np.maximum(gb * gm * gk + gb * gk * gn, 1.0), 0.0)
    b_u = np.where(act_b, inp * b_share, np.where(is_mac, w, 0.0))
    a_u = np.where(is_mac, inp - np.where(act_b, b_u, 0.0), 0.0)
    bufs = cfg.buffers
    use = {r: b.capacity * cfg.usable_fraction for r, b in bufs.items()}

    # weights resident across inferences (point 5)
    model_weights = float(w[work].sum())
    keeps = (not bufs["filter"].volatile) or cfg.power_gating == "off" or not cfg.inferences_per_s
    resident = bool(model_weights > 0 and model_weights <= bufs["filter"].capacity and keeps)
    weights_dram = np.where(work & (params > 0), 0.0 if resident else w, 0.0)

    # re-fetches by loop order (point 3); the B operand's own first pass is weights_dram or b_u
    b_first = np.where(act_b, b_u, weights_dram)
    a_tile = np.minimum(gm, R) * gk * a_el
    b_tile = gk * np.minimum(gn, C) * w_el
    per_gemm = np.maximum(gb, 1)
    if df == "os":   # order 1: N outer (A re-streamed per column fold); order 2: M outer
        a1 = a_u * (cf - 1) * _miss(a_u / per_gemm, use["ifmap"])
        b1 = b_u * (rf - 1) * _miss(b_tile, use["filter"])
        a2 = a_u * (cf - 1) * _miss(a_tile, use["ifmap"])
        b2 = b_u * (rf - 1) * _miss(b_u / per_gemm, use["filter"])
        first = (a1 + b1) <= (a2 + b2)
        a_re, b_re = np.where(first, a1, a2), np.where(first, b1, b2)
        spill = np.zeros(n)
    elif df == "ws":
        a_re = a_u * (cf - 1) * _miss(a_u / per_gemm, use["ifmap"])
        b_re = np.zeros(n)
        spill = (rf - 1) * gb * gm * gn * psum * 2 * _miss(gm * np.minimum(gn, C) * psum, use["ofmap"])
    else:
        a_re = np.zeros(n)
        b_re = b_u * (cf - 1) * _miss(b_u / per_gemm, use["filter"])
        spill = (rf - 1) * gb * gm * gn * psum * 2 * _miss(np.minimum(gm, C) * gn * psum, use["ofmap"])

    # activations between layers (point 4)
    act_in = np.where(is_mac, a_u + np.where(act_b, b_u, 0.0), inp)
    on_chip = cfg.activations == "on-chip"
    resident_in = np.minimum(1.0, use["ofmap"] / np.maximum(act_in, 1e-9)) if on_chip else np.zeros(n)
    out_dram = np.where(moves, out * (_miss(out, use["ofmap"]) if on_chip else 1.0), 0.0)
    costed = np.flatnonzero(work)
    if costed.size:  # the model's input comes from DRAM, its output goes there
        resident_in[costed[0]] = 0.0
        tail = owner[costed[-1]] if fused[costed[-1]] else costed[-1]
        out_dram[tail] = out[tail]
    a_dram = np.where(is_mac, a_u * (1 - resident_in) + a_re, np.where(moves, inp * (1 - resident_in), 0.0))
    b_dram = np.where(is_mac, np.where(act_b, b_first * (1 - resident_in), b_first) + b_re,
                      np.where(work, weights_dram, 0.0))
    dram_read = a_dram + b_dram + spill / 2
    dram_write = out_dram + spill / 2

    # buffer accesses in words (point 2)
    out_words = gb * gm * gn
    ofmap_w_bytes = np.where(is_mac, out_words * ((rf - 1) * psum + o_el) if df != "os" else out_words * o_el, out)
    ofmap_r_bytes = np.where(is_mac, acc["ofmap_reads"] * gb * psum + np.where(transposed, out_words * psum, 0.0),
                             0.0) + out_dram
    t = {
        "ifmap_reads": np.where(is_mac, acc["ifmap_reads"] * gb * a_el, np.where(moves, inp, 0.0)),
        "ifmap_writes": a_dram,
        "filter_reads": np.where(is_mac, acc["filter_reads"] * gb * w_el, np.where(work, w, 0.0)),
        "filter_writes": b_dram,
        "ofmap_writes": np.where(moves, ofmap_w_bytes, 0.0),
        "ofmap_reads": np.where(moves, ofmap_r_bytes, 0.0),
    }
    for role, b in bufs.items():
        for k in ("reads", "writes"):
            t[f"{role}_{k}"] = t[f"{role}_{k}"] / b.word_bytes

    # vector unit: non-MAC ops (incl. bias adds), ConvTranspose overlap-adds; a fused op's
    # slots are busy time of its MAC node (it runs while the array works)
    simple = sum(c[k].astype(f) for k in ("add", "mul", "cmp", "other")) + np.where(transposed, out_words, 0.0)
    trans = sum(c[k].astype(f) for k in _TRANSCENDENTAL)
    slots = np.where(work, simple + cfg.transcendental_cost * trans, 0.0)
    slots = np.where(fused, 0.0, slots) + np.bincount(owner[fused], weights=slots[fused], minlength=n)
    g = prec["graph"]
    add_e, mul_e = cfg.add_energy_j[g], cfg.mult_energy_j[g]
    vector_j = ((c["add"] + c["cmp"] + c["other"]).astype(f) + np.where(transposed, out_words, 0.0)) * add_e \
        + c["mul"].astype(f) * mul_e + trans * cfg.transcendental_cost * (add_e + mul_e)
    moved = {"os": bits[prec["act"]] + bits[prec["weight"]], "ws": bits[prec["act"]] + 8 * psum,
             "is": bits[prec["weight"]] + 8 * psum}[df]
    return {
        **t, "macs": np.where(is_mac, macs, 0.0), "work": work, "is_mac": is_mac, "cycles": cycles,
        "slots": slots, "fused": fused,
        "vector_j": np.where(work, vector_j, 0.0), "mac_class": prec["mac"], "graph_class": g,
        "moved_bits": np.where(is_mac, moved, 0.0), "dram_read": np.where(work, dram_read, 0.0),
        "dram_write": np.where(work, dram_write, 0.0), "resident": resident,
    }


def busy_times(cfg: "Config", t: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Seconds each unit is busy per node, and the node latency (the longest)."""
    tick = 1.0 / cfg.clock_hz
    busy = {"array": t["cycles"] * tick, "vector": t["slots"] / cfg.lanes * tick}
    for role, b in cfg.buffers.items():
        busy[role] = (t[f"{role}_reads"] * max(b.read_latency_s, tick)
                      + t[f"{role}_writes"] * max(b.write_latency_s, tick)) / b.banks
    busy["dram"] = (t["dram_read"] + t["dram_write"]) / cfg.dram_bandwidth
    return busy, np.maximum.reduce(list(busy.values()))
