"""Training mode of the crossbar family: one training step (the workload's batch) = forward,
backward, weight gradients and weight update, for backpropagation (BP) or direct feedback
alignment (DFA; paper 7 of shared/reference/seeds.md).

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
after its projection: step = F + max_l(p_l + g_l). Each node's ``node_latency`` is its
share of that path (the tail goes to the node that ends it), so the totals add up; the
busy times of overlapped work stay in the ``latency`` components.
"""

from __future__ import annotations

import math

import numpy as np


def feedback_arrays(cfg, lay, batch: int) -> np.ndarray:
    """Arrays holding DFA's B_l (output error size x layer output size per sample), per node."""
    out = np.zeros(len(lay.static))
    idx = np.flatnonzero(lay.static)
    if idx.size < 2:
        return out
    last = idx[-1]
    e_size = max(1.0, lay.out_elems[last] / max(batch, 1))
    cols_per_entry = math.ceil(cfg.feedback_bits / cfg.cell_bits) * (2 if cfg.differential else 1)
    for i in idx[:-1]:
        per_sample = max(1.0, lay.out_elems[i] / max(batch, 1))
        out[i] = math.ceil(e_size / cfg.rows) * math.ceil(per_sample * cols_per_entry / cfg.cols)
    return out


def add_training(workload, cfg, lay, r, tiles, batch, feedback, energy, latency, events, info, notes, digital,
                 dyn_digital) -> np.ndarray:
    """Add backward, gradient and update costs (in place) and return each node's share of the
    training step's critical path (module doc)."""
    from .crossbar import crossbar_read

    n = len(lay.static)
    f = np.float64
    forward = np.maximum.reduce([latency["crossbar"] + latency["adc"], latency["buffer"], latency["interconnect"],
                                 latency["digital"]]) + latency["write"]
    idx = np.flatnonzero(lay.static)
    if idx.size == 0:
        notes.append("training: no layer with weights, nothing to update")
        return forward
    first, last = idx[0], idx[-1]
    after_first = np.arange(n) > first
    d = 2.0 if cfg.differential else 1.0
    bits_s = lay.slices / d                                  # weight bit slices
    err = float(cfg.error_bits)
    act_bits = float(cfg.input_bits)
    macs = workload.columns["macs"].astype(f)
    layer_tiles = np.where(lay.static, np.maximum(1.0, np.ceil(lay.arrays * r / cfg.arrays_per_tile)), float(tiles))
    mac_rate = cfg.digital_macs_per_cycle * cfg.clock_hz * layer_tiles

    add = {k: np.zeros(n) for k in energy}
    busy = {k: np.zeros(n) for k in ("crossbar", "adc", "buffer", "digital", "write")}

    # backward through the nodes: transposed reads (BP) or projections (DFA), digital derivatives
    back = np.zeros(n)
    if cfg.algorithm == "bp":
        bwd = lay.static & after_first
        vec = np.where(bwd, lay.vectors, 0.0)
        col_rows = np.where(bwd, lay.n * d / np.maximum(lay.col_tiles, 1.0), 0.0)
        t = crossbar_read(cfg, vec, err * bits_s, lay.copies * lay.n * d, lay.copies * lay.k * lay.col_tiles,
                          col_rows, lay.mapped_cells / np.maximum(bits_s, 1.0), r)
        acc = vec * lay.copies * lay.k * (lay.col_tiles - 1.0)
        buf = vec * lay.copies * (lay.n + lay.k) * err
        _accumulate(add, busy, t, acc * cfg.sa_energy, buf, cfg, layer_tiles)
        back += np.where(bwd, np.maximum(t["t_crossbar"] + t["t_adc"], buf / (cfg.edram_bits * cfg.clock_hz *
                                                                               layer_tiles)), 0.0)
        events["adc_conversions"] = events["adc_conversions"] + t["conversions"]
    else:
        proj = feedback > 0
        last_size = max(1.0, lay.out_elems[last] / max(batch, 1))
        per_sample = lay.out_elems / max(batch, 1)
        cols_per_entry = math.ceil(cfg.feedback_bits / cfg.cell_bits) * d
        rows_b = math.ceil(last_size / cfg.rows)
        vec = np.where(proj, float(batch), 0.0)
        reads = per_sample * cols_per_entry + (feedback if not cfg.differential else 0.0)
        t = crossbar_read(cfg, vec, np.full(n, err), np.full(n, last_size), reads, np.full(n, last_size / rows_b),
                          last_size * per_sample * cols_per_entry, np.ones(n))
        acc = vec * per_sample * (rows_b - 1.0)
        buf = vec * (last_size + per_sample) * err
        _accumulate(add, busy, t, acc * cfg.sa_energy, buf, cfg, layer_tiles)
        back += np.where(proj, np.maximum(t["t_crossbar"] + t["t_adc"], buf / (cfg.edram_bits * cfg.clock_hz *
                                                                                layer_tiles)), 0.0)
        events["adc_conversions"] = events["adc_conversions"] + t["conversions"]
        info["feedback_arrays"] = int(feedback.sum())
    nonmac_bwd = after_first & ~lay.static
    add["digital"] += np.where(nonmac_bwd, digital["energy"], 0.0)
    add["buffer"] += np.where(nonmac_bwd, energy["buffer"], 0.0)
    dyn_e = np.where(nonmac_bwd & lay.dynamic, 2.0 * macs * cfg.mac_energy, 0.0)
    dyn_t = np.where(nonmac_bwd & lay.dynamic, 2.0 * macs / mac_rate, 0.0)
    add["digital"] += dyn_e
    nonmac_t = np.where(nonmac_bwd, digital["time"], 0.0) + dyn_t
    busy["digital"] += nonmac_t
    back += nonmac_t

    # weight gradients (digital MAC lanes) and updates (cell writes)
    grad_macs = np.where(lay.static, macs, 0.0)
    grad_buf = np.where(lay.static, lay.vectors * lay.copies * (lay.k * act_bits + lay.n * err), 0.0)
    add["digital"] += grad_macs * cfg.mac_energy
    add["buffer"] += grad_buf * cfg.edram_bit_energy
    grad_t = np.maximum(grad_macs / mac_rate, grad_buf / (cfg.edram_bits * cfg.clock_hz * layer_tiles))
    busy["digital"] += grad_macs / mac_rate
    cells = np.where(lay.static, lay.mapped_cells * r * cfg.update_fraction, 0.0)
    add["write"] += cells * cfg.pulses_per_update * cfg.write_energy
    write_t = np.where(lay.static, np.minimum(lay.k, cfg.rows) * cfg.pulses_per_update * cfg.write_pulse, 0.0)
    busy["write"] += write_t
    tail = grad_t + write_t
    events["cells_written"] = events["cells_written"] + cells * cfg.pulses_per_update

    # critical path (module doc) and each node's share of it
    fwd_total = float(forward.sum())
    share = forward.copy()
    if cfg.algorithm == "bp":
        chain = back.copy()
        after = np.concatenate([np.cumsum(chain[::-1])[::-1][1:], [0.0]])   # sum of b over later nodes
        finish = np.where(lay.static, after + tail, 0.0)
        end = max(float(chain.sum()), float(finish.max()))
        share += chain
        critical = int(np.argmax(finish))
        share[critical] += end - float(chain.sum())
        backward_s = float(chain.sum())
    else:
        branch = np.where(lay.static, back + tail, back)
        critical = int(np.argmax(branch))
        end = float(branch.max())
        share[critical] += end
        backward_s = float(back.max())
    for k, v in add.items():
        energy[k] = energy[k] + v
    for k, v in busy.items():
        latency[k] = latency[k] + v
    writes_per_step = cfg.pulses_per_update * cfg.update_fraction
    lifetime = cfg.endurance / writes_per_step if writes_per_step else math.inf
    info["training"] = {
        "algorithm": cfg.algorithm, "step_latency_s": fwd_total + end, "forward_s": fwd_total,
        "backward_s": backward_s, "update_s": float(tail[lay.static].max()),
        "write_energy_j": float(add["write"].sum()), "cells_written_per_step": float(events["cells_written"].sum()),
        "endurance_cycles": cfg.endurance, "lifetime_steps": lifetime,
        "critical_node": workload.names[critical],
    }
    name = "BP" if cfg.algorithm == "bp" else "DFA"
    notes.append(f"training step ({name}, batch {batch}): forward {fwd_total:.3g} s, backward {backward_s:.3g} s "
                 f"({'layers in sequence' if name == 'BP' else 'all layers in parallel'}), "
                 f"step {fwd_total + end:.3g} s;"
                 f" {info['training']['cells_written_per_step']:.3g} cell writes per step, endurance "
                 f"{cfg.endurance:.3g} cycles -> {lifetime:.3g} steps")
    return share


def _accumulate(add, busy, t, acc_energy, buf_bits, cfg, layer_tiles) -> None:
    add["crossbar"] += t["crossbar"]
    add["adc"] += t["adc"]
    add["dac"] += t["dac"]
    add["shift_add"] += t["shift_add"] + acc_energy
    add["buffer"] += buf_bits * cfg.edram_bit_energy
    busy["crossbar"] += t["t_crossbar"]
    busy["adc"] += t["t_adc"]
    busy["buffer"] += buf_bits / (cfg.edram_bits * cfg.clock_hz * layer_tiles)
