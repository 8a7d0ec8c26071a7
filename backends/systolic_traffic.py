"""The systolic family's per-node arithmetic (precision, fusion, cycles, buffer and DRAM traffic,
busy times) from the workload's columns, vectorised; the rules are documented in systolic.py.

:func:`operands` computes what every dataflow shares once; :func:`traffic` what one dataflow
adds (``array.dataflow = "auto"`` calls it for each of os, ws, is on the same operands)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from . import systolic_bandwidth as sbw
from . import systolic_map as smap
from . import systolic_tiling as stiling
from .family import KIND, TRANSCENDENTAL_KINDS, element_slots

BUFFERS = ("ifmap", "filter", "ofmap")


def class_bits(classes) -> np.ndarray:
    """Operand width of each precision class, from its name ('int8' -> 8, 'fp16' -> 16)."""
    return np.array([float(name.lstrip("intfp")) for name in classes])


def _nearest(bits, widths: np.ndarray) -> np.ndarray:
    """Index of the class nearest in log2 to each width in bits."""
    b = np.log2(np.maximum(np.asarray(bits, dtype=np.float64), 1.0))[..., None]
    return np.argmin(np.abs(b - np.log2(widths)), axis=-1)


def precisions(workload, is_mac: np.ndarray, widths: np.ndarray) -> dict[str, np.ndarray]:
    """Per-node precision classes of the MAC operands (systolic.py, "Precision")."""
    c = workload.columns
    params, macs = c["params"].astype(np.float64), c["macs"].astype(np.float64)
    widest = len(widths) - 1

    def majority(classes, weights):  # the class with the most weight (the widest if none)
        return int(np.argmax(np.bincount(classes, weights=weights, minlength=len(widths)))) if len(classes) else widest

    has_w = is_mac & (params > 0)
    w_node = _nearest(c["weight_bits"], widths)
    w_class = np.where(w_node == widest, widest, majority(w_node[has_w], params[has_w]))
    a_class = np.where(c["act_bits"] > 0, _nearest(c["act_bits"], widths), w_class)
    mac_class = np.where(is_mac, np.where(has_w, np.maximum(w_class, a_class), a_class), 0)
    return {"mac": mac_class, "act": a_class, "weight": np.where(has_w, w_class, a_class),
            "graph": majority(mac_class[is_mac], macs[is_mac])}


def _miss(nbytes, usable: float):
    """Fraction of an operand of ``nbytes`` that does not stay in a buffer of ``usable`` bytes."""
    return np.clip(1.0 - usable / np.maximum(nbytes, 1e-9), 0.0, 1.0)   # 1e-9: an empty operand misses nothing


def fusion(kind, work, is_mac, inp, out) -> np.ndarray:
    """For each node, the MAC node whose output path runs it (-1: none): an elementwise node
    whose input is exactly the previous costed node's output, in a chain that starts at a MAC
    node (systolic.py, "Other nodes")."""
    owner = np.full(len(kind), -1)
    idx = np.flatnonzero(work)
    if idx.size < 2:
        return owner
    cand = np.zeros(idx.size, dtype=bool)
    nxt, prev = idx[1:], idx[:-1]
    cand[1:] = (kind[nxt] == KIND["elementwise"]) & np.isclose(inp[nxt], out[prev]) & (inp[nxt] > 0)
    pos = np.arange(idx.size)
    head = idx[np.maximum.accumulate(np.where(cand, 0, pos))]   # the chain's first node
    fused = cand & is_mac[head]
    owner[idx[fused]] = head[fused]
    return owner


def operands(workload, p, chip) -> SimpleNamespace:
    """The per-node columns every dataflow shares (systolic.py, points 2-5 and "Other nodes"):
    GEMM shapes, precisions, fusion, unique operand bytes, weight residency, activations between
    layers, vector work. :func:`traffic` adds what depends on the dataflow."""
    c = workload.columns
    f = np.float64
    n = len(workload.names)
    kind = c["kind"]
    work = kind != KIND["view"]
    is_mac = kind == KIND["mac"]
    macs = c["macs"].astype(f)
    w_store, w, inp, out, params = (c[k].astype(f) for k in ("weight_bytes", "weight_read_bytes", "input_bytes",
                                                             "output_bytes", "params"))
    gb, gm, gn, gk = (np.where(is_mac, c[k], 0).astype(f) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k"))
    # fewer weights than the GEMMs use: one weight shared by a batched MatMul, one GEMM of batch x M rows
    shared = is_mac & (params > 0) & (gb > 1) & (params < gb * gk * gn)
    gm, gb = np.where(shared, gb * gm, gm), np.where(shared, 1.0, gb)
    widths = class_bits(chip.classes)
    prec = precisions(workload, is_mac, widths)
    a_el, w_el = widths[prec["act"]] / 8, widths[prec["weight"]] / 8
    psum = chip.psum_bytes

    # element-wise ops fused into their MAC producer: it writes the chain's last output
    owner = fusion(kind, work, is_mac, inp, out) if p["vector.fusion"] == "elementwise" else np.full(n, -1)
    fused = owner >= 0
    moves = work & ~fused                     # nodes that move activations through buffers / DRAM
    last = np.full(n, -1)
    np.maximum.at(last, owner[fused], np.flatnonzero(fused))
    writer = np.where(last >= 0, last, np.arange(n))
    out = out[writer]
    out_bits = c["out_bits"][writer]
    # ConvTranspose scatters its GEMM outputs into overlapping windows: every one is a 32-bit
    # partial sum, accumulated in the ofmap buffer (no workload column says "scatter")
    transposed = is_mac & (np.asarray(workload.ops, dtype=object) == "ConvTranspose")
    o_el = np.where(transposed | (out_bits <= 0), psum, np.minimum(out_bits / 8, psum))

    # unique operand bytes: A (activations) and B (weights, or a run-time operand where the
    # node's constant weights do not cover B: attention, or a weight computed at run time); a
    # strided 1x1 conv reads only the pixels it samples: A is at most the im2col volume
    act_b = is_mac & (params < gb * gk * gn)
    b_share = np.where(act_b, gb * gk * gn / np.maximum(gb * gm * gk + gb * gk * gn, 1.0), 0.0)
    b_u = np.where(act_b, inp * b_share, np.where(is_mac, w, 0.0))
    a_u = np.where(is_mac, inp - np.where(act_b, b_u, 0.0), 0.0)
    a_u = np.where(is_mac & ~act_b, np.minimum(a_u, gb * gm * gk * a_el), a_u)
    bufs = chip.buffers
    use = {r: b.capacity * p["buffers.usable_fraction"] for r, b in bufs.items()}

    # weights resident across inferences (point 5): the model's stored weights fit the filter buffer
    model_weights = float(w_store[work].sum())
    keeps = (not bufs["filter"].volatile) or p["buffers.power_gating"] == "off" \
        or not p.get("operation.inferences_per_s")
    resident = bool(model_weights > 0 and model_weights <= bufs["filter"].capacity and keeps)
    weights_dram = np.where(work & (params > 0), 0.0 if resident else w, 0.0)

    # activations between layers (point 4): the input is on chip as far as the producer's
    # output (this node's whole input) fit in the ofmap buffer
    on_chip = p["buffers.activations"] == "on-chip"
    resident_in = 1.0 - _miss(inp, use["ofmap"]) if on_chip else np.zeros(n)
    out_dram = np.where(moves, out * (_miss(out, use["ofmap"]) if on_chip else 1.0), 0.0)
    costed = np.flatnonzero(work)
    if costed.size:  # the model's input comes from DRAM, its output goes there
        resident_in[costed[0]] = 0.0
        tail = owner[costed[-1]] if fused[costed[-1]] else costed[-1]
        out_dram[tail] = out[tail]

    # vector unit: non-MAC ops (incl. bias adds), ConvTranspose overlap-adds; a fused op's
    # slots are busy time of its MAC node (it runs while the array works). A transcendental
    # op is transcendental_cost lane slots, each a multiply and an add.
    tcost = p["vector.transcendental_cost"]
    out_words = gb * gm * gn
    overlap_adds = np.where(transposed, out_words, 0.0)
    slots = np.where(work, element_slots(workload, tcost) + overlap_adds, 0.0)
    slots = np.where(fused, 0.0, slots) + np.bincount(owner[fused], weights=slots[fused], minlength=n)
    trans = tcost * sum(c[k].astype(f) for k in TRANSCENDENTAL_KINDS)
    adds = np.where(work, (c["add"] + c["cmp"] + c["other"]).astype(f) + overlap_adds + trans, 0.0)
    mults = np.where(work, c["mul"].astype(f) + trans, 0.0)
    return SimpleNamespace(
        n=n, work=work, is_mac=is_mac, macs=macs, w=w, inp=inp, out=out, gb=gb, gm=gm, gn=gn, gk=gk,
        widths=widths, prec=prec, a_el=a_el, w_el=w_el, psum=psum, fused=fused, moves=moves, transposed=transposed,
        o_el=o_el, out_words=out_words, act_b=act_b, a_u=a_u, b_u=b_u, use=use, resident=resident,
        weights_dram=weights_dram, resident_in=resident_in, out_dram=out_dram, slots=slots, adds=adds, mults=mults)


def traffic(s: SimpleNamespace, p, chip, df: str) -> dict[str, np.ndarray]:
    """Cycles, buffer accesses and DRAM bytes per node on dataflow ``df`` (systolic.py, points
    1-5), from the shared columns of :func:`operands`."""
    n, is_mac, work, moves, gb, gm, gn, gk = s.n, s.is_mac, s.work, s.moves, s.gb, s.gm, s.gn, s.gk
    a_el, w_el, psum, use, a_u, b_u = s.a_el, s.w_el, s.psum, s.use, s.a_u, s.b_u
    R, C = chip.rows, chip.cols

    cycles = np.where(is_mac, gb * smap.compute_cycles(df, R, C, gm, gn, gk), 0.0)
    acc = smap.operand_accesses(df, R, C, gm, gn, gk)
    rf, cf = acc["row_folds"], acc["col_folds"]
    out_words = s.out_words
    ofmap_w_bytes = np.where(is_mac, out_words * ((rf - 1) * psum + s.o_el) if df != "os" else out_words * s.o_el,
                             s.out)

    # re-fetches by loop order (point 3), beyond each operand's first pass
    a_tile = np.minimum(gm, R) * gk * a_el
    b_tile = gk * np.minimum(gn, C) * w_el
    per_gemm = np.maximum(gb, 1)
    spill = np.zeros(n)
    if df == "os":   # order 1: N outer (A re-streamed per column fold); order 2: M outer
        a1 = a_u * (cf - 1) * _miss(a_u / per_gemm, use["ifmap"])
        b1 = b_u * (rf - 1) * _miss(b_tile, use["filter"])
        a2 = a_u * (cf - 1) * _miss(a_tile, use["ifmap"])
        b2 = b_u * (rf - 1) * _miss(b_u / per_gemm, use["filter"])
        first = (a1 + b1) <= (a2 + b2)
        a_re, b_re = np.where(first, a1, a2), np.where(first, b1, b2)
    elif df == "ws":
        a_re = a_u * (cf - 1) * _miss(a_u / per_gemm, use["ifmap"])
        b_re = np.zeros(n)
        spill = (rf - 1) * gb * gm * gn * psum * 2 * _miss(gm * np.minimum(gn, C) * psum, use["ofmap"])
    else:
        a_re = np.zeros(n)
        b_re = b_u * (cf - 1) * _miss(b_u / per_gemm, use["filter"])
        spill = (rf - 1) * gb * gm * gn * psum * 2 * _miss(np.minimum(gm, C) * gn * psum, use["ofmap"])
    tiles = None
    if p["mapping.tiling"] == "search":   # per layer, the fixed rule or a searched tiling (systolic_tiling)
        a_re, b_re, spill, tiles = search_tiling(s, chip, df, rf, a_re, b_re, spill)
    user = None
    if chip.interface == "user":   # the window slides that stall the array are the refetches (systolic.py, Time)
        user = user_timing(p, chip, df, is_mac, s.act_b, s.resident, gb, gm, gn, gk, a_el, w_el, ofmap_w_bytes)
        a_re, b_re = user["ifmap_refetch_bytes"], user["filter_refetch_bytes"]

    resident_in, inp = s.resident_in, s.inp
    a_dram = np.where(is_mac, a_u * (1 - resident_in) + a_re, np.where(moves, inp * (1 - resident_in), 0.0))
    b_dram = np.where(is_mac, np.where(s.act_b, b_u * (1 - resident_in), 0.0) + b_re, 0.0) + s.weights_dram
    dram_read = a_dram + b_dram + spill / 2
    dram_write = s.out_dram + spill / 2

    # buffer accesses in words (point 2)
    ofmap_r_bytes = np.where(is_mac, acc["ofmap_reads"] * gb * psum + np.where(s.transposed, out_words * psum, 0.0),
                             0.0) + s.out_dram
    if tiles is not None:   # partial sums of a split K accumulated in the ofmap buffer
        ofmap_r_bytes = ofmap_r_bytes + tiles["extra"]
        ofmap_w_bytes = ofmap_w_bytes + tiles["extra"]
    word = {r: b.word_bytes for r, b in chip.buffers.items()}
    t = {"ifmap_reads": np.where(is_mac, acc["ifmap_reads"] * gb * a_el, np.where(moves, inp, 0.0)) / word["ifmap"],
         "ifmap_writes": a_dram / word["ifmap"],
         "filter_reads": np.where(is_mac, acc["filter_reads"] * gb * w_el, np.where(work, s.w, 0.0)) / word["filter"],
         "filter_writes": b_dram / word["filter"],
         "ofmap_writes": np.where(moves, ofmap_w_bytes, 0.0) / word["ofmap"],
         "ofmap_reads": np.where(moves, ofmap_r_bytes, 0.0) / word["ofmap"]}

    a_bits, w_bits = s.widths[s.prec["act"]], s.widths[s.prec["weight"]]
    moved = {"os": a_bits + w_bits, "ws": a_bits + 8 * psum, "is": w_bits + 8 * psum}[df]
    sr, sc, _ = smap.spatio_temporal(df, gm, gn, gk)   # the mapping, for reports: folds and PEs a GEMM occupies
    return {
        **t, "macs": np.where(is_mac, s.macs, 0.0), "work": work, "is_mac": is_mac, "cycles": cycles,
        "row_folds": rf, "col_folds": cf, "pes_used": np.minimum(sr, R) * np.minimum(sc, C),
        "slots": s.slots, "fused": s.fused, "vector_adds": s.adds, "vector_mults": s.mults,
        "mac_class": s.prec["mac"], "graph_class": s.prec["graph"],
        "moved_bits": np.where(is_mac, moved, 0.0), "dram_read": np.where(work, dram_read, 0.0),
        "dram_write": np.where(work, dram_write, 0.0), "resident": s.resident,
        "stall_cycles": np.zeros(n) if user is None else user["stall"], "user": user, "tiles": tiles,
    }


def search_tiling(s, chip, df, rf, a_re, b_re, spill):
    """``mapping.tiling = "search"``: per MAC node the searched tiling (systolic_tiling.search)
    where it moves fewer DRAM bytes than the fixed loop-order rule's refetches and spills
    (``a_re``, ``b_re``, ``spill``), or as many with no more buffer accesses; otherwise the
    fixed rule (order code ``FIXED``). The fixed rule is a candidate, so no layer moves more
    DRAM bytes than with ``"fixed"``. Returns the chosen refetches, spill and the per-node
    ``tiles`` table (tile_m/n/k, order, extra on-chip partial-sum bytes, fixed and chosen
    refetch bytes)."""
    n = s.n
    word = {r: b.word_bytes for r, b in chip.buffers.items()}
    mac = np.flatnonzero(s.is_mac & (s.gm * s.gn * s.gk > 0))
    k_folds = rf[mac] if df != "os" else np.ones(mac.size)   # os: K runs in time, ws / is: over the rows
    r = stiling.search(s.gm[mac], s.gn[mac], s.gk[mac], gb=np.maximum(s.gb[mac], 1.0), a_u=s.a_u[mac],
                       b_u=s.b_u[mac], a_el=s.a_el[mac], w_el=s.w_el[mac], psum=s.psum, use=s.use, word=word,
                       k_folds=k_folds)
    fixed = a_re[mac] + b_re[mac] + spill[mac]
    fixed_acc = a_re[mac] / word["ifmap"] + b_re[mac] / word["filter"]
    take = r["ok"] & ((r["dram"] < fixed) | ((r["dram"] == fixed) & (r["accesses"] <= fixed_acc)))
    tiles = {key: np.full(n, np.nan) for key in ("tile_m", "tile_n", "tile_k", "order")}
    tiles["extra"] = np.zeros(n)
    out = []
    for key, base in (("a_re", a_re), ("b_re", b_re), ("spill", spill)):
        v = np.array(base, dtype=np.float64, copy=True)
        v[mac] = np.where(take, r[key], base[mac])
        out.append(v)
    for key in ("tile_m", "tile_n", "tile_k"):
        tiles[key][mac] = np.where(take, r[key], np.nan)
    tiles["order"][mac] = np.where(take, r["order"], stiling.FIXED)
    tiles["extra"][mac] = np.where(take, r["extra"], 0.0)
    tiles["fixed_refetch"] = np.zeros(n)
    tiles["fixed_refetch"][mac] = fixed
    tiles["refetch"] = out[0] + out[1] + out[2]
    return (*out, tiles)


def user_timing(p, chip, df, is_mac, act_b, resident, gb, gm, gn, gk, a_el, w_el, ofmap_w_bytes) -> dict:
    """USER interface mode (systolic_bandwidth.py), per node: stall cycles, window slides of the
    ifmap and filter buffers and the bytes they refetch beyond one pass over each operand. The
    interface moves ``chip.bytes_per_cycle`` (``interface.bandwidth_words_per_cycle``, SCALE-Sim's
    1-byte words); operands are words of their own width (a_el, w_el bytes)."""
    n = len(gm)
    bufs = chip.buffers
    mac = np.flatnonzero(is_mac & (gm * gn * gk > 0))
    u = sbw.user_cycles(df, chip.rows, chip.cols, gm[mac], gn[mac], gk[mac],
                        bandwidth=float(chip.bytes_per_cycle), ifmap_capacity=bufs["ifmap"].capacity / a_el[mac],
                        filter_capacity=bufs["filter"].capacity / w_el[mac], ofmap_capacity=bufs["ofmap"].capacity,
                        ofmap_writes=ofmap_w_bytes[mac] / gb[mac], ifmap_bytes=a_el[mac], filter_bytes=w_el[mac],
                        active_fraction=p["buffers.usable_fraction"], filter_fits=resident & ~act_b[mac])
    out = {}
    for key, src, scale in (("stall", "stall", 1.0), ("ifmap_slides", "ifmap_slides", 1.0),
                            ("filter_slides", "filter_slides", 1.0),
                            ("ifmap_refetch_bytes", "ifmap_refetch_words", a_el),
                            ("filter_refetch_bytes", "filter_refetch_words", w_el)):
        out[key] = np.zeros(n)
        out[key][mac] = gb[mac] * u[src] * (scale[mac] if isinstance(scale, np.ndarray) else scale)
    return out


def busy_times(p, chip, t: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Seconds each unit is busy per node, and the node latency (the longest)."""
    tick = 1.0 / p["array.clock_hz"]
    busy = {"array": (t["cycles"] + t["stall_cycles"]) * tick, "vector": t["slots"] / p["vector.lanes"] * tick}
    for role, b in chip.buffers.items():
        busy[role] = (t[f"{role}_reads"] * max(b.read_latency_s, tick)
                      + t[f"{role}_writes"] * max(b.write_latency_s, tick)) / b.banks
    dram_bw = p["dram.bandwidth_bytes_per_s"] if t["user"] is None else chip.bytes_per_cycle / tick
    busy["dram"] = (t["dram_read"] + t["dram_write"]) / dram_bw
    return busy, np.maximum.reduce(list(busy.values()))
