"""Training mode of the crossbar family: one training step (the workload's batch) = forward,
backward, weight gradients and weight update, for backpropagation (BP) or direct feedback
alignment (DFA; paper 7 of shared/reference/seeds.md).

:func:`training` is a function of the workload, the resolved chip (``crossbar.resolve``)
and the forward pass (``crossbar.Forward``: its counts, mapping and array-read rule); it
returns the step's counts. Per crossbar layer l (in topological order; the first layer
needs no backward read):

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
from dataclasses import replace

import numpy as np


def feedback_arrays(cfg, lay, batch: int) -> np.ndarray:
    """Arrays holding DFA's B_l (output error size x layer output size per sample), per node."""
    out = np.zeros(len(lay.static))
    idx = np.flatnonzero(lay.static)
    if idx.size < 2:
        return out
    e_size = max(1.0, lay.out_elems[idx[-1]] / max(batch, 1))
    cols_per_entry = math.ceil(cfg.feedback_bits / cfg.cell_bits) * (2 if cfg.differential else 1)
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


def training(workload, cfg, fwd, batch: int):
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
    add: dict[str, list] = {label: [] for label in counts.actions}      # (count, J per count) added per component
    busy = {k: np.zeros(n) for k in ("crossbar", "adc", "buffer", "digital", "write")}

    # backward through the nodes: transposed reads (BP) or projections (DFA), digital derivatives
    if cfg.algorithm == "bp":
        on = lay.static & (np.arange(n) > idx[0])
        vec = np.where(on, lay.vectors, 0.0)
        col_rows = np.where(on, lay.n * d / np.maximum(lay.col_tiles, 1.0), 0.0)
        t = fwd.read(vec, err * bits_s, lay.copies * lay.n * d, lay.copies * lay.k * lay.col_tiles, col_rows,
                     lay.mapped_cells / np.maximum(bits_s, 1.0), r)
        acc = vec * lay.copies * lay.k * (lay.col_tiles - 1.0)
        buf = vec * lay.copies * (lay.n + lay.k) * err
    else:
        on = fwd.feedback > 0
        last_size = max(1.0, lay.out_elems[idx[-1]] / max(batch, 1))
        per_sample = lay.out_elems / max(batch, 1)
        cols_per_entry = math.ceil(cfg.feedback_bits / cfg.cell_bits) * d
        rows_b = math.ceil(last_size / cfg.rows)
        vec = np.where(on, float(batch), 0.0)
        reads = per_sample * cols_per_entry + (fwd.feedback if not cfg.differential else 0.0)
        t = fwd.read(vec, np.full(n, err), np.full(n, last_size), reads, np.full(n, last_size / rows_b),
                     last_size * per_sample * cols_per_entry, np.ones(n))
        acc = vec * per_sample * (rows_b - 1.0)
        buf = vec * (last_size + per_sample) * err
    add["crossbar"].append(t["crossbar"])
    add["adc"].append((t["conversions"], cfg.adc_j))
    add["dac"].append((t["drives"], cfg.dac_energy))
    add["shift_add"].append((t["conversions"] + acc, cfg.sa_energy))
    add["buffer"].append((buf, cfg.edram_bit_energy))
    busy["crossbar"] += t["t_crossbar"]
    busy["adc"] += t["t_adc"]
    busy["buffer"] += buf / buffer_rate
    back = np.where(on, np.maximum(t["t_crossbar"] + t["t_adc"], buf / buffer_rate), 0.0)
    nonmac = (np.arange(n) > idx[0]) & ~lay.static
    dyn = nonmac & lay.dynamic
    slots, slot_j = fwd.digital["action"]
    add["digital"] += [(np.where(nonmac, slots, 0.0), slot_j), (np.where(dyn, 2.0 * macs, 0.0), cfg.mac_j)]
    add["buffer"].append((np.where(nonmac, counts.actions["buffer"][0], 0.0), cfg.edram_bit_energy))
    nonmac_t = np.where(nonmac, fwd.digital["time"], 0.0) + np.where(dyn, 2.0 * macs / mac_rate, 0.0)
    busy["digital"] += nonmac_t
    back += nonmac_t

    # weight gradients (digital MAC lanes) and updates (cell writes)
    grad_macs = np.where(lay.static, macs, 0.0)
    grad_buf = np.where(lay.static, lay.vectors * lay.copies * (lay.k * act_bits + lay.n * err), 0.0)
    add["digital"].append((grad_macs, cfg.mac_j))
    add["buffer"].append((grad_buf, cfg.edram_bit_energy))
    grad_t = np.maximum(grad_macs / mac_rate, grad_buf / buffer_rate)
    busy["digital"] += grad_macs / mac_rate
    writes = np.where(lay.static, lay.mapped_cells * r * cfg.update_fraction, 0.0) * cfg.pulses_per_update
    add["write"].append((writes, cfg.write_energy))
    write_t = np.where(lay.static, np.minimum(lay.k, cfg.rows) * cfg.pulses_per_update * cfg.write_pulse, 0.0)
    busy["write"] += write_t
    tail = grad_t + write_t

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
    return replace(counts, actions={k: combine(a, *add[k]) for k, a in counts.actions.items()},
                   busy={k: v + busy[k] if k in busy else v for k, v in counts.busy.items()}, latency=share,
                   events=events, info=info, notes=[*counts.notes, note])
