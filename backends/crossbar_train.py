"""Training mode of the crossbar family: one training step (the workload's batch) = forward,
backward, weight gradients and weight update, for backpropagation (BP) or direct feedback
alignment (DFA; paper 7 of shared/reference/seeds.md).

:func:`training` is a function of the workload, the resolved chip (``crossbar.resolve``)
and the forward pass (:class:`Forward`, which crossbar.py builds); it returns the step's
counts. What both passes read lives here, so the dependency runs one way (crossbar.py ->
this module): the per-node mapping (:class:`Layers`), the forward-pass record and the
arrays' read rule (:func:`array_read`), which a backward read applies to the same arrays.

Per crossbar layer l (in topological order; the first layer needs no backward read):

* forward: as inference (:mod:`crossbar`); its activations stay in the buffer.
* BP backward: delta_{l-1} = W_l^T delta_l, a *transposed read* of the same arrays (as
  NeuroSim V2.1's transposable arrays): the error's ``error_bits`` drive the columns of
  one weight slice at a time (``error_bits x slices`` cycles per vector), every array's
  rows are converted (the ADCs shared by ``cols_per_adc`` lines as for columns), partial
  sums of the column tiles are added. The layers run one after another: delta_{l-1} needs
  delta_l. Non-MAC nodes pass the error through their derivative on the digital units
  (as many ops as forward); products of two run-time operands cost twice their forward
  MACs (both operands' gradients).
* DFA backward: the output error e (the last layer's output size per sample) is projected
  to every other layer's output by a fixed random matrix B_l held in its own arrays
  (``feedback_bits``-bit entries), a forward-style read of e per sample; all layers at once.
* gradient: dW_l = delta_l^T x_{l-1}, on the digital MAC lanes of the layer's tiles (the
  layer's MACs again), reading x and delta from the buffer.
* update: ``update_fraction`` of the cells (every replica) get ``pulses_per_update`` write
  pulses; a layer's arrays are written in parallel, row by row (``rows x pulses x
  write_pulse_s``). Endurance: ``endurance_cycles / (pulses x update_fraction)`` steps.

Critical path. F = the forward pass (layers in sequence). BP: the error walks back through
the layers, and a layer's gradient and write start when its delta is known: step =
max(F + sum(b), max_l(F + sum of b after l + g_l)). DFA: every layer's delta is known
after its projection: step = F + max_l(p_l + g_l). Each node's latency is its share of
that path (the tail goes to the node that ends it), so the totals add up; the busy times
of overlapped work stay in the busy components.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .family import Counts


@dataclass(frozen=True)
class Layers:
    """Per-node mapping columns (numpy arrays aligned with the workload's nodes)."""

    xbar: np.ndarray          # mapped on crossbars (constant weight, or a reprogrammed dynamic operand)
    static: np.ndarray        # xbar with a constant weight (held for the whole run)
    dynamic: np.ndarray       # MAC node with two run-time operands
    work: np.ndarray          # costs anything at all (not a view)
    copies: np.ndarray        # weight copies (conv groups)
    vectors: np.ndarray       # input vectors per copy
    k: np.ndarray
    n: np.ndarray
    wbits: np.ndarray         # bits per weight as mapped (input_bits for run-time operands)
    slices: np.ndarray        # cells per weight column (bit slices x differential)
    row_tiles: np.ndarray
    col_tiles: np.ndarray
    arrays: np.ndarray        # arrays of one copy of the layer (all groups)
    ref_cols: np.ndarray      # reference columns (offset mode: one per array)
    mapped_cells: np.ndarray
    out_elems: np.ndarray     # output elements of the node
    in_elems: np.ndarray


@dataclass(frozen=True)
class Forward:
    """The forward pass: its counts and what a training step builds on."""

    counts: Counts
    lay: Layers
    r: np.ndarray             # replicas per node
    tiles: int
    feedback: np.ndarray      # DFA's feedback arrays per node
    slots: np.ndarray         # non-MAC lane slots per node on the digital units
    slot_j: np.ndarray        # J per slot
    slot_time: np.ndarray     # s on the digital units


def array_read(cfg, *, vectors: np.ndarray, cycles: np.ndarray, drives: np.ndarray, reads: np.ndarray,
               lines_per_array: np.ndarray, cells: np.ndarray, r: np.ndarray) -> dict:
    """Counts and busy time of applying ``vectors`` to a layer's arrays, ``cycles`` read cycles each.

    Per cycle: ``drives`` lines driven across all arrays (rows of a forward read), ``reads``
    lines converted (columns and reference columns), ``lines_per_array`` lines driven per
    array (they set the column current the ADC sees), ``cells`` cells on driven lines that
    are read. A driven line conducts with probability ``input_one_fraction``; replicas
    ``r`` split the vectors. "crossbar" is the cells' action: NeuroSim's column current per
    conversion, or (ISAAC's ADC) V_read^2 G_mean t_read per conducting cell."""
    act = cfg.input_one
    conversions = vectors * cycles * reads
    steps = np.ceil(vectors / np.maximum(r, 1.0)) * cycles
    if cfg.adc == "isaac":
        cells_action = (vectors * cycles * act * cells, cfg.cell_read_j)
    else:
        with np.errstate(divide="ignore"):
            r_col = (1.0 / (lines_per_array * act * cfg.g_mean)) * cfg.vref / cfg.v_read
        cells_action = (conversions, cfg.sar_c * np.exp(-cfg.sar_k * np.log10(r_col)) * cfg.t_conv)
    return {"conversions": conversions, "drives": vectors * cycles * act * drives, "crossbar": cells_action,
            "t_crossbar": steps * cfg.t_read, "t_adc": steps * cfg.cols_per_adc * cfg.t_conv}


def _feedback_cols_per_entry(cfg) -> int:
    """Columns one of B's ``feedback_bits``-bit entries takes (bit slices, twice when differential)."""
    return math.ceil(cfg.feedback_bits / cfg.cell_bits) * (2 if cfg.differential else 1)


def feedback_arrays(cfg, lay: Layers, batch: int) -> np.ndarray:
    """Arrays holding DFA's B_l (output error size x layer output size per sample), per node."""
    out = np.zeros(len(lay.static))
    idx = np.flatnonzero(lay.static)
    if idx.size < 2:
        return out
    e_size = max(1.0, lay.out_elems[idx[-1]] / max(batch, 1))
    cols_per_entry = _feedback_cols_per_entry(cfg)
    for i in idx[:-1]:
        per_sample = max(1.0, lay.out_elems[i] / max(batch, 1))
        out[i] = math.ceil(e_size / cfg.rows) * math.ceil(per_sample * cols_per_entry / cfg.cols)
    return out


def combine(*actions) -> tuple:
    """One action of several (count, J per count) pairs: the counts add up and the price is
    their count-weighted mean (the same scalar when they share one)."""
    total = sum(np.asarray(n, dtype=np.float64) for n, _ in actions)
    prices = [price for _, price in actions]
    if all(np.isscalar(q) and q == prices[0] for q in prices):
        return total, prices[0]
    energy = sum(np.asarray(n, dtype=np.float64) * q for n, q in actions)
    return total, np.divide(energy, total, out=np.zeros(np.shape(total)), where=total > 0)


def training(workload, cfg, fwd: Forward, *, batch: int) -> Counts:
    """The training step's counts: the forward pass's plus backward, gradient and update
    actions, and each node's share of the step's critical path (module doc)."""
    counts, lay, r = fwd.counts, fwd.lay, fwd.r
    n = len(lay.static)
    f = np.float64
    idx = np.flatnonzero(lay.static)
    if idx.size == 0:
        return replace(counts, notes=[*counts.notes, "training: no layer with weights, nothing to update"])
    d = 2.0 if cfg.differential else 1.0
    bits_s = lay.slices / d                                  # weight bit slices
    err, act_bits = float(cfg.error_bits), float(cfg.input_bits)
    macs = workload.columns["macs"].astype(f)
    layer_tiles = np.where(lay.static, np.maximum(1.0, np.ceil(lay.arrays * r / cfg.arrays_per_tile)), float(fwd.tiles))
    mac_rate = cfg.macs_per_cycle * cfg.clock_hz * layer_tiles
    buffer_rate = cfg.edram_bits * cfg.clock_hz * layer_tiles

    # backward through the nodes: transposed reads (BP) or projections (DFA), digital derivatives
    if cfg.algorithm == "bp":
        on = lay.static & (np.arange(n) > idx[0])
        vec = np.where(on, lay.vectors, 0.0)
        t = array_read(cfg, vectors=vec, cycles=err * bits_s, drives=lay.copies * lay.n * d,
                       reads=lay.copies * lay.k * lay.col_tiles,
                       lines_per_array=np.where(on, lay.n * d / np.maximum(lay.col_tiles, 1.0), 0.0),
                       cells=lay.mapped_cells / np.maximum(bits_s, 1.0), r=r)
        acc = vec * lay.copies * lay.k * (lay.col_tiles - 1.0)
        buf = vec * lay.copies * (lay.n + lay.k) * err
    else:
        on = fwd.feedback > 0
        last_size = max(1.0, lay.out_elems[idx[-1]] / max(batch, 1))
        per_sample = lay.out_elems / max(batch, 1)
        cols_per_entry = _feedback_cols_per_entry(cfg)
        rows_b = math.ceil(last_size / cfg.rows)
        vec = np.where(on, float(batch), 0.0)
        t = array_read(cfg, vectors=vec, cycles=np.full(n, err), drives=np.full(n, last_size),
                       reads=per_sample * cols_per_entry + (fwd.feedback if not cfg.differential else 0.0),
                       lines_per_array=np.full(n, last_size / rows_b),
                       cells=last_size * per_sample * cols_per_entry, r=np.ones(n))
        acc = vec * per_sample * (rows_b - 1.0)
        buf = vec * (last_size + per_sample) * err
    back = np.where(on, np.maximum(t["t_crossbar"] + t["t_adc"], buf / buffer_rate), 0.0)
    nonmac = (np.arange(n) > idx[0]) & ~lay.static
    dyn = nonmac & lay.dynamic
    nonmac_t = np.where(nonmac, fwd.slot_time, 0.0) + np.where(dyn, 2.0 * macs / mac_rate, 0.0)
    back += nonmac_t

    # weight gradients (digital MAC lanes) and updates (cell writes)
    grad_macs = np.where(lay.static, macs, 0.0)
    grad_buf = np.where(lay.static, lay.vectors * lay.copies * (lay.k * act_bits + lay.n * err), 0.0)
    grad_t = np.maximum(grad_macs / mac_rate, grad_buf / buffer_rate)
    writes = np.where(lay.static, lay.mapped_cells * r * cfg.update_fraction, 0.0) * cfg.pulses_per_update
    write_t = np.where(lay.static, np.minimum(lay.k, cfg.rows) * cfg.pulses_per_update * cfg.write_pulse, 0.0)
    tail = grad_t + write_t

    # the step's actions, each added to the forward pass's (count, J per count) in this order
    added = {
        "crossbar": [t["crossbar"]],
        "adc": [(t["conversions"], cfg.adc_j)],
        "dac": [(t["drives"], cfg.dac_energy)],
        "shift_add": [(t["conversions"] + acc, cfg.sa_energy)],
        "buffer": [(buf, cfg.edram_bit_energy), (np.where(nonmac, counts.actions["buffer"][0], 0.0),
                                                 cfg.edram_bit_energy), (grad_buf, cfg.edram_bit_energy)],
        "digital": [(np.where(nonmac, fwd.slots, 0.0), fwd.slot_j), (np.where(dyn, 2.0 * macs, 0.0), cfg.mac_j),
                    (grad_macs, cfg.mac_j)],
        "write": [(writes, cfg.write_energy)],
    }
    busy = {"crossbar": t["t_crossbar"], "adc": t["t_adc"], "buffer": buf / buffer_rate,
            "digital": nonmac_t + grad_macs / mac_rate, "write": write_t}

    # critical path (module doc) and each node's share of it
    fwd_total = float(counts.latency.sum())
    share = counts.latency.copy()
    if cfg.algorithm == "bp":
        after = np.concatenate([np.cumsum(back[::-1])[::-1][1:], [0.0]])   # sum of b over later nodes
        finish = np.where(lay.static, after + tail, 0.0)
        end = max(float(back.sum()), float(finish.max()))
        share += back
        critical = int(np.argmax(finish))
        share[critical] += end - float(back.sum())
        backward_s = float(back.sum())
    else:
        branch = np.where(lay.static, back + tail, back)
        critical = int(np.argmax(branch))
        end = float(branch.max())
        share[critical] += end
        backward_s = float(back.max())
    writes_per_step = cfg.pulses_per_update * cfg.update_fraction
    lifetime = cfg.endurance / writes_per_step if writes_per_step else math.inf
    events = {**counts.events, "adc_conversions": counts.events["adc_conversions"] + t["conversions"],
              "cells_written": counts.events["cells_written"] + writes}
    written = float(events["cells_written"].sum())
    info = dict(counts.info)
    if cfg.algorithm == "dfa":
        info["feedback_arrays"] = int(fwd.feedback.sum())
    info["training"] = {
        "algorithm": cfg.algorithm, "step_latency_s": fwd_total + end, "forward_s": fwd_total,
        "backward_s": backward_s, "update_s": float(tail[lay.static].max()),
        "write_energy_j": float((writes * cfg.write_energy).sum()), "cells_written_per_step": written,
        "endurance_cycles": cfg.endurance, "lifetime_steps": lifetime, "critical_node": workload.names[critical],
    }
    name = "BP" if cfg.algorithm == "bp" else "DFA"
    note = (f"training step ({name}, batch {batch}): forward {fwd_total:.3g} s, backward {backward_s:.3g} s "
            f"({'layers in sequence' if name == 'BP' else 'all layers in parallel'}), step {fwd_total + end:.3g} s; "
            f"{written:.3g} cell writes per step, endurance {cfg.endurance:.3g} cycles -> {lifetime:.3g} steps")
    return replace(counts, actions={k: combine(a, *added.get(k, ())) for k, a in counts.actions.items()},
                   busy={k: v + busy[k] if k in busy else v for k, v in counts.busy.items()}, latency=share,
                   events=events, info=info, notes=[*counts.notes, note])
