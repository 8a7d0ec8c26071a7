"""Fold the onnx light zoo's ConstantOfShape weights into initializers (onnx_tool_zoo.md, step 1).

    python fold_constantofshape.py SRC DST

SRC and DST are .onnx files, or folders (then every *.onnx in SRC is folded into DST under the
same name). Each ``ConstantOfShape(<initializer>)`` node becomes an initializer
``numpy.full(shape, value)`` named after the node's output (value 0.0 fp32 when the node has no
``value`` attribute); it is also listed in graph.input when the model's IR version is below 4,
as IR v3 requires. Initializers that no node consumes afterwards (the ``*__SHAPE`` tensors,
and one unused 1x1 ``imagenet1k_blobs_queue`` tensor in resnet50 and in zfnet512) are dropped,
together with their graph.input entries. The result passes ``onnx.checker.check_model``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper


def fold(model: onnx.ModelProto) -> dict:
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    keep_nodes, new_inits = [], []
    for node in g.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = numpy_helper.to_array(inits[node.input[0]]).astype(np.int64)
            value = np.zeros(1, np.float32)
            for a in node.attribute:
                if a.name == "value":
                    value = numpy_helper.to_array(a.t).reshape(-1)
            arr = np.full(tuple(int(d) for d in shape), value[0], dtype=value.dtype)
            new_inits.append(numpy_helper.from_array(arr, node.output[0]))
        else:
            keep_nodes.append(node)
    folded = len(g.node) - len(keep_nodes)
    del g.node[:]
    g.node.extend(keep_nodes)
    g.initializer.extend(new_inits)
    if model.ir_version < 4:
        listed = {i.name for i in g.input}
        for t in new_inits:
            if t.name not in listed:
                g.input.append(helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    used = {name for n in g.node for name in n.input} | {o.name for o in g.output}
    dropped = [t.name for t in g.initializer if t.name not in used]
    kept = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    gone = set(dropped)
    inputs = [i for i in g.input if i.name not in gone]
    del g.input[:]
    g.input.extend(inputs)
    return {"folded": folded, "dropped": dropped}


def fold_file(src: Path, dst: Path) -> None:
    model = onnx.load(str(src))
    info = fold(model)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    print(f"{src.name}: {info['folded']} ConstantOfShape folded, dropped {len(info['dropped'])} unused "
          f"initializers ({', '.join(d for d in info['dropped'] if not d.endswith('__SHAPE')) or 'only *__SHAPE'})")


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit(__doc__)
    src, dst = Path(argv[0]), Path(argv[1])
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for p in sorted(src.glob("*.onnx")):
            fold_file(p, dst / p.name)
    else:
        fold_file(src, dst)


if __name__ == "__main__":
    main(sys.argv[1:])
