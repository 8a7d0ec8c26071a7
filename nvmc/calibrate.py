"""Calibration: workload columns measured by running the model, for families that ask.

Backends see only the workload table (they must not import the frontend or the passes), so
figures that need the graph's data are measured here, by the driver, and handed over as
extra workload columns. A family asks by defining ``calibration(target) -> dict | None``;
:func:`nvmc.compile` then calls :func:`calibrate` with the requests of all targets and costs
every target on the calibrated workload. The channel and its columns:

* ``activation_density`` (every request): per node, the measured non-zero fraction of the
  activation it reads (a MAC node's data operand, else its first non-constant input),
  averaged over ``samples`` seeded random draws of the graph inputs (floats ~ N(0, 1), as
  the numerics harness draws them) run in onnxruntime. NaN where nothing was measured.
* ``weight_index_bits``: bits per stored weight entry: the ``#codebook`` index bits of a
  shared weight, else the weight's element bits.
* ``csc_rel_bits``: the ``#codebook`` relative-index bits (EIE: 4; 4 when not annotated).
* ``weight_nonzeros``: non-zeros of a MAC node's weight matrix (bias excluded).
* for a request ``{"pes": P}``: ``pe_entries_max_P`` and ``pe_entries_sum_P``: a MAC node's
  weight as EIE stores it over P PEs (output row r on PE r mod P, each PE holding its rows
  in compressed sparse columns with relative row indices and padding entries): the largest
  PE's entries and all PEs' entries. Measured from the actual weights, so load imbalance
  is the data's, not an assumption.

A workload without these columns (a family called directly on ``analyze(graph)``) makes a
family fall back to assumptions it must state.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from nvmc.ir import Graph
from nvmc.passes.workload import Workload, csc_entries

DEFAULT_SAMPLES = 4


def requests_of(targets: Sequence) -> list[dict]:
    """What the targets' families ask to be measured (empty: nothing)."""
    from nvmc.backends import family_module

    out = []
    for t in targets:
        ask = getattr(family_module(t.family), "calibration", None)
        request = ask(t) if ask is not None else None
        if request is not None:
            out.append(dict(request))
    return out


def calibrate(graph: Graph, workload: Workload, requests: Sequence[Mapping], *, samples: int = DEFAULT_SAMPLES,
              seed: int = 0) -> Workload:
    """A copy of ``workload`` with the measured columns of the module doc."""
    from nvmc.passes.compression_common import find_weights

    n = len(workload)
    index = {name: i for i, name in enumerate(workload.names)}
    columns = dict(workload.columns)
    columns["activation_density"] = activation_density(graph, workload, samples=samples, seed=seed)
    bits = np.zeros(n)
    rel = np.full(n, 4.0)
    weights, _ = find_weights(graph)
    matrices: dict[int, np.ndarray] = {}
    for w in weights:
        i = index.get(w.node.name)
        if i is None:
            continue
        t = graph.values[w.const].type
        cb = t.annotation("codebook") if t.annotations else None
        quant = t.annotation("quant") if t.annotations else None
        if cb is not None:
            bits[i] = float(cb.get("index_bits"))
            rel[i] = float(cb.get("rel_bits", 4))
        elif quant is not None and quant.get("bits") is not None:
            bits[i] = float(quant.get("bits"))
        else:
            bits[i] = 8.0 * graph.consts[w.const].dtype.itemsize
        array = graph.consts[w.const]
        matrices[i] = np.moveaxis(array, w.out_axis, 0).reshape(array.shape[w.out_axis], -1)
    columns["weight_index_bits"] = bits
    columns["weight_nonzeros"] = np.array([np.count_nonzero(matrices[i]) if i in matrices else 0 for i in range(n)],
                                          dtype=np.float64)
    columns["csc_rel_bits"] = rel
    for pes in sorted({int(r["pes"]) for r in requests if r.get("pes")}):
        top, total = np.zeros(n), np.zeros(n)
        for i, m in matrices.items():
            per_pe = pe_entries(m, pes, int(rel[i]))
            top[i], total[i] = per_pe.max(), per_pe.sum()
        columns[f"pe_entries_max_{pes}"], columns[f"pe_entries_sum_{pes}"] = top, total
    return Workload(list(workload.names), list(workload.ops), columns, list(workload.notices))


def pe_entries(matrix: np.ndarray, pes: int, rel_bits: int) -> np.ndarray:
    """CSC entries (non-zeros + padding) of each PE when the [outputs, inputs] ``matrix``'s
    row r lives on PE r mod ``pes`` (EIE's interleaving)."""
    out = np.zeros(pes, dtype=np.int64)
    for p in range(min(pes, matrix.shape[0])):
        out[p] = csc_entries(matrix[p::pes], 0, rel_bits)[0]
    return out


def activation_density(graph: Graph, workload: Workload, *, samples: int = DEFAULT_SAMPLES,
                       seed: int = 0) -> np.ndarray:
    """Per node: the measured non-zero fraction of the activation it reads (NaN: none)."""
    from nvmc.passes.compression_common import OrtGraph, find_weights, sample_feeds

    node_of = {nd.name: nd for nd in graph.nodes}
    weighted = {w.node.name: w.index for w in find_weights(graph)[0]}
    read: dict[int, str] = {}
    for i, name in enumerate(workload.names):
        node = node_of.get(name)
        if node is None:
            continue
        slot = 0 if name in weighted and weighted[name] != 0 else None
        candidates = [node.inputs[slot]] if slot is not None and node.inputs else node.inputs
        for v in candidates:
            if v and not graph.is_const(v):
                read[i] = v
                break
    out = np.full(len(workload), math.nan)
    if not read:
        return out
    wanted = sorted(set(read.values()))
    session = OrtGraph(graph, [v for v in wanted if v not in graph.inputs])
    nonzero = dict.fromkeys(wanted, 0)
    size = dict.fromkeys(wanted, 0)
    for feeds in sample_feeds(graph, samples, seed):
        values = {**feeds, **session.run(feeds)}
        for v in wanted:
            a = values.get(v)
            if a is None:
                continue
            nonzero[v] += int(np.count_nonzero(a))
            size[v] += int(np.asarray(a).size)
    for i, v in read.items():
        if size[v]:
            out[i] = nonzero[v] / size[v]
    return out
