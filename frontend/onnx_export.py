"""nvmc IR -> ONNX ModelProto that passes onnx.checker and runs in onnxruntime.

nvmc-domain nodes are first lowered to ONNX ops through their registered lowering
(nvmc.ir.ops), on a copy: the caller's graph is not changed. An untransformed graph
exports to a model whose onnxruntime outputs are bit-identical to the original's.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import helper

from nvmc.ir.errors import VerifyError
from nvmc.ir.files import atomic_write
from nvmc.ir.graph import NVMC_DOMAIN, Graph
from nvmc.ir.ops import NVMC_OPS

from .onnx_types import attr_to_proto, from_array, value_info

PRODUCER = "nvmc"


def lower_nvmc_ops(graph: Graph) -> Graph:
    """A copy of ``graph`` with every nvmc-domain node replaced by its ONNX lowering."""
    if not any(n.domain == NVMC_DOMAIN for n in graph.nodes):
        return graph
    g = graph.copy()
    for node in [n for n in g.topo_nodes() if n.domain == NVMC_DOMAIN]:
        opdef = NVMC_OPS.get(node.op)
        if opdef is None:
            raise VerifyError(f"node '{node.name}': nvmc op '{node.op}' is not registered, so it cannot be exported")
        opdef.lower(node, g)
    g.opsets.pop(NVMC_DOMAIN, None)
    return g


def to_onnx(graph: Graph, *, value_infos: bool = True, large_consts_as_inputs: int | None = None
            ) -> onnx.ModelProto:
    """Export ``graph``. For type checking only, ``large_consts_as_inputs=N`` turns constants
    with more than N elements into typed graph inputs (no data is copied; the model is then
    not runnable as is)."""
    g = lower_nvmc_ops(graph)
    default_opset = g.opsets.get("", 17)
    nodes = []
    for node in g.topo_nodes():
        opset = g.opsets.get(node.domain, default_opset)
        attrs = [attr_to_proto(k, v, node.op, node.domain, opset) for k, v in node.attrs.items()]
        proto = helper.make_node(node.op, list(node.inputs), list(node.outputs),
                                 name=node.name, domain=node.domain or None)
        proto.attribute.extend(attrs)
        if node.meta.get("doc"):
            proto.doc_string = node.meta["doc"]
        nodes.append(proto)
    boundary = set(g.inputs) | set(g.outputs) | set(g.consts)
    infos = [value_info(v.name, v.type) for v in g.values.values()
             if value_infos and v.name not in boundary and v.type.shape is not None] if value_infos else []
    limit = large_consts_as_inputs
    as_inputs = [n for n, a in g.consts.items() if limit is not None and a.size > limit]
    graph_proto = helper.make_graph(
        nodes, g.name,
        inputs=[value_info(n, g.values[n].type) for n in g.inputs + as_inputs],
        outputs=[value_info(n, g.values[n].type) for n in g.outputs],
        initializer=[from_array(a, n) for n, a in g.consts.items() if limit is None or a.size <= limit],
        value_info=infos,
    )
    opsets = [helper.make_opsetid(d, v) for d, v in sorted(g.opsets.items())]
    model = helper.make_model(graph_proto, opset_imports=opsets, producer_name=PRODUCER)
    model.ir_version = max(4, helper.find_min_ir_version_for(opsets, ignore_unknown=True))
    return model


def save_onnx(graph: Graph, path: str | os.PathLike) -> None:
    """Write the graph as ONNX; writes to a temporary file first, then renames (ir/files.py).

    Models over protobuf's 2 GB limit keep their weights in ``<name>.data`` beside the file."""
    model = to_onnx(graph)
    path = Path(path)
    if model.ByteSize() <= 1_800_000_000:
        atomic_write(path, model.SerializeToString())
        return
    def write(f) -> None:
        onnx.save_model(model, f.name, save_as_external_data=True, location=path.name + ".data")
    atomic_write(path, write)
