"""nvmc IR -> ONNX ModelProto that passes onnx.checker and runs in onnxruntime.

nvmc-domain nodes are first lowered to ONNX ops through their registered lowering
(nvmc.ir.dialect), on a copy: the caller's graph is not changed. An untransformed graph
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
from nvmc.ir.dialect import NVMC_OPS

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


EXTERNAL_DATA_BYTES = 1_500_000_000  # protobuf refuses messages over 2 GiB; weights go beside the model sooner


def save_onnx(graph: Graph, path: str | os.PathLike, *, overwrite_inputs: bool = False,
              external_data_bytes: int = EXTERNAL_DATA_BYTES) -> list[Path]:
    """Write the graph as ONNX, through a temporary file renamed into place (ir/files.py).

    When the constants hold more than ``external_data_bytes``, those above 1 KiB go to
    ``<name>.data`` beside the model (ONNX external data), written the same way, first.
    Returns the files written."""
    model = to_onnx(graph)
    path = Path(path)
    if sum(a.nbytes for a in graph.consts.values()) <= external_data_bytes:
        atomic_write(path, model.SerializeToString(), overwrite_inputs=overwrite_inputs)
        return [path]
    from onnx.external_data_helper import _get_all_tensors, set_external_data

    data_path = path.with_name(path.name + ".data")
    big = [t for t in _get_all_tensors(model) if t.HasField("raw_data") and len(t.raw_data) > 1024]

    def write_data(f) -> None:
        offset = 0
        for tensor in big:
            f.write(tensor.raw_data)
            set_external_data(tensor, data_path.name, offset, len(tensor.raw_data))
            offset += len(tensor.raw_data)
            tensor.ClearField("raw_data")

    atomic_write(data_path, write_data, overwrite_inputs=overwrite_inputs)
    atomic_write(path, model.SerializeToString(), overwrite_inputs=overwrite_inputs)
    return [path, data_path]
