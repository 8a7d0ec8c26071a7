"""Count Conv/Gemm/MatMul MACs without onnx-tool (onnx_tool_zoo.md, step 3).

    python pure_macs.py DIR OUT.json

Shapes come from ``onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)``
only (works on the original ConstantOfShape files as well as the folded ones):

    Conv   = N * Cout * Hout * Wout * (Cin / group) * kh * kw     (any number of spatial dims)
    Gemm   = M * N * K                                           (transA / transB honoured)
    MatMul = batch * M * N * K                                   (numpy broadcasting of batch dims)

No bias term. Every node's output shapes are recorded too (keyed by its first output), so that
assemble.py can compare them with onnx-tool's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx


def shapes_of(model: onnx.ModelProto) -> dict[str, list[int]]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    g = inferred.graph
    shapes = {t.name: [int(d) for d in t.dims] for t in g.initializer}
    for vi in [*g.input, *g.value_info, *g.output]:
        dims = vi.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[vi.name] = [int(d.dim_value) for d in dims]
    return shapes


def attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def node_macs(node: onnx.NodeProto, shapes: dict[str, list[int]]) -> int | None:
    op = node.op_type
    if op == "Conv":
        x, w, y = shapes[node.input[0]], shapes[node.input[1]], shapes[node.output[0]]
        group = int(attr(node, "group", 1))
        n, cin, cout = x[0], x[1], w[0]
        assert cin % group == 0 and w[1] == cin // group and y[:2] == [n, cout], (node.output, x, w, y)
        spatial_out, kernel = y[2:], w[2:]
        return int(n * cout * np.prod(spatial_out, dtype=np.int64) * (cin // group) * np.prod(kernel, dtype=np.int64))
    if op == "Gemm":
        a, b = shapes[node.input[0]], shapes[node.input[1]]
        m, k = (a[1], a[0]) if attr(node, "transA", 0) else (a[0], a[1])
        k2, n = (b[1], b[0]) if attr(node, "transB", 0) else (b[0], b[1])
        assert k == k2 and shapes[node.output[0]] == [m, n], (node.output, a, b)
        return int(m * n * k)
    if op == "MatMul":
        a, b = list(shapes[node.input[0]]), list(shapes[node.input[1]])
        a = [1] + a if len(a) == 1 else a
        b = b + [1] if len(b) == 1 else b
        assert a[-1] == b[-2], (node.output, a, b)
        batch = np.broadcast_shapes(tuple(a[:-2]), tuple(b[:-2]))
        return int(np.prod(batch, dtype=np.int64) * a[-2] * b[-1] * a[-1])
    return None


def count(path: Path) -> dict:
    model = onnx.load(str(path))
    shapes = shapes_of(model)
    nodes, total, per_op = [], 0, {}
    for node in model.graph.node:
        rec = {"op": node.op_type, "outputs": list(node.output),
               "output_shapes": [shapes.get(o) for o in node.output]}
        macs = node_macs(node, shapes)
        if macs is not None:
            rec["macs"] = macs
            total += macs
            per_op[node.op_type] = per_op.get(node.op_type, 0) + macs
        nodes.append(rec)
    return {"macs": total, "per_op_type_macs": dict(sorted(per_op.items())), "nodes": nodes}


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit(__doc__)
    models = {}
    for p in sorted(Path(argv[0]).glob("*.onnx")):
        models[p.stem] = count(p)
        print(f"{p.stem}: {models[p.stem]['macs']:,} Conv+Gemm+MatMul MACs (no bias)", flush=True)
    Path(argv[1]).write_text(json.dumps({"onnx_version": onnx.__version__, "models": models}, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
