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
* the weight columns of :func:`nvmc.passes.workload.weight_columns` (codes' and relative
  indices' bits, non-zeros), and for a request ``{"pes": P}`` a MAC node's entries in EIE's
  CSC format over P PEs (the format: nvmc/ir/csc.py; the column names:
  ``nvmc.ir.csc.pe_columns(P)``), computed once for every P the targets ask for.

A workload without these columns (a family called directly on ``analyze(graph)``) makes a
family fall back to assumptions it must state.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import onnx

from nvmc.ir import Graph, NvmcError
from nvmc.ir.graph import gc_paused
from nvmc.passes.workload import Workload, weight_columns

DEFAULT_SAMPLES = 4
MAX_MEASURED_ELEMENTS = 1 << 26  # 256 MB of f32 per tensor: beyond it, measuring would exhaust memory


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
    n = len(workload)
    columns = dict(workload.columns)
    notices = list(workload.notices)
    try:
        columns["activation_density"] = activation_density(graph, workload, samples=samples, seed=seed)
    except NvmcError as e:  # onnxruntime cannot run it (opset <= 6, out-of-range random indices, ...)
        columns["activation_density"] = np.full(n, math.nan)  # the family's stated assumption applies
        notices.append(f"activation density not measured ({e.message}); the target's assumed density is used")
    columns.update(weight_columns(graph, workload, {int(r["pes"]) for r in requests if r.get("pes")}))
    return Workload(list(workload.names), list(workload.ops), columns, notices)


def activation_density(graph: Graph, workload: Workload, *, samples: int = DEFAULT_SAMPLES,
                       seed: int = 0) -> np.ndarray:
    """Per node: the measured non-zero fraction of the activation it reads (NaN: none)."""
    from nvmc.passes.compression_common import find_weights, sample_feeds

    node_of = {nd.name: nd for nd in graph.nodes}
    weighted = {w.node.name: w.index for w in find_weights(graph)[0]}
    # a ConstantOfShape fill is a weight stored as its shape (the onnx zoo's light models), not an activation
    fills = {nd.outputs[0] for nd in graph.nodes if nd.op == "ConstantOfShape" and nd.outputs}
    read: dict[int, str] = {}
    for i, name in enumerate(workload.names):
        node = node_of.get(name)
        if node is None:
            continue
        slot = 0 if name in weighted and weighted[name] != 0 else None
        candidates = [node.inputs[slot]] if slot is not None and node.inputs else node.inputs
        for v in candidates:
            if v and not graph.is_const(v) and v not in fills:
                read[i] = v
                break
    out = np.full(len(workload), math.nan)
    if not read:
        return out
    largest = max((graph.values[v].type.numel() or 0 for v in graph.values if not graph.is_const(v)), default=0)
    if largest > MAX_MEASURED_ELEMENTS:
        raise NvmcError(f"a tensor of {largest:,} elements is too large to run the model for measuring "
                        f"(limit {MAX_MEASURED_ELEMENTS:,})")
    wanted = sorted(set(read.values()))
    with gc_paused():
        pieces = _pieces(graph, wanted)
    nonzero = dict.fromkeys(wanted, 0)
    size = dict.fromkeys(wanted, 0)
    for feeds in sample_feeds(graph, samples, seed):
        values, seen = dict(feeds), set()
        for step in [None, *pieces]:
            if step is not None:
                inputs, session, done = step
                got = session.run({v: values[v] for v in inputs})
                values.update(got)
            for v, a in (feeds if step is None else got).items():
                if v in nonzero and v not in seen:
                    seen.add(v)
                    nonzero[v] += int(np.count_nonzero(a))
                    size[v] += int(np.asarray(a).size)
            for v in () if step is None else done:  # no later piece reads it
                values.pop(v, None)
    for i, v in read.items():
        if size[v]:
            out[i] = nonzero[v] / size[v]
    return out


PIECE_NODES = 2048  # onnxruntime's session start and many-output runs grow faster than linearly


def _pieces(graph: Graph, wanted: Sequence[str]) -> list[tuple[list[str], Any, list[str]]]:
    """The graph as onnxruntime sessions over consecutive runs of at most PIECE_NODES nodes
    (in topological order): [(values it reads, session, values no later piece reads)]. A graph
    of up to PIECE_NODES nodes (or with subgraphs) is one session on the graph itself, exposing
    the ``wanted`` values. A piece reads values of earlier pieces, graph inputs and large
    constants; it returns those later pieces read, the graph's outputs and the ``wanted`` ones.
    The graph is exported to ONNX once; the pieces are slices of its node list."""
    from nvmc.frontend import lower_nvmc_ops, to_onnx
    from nvmc.frontend.onnx_types import value_info
    from nvmc.frontend.runtime import INLINE_WEIGHTS, Session

    if len(graph) <= PIECE_NODES or any(n.implicit_inputs for n in graph.nodes):
        return [(list(graph.inputs), Session(graph, "calibration graph",
                                             extra_outputs=[v for v in wanted if v not in graph.inputs]), [])]
    lowered = lower_nvmc_ops(graph)
    model = to_onnx(lowered, large_consts_as_inputs=INLINE_WEIGHTS)
    nodes = model.graph.node
    fixed = {n: np.ascontiguousarray(a) for n, a in lowered.consts.items() if a.size > INLINE_WEIGHTS}
    inits = {t.name: t for t in model.graph.initializer}
    infos = {vi.name: vi for vi in model.graph.value_info}
    want = set(wanted) | set(lowered.outputs)
    last_use: dict[str, int] = {}
    for i, node in enumerate(nodes):
        for v in node.input:
            last_use[v] = i
    out = []
    for start in range(0, len(nodes), PIECE_NODES):
        part, end = nodes[start:start + PIECE_NODES], start + PIECE_NODES
        made = list(dict.fromkeys(o for node in part for o in node.output if o))
        made_set = set(made)
        reads = list(dict.fromkeys(v for node in part for v in node.input if v and v not in made_set))
        outputs = [o for node in part for o in node.output if o and (o in want or last_use.get(o, -1) >= end)]
        if not outputs:  # a piece nothing reads (dead code) is not run
            continue
        returned = set(outputs)
        inputs = [v for v in reads if v not in inits]
        piece = onnx.helper.make_graph(
            part, f"{model.graph.name}_{start}", [value_info(v, lowered.values[v].type) for v in inputs],
            [value_info(o, lowered.values[o].type) for o in outputs], [inits[v] for v in reads if v in inits],
            value_info=[infos[o] for o in made if o in infos and o not in returned])
        proto = onnx.helper.make_model(piece, opset_imports=model.opset_import, producer_name=model.producer_name)
        proto.ir_version = model.ir_version
        runner = Session.from_proto(proto, {v: fixed[v] for v in inputs if v in fixed}, label="calibration piece")
        out.append(([v for v in inputs if v not in fixed], runner, [v for v in [*inputs, *outputs]
                                                                    if v not in fixed and last_use.get(v, -1) < end]))
    return out
