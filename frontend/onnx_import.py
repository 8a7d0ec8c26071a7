"""ONNX -> nvmc IR.

Steps, in order:
1. read the file (clear errors for missing, empty, non-ONNX, truncated files; external
   data must lie in the model's directory) and run ``onnx.checker``;
2. bind dynamic input dimensions: ``input_shapes={"x": (1, 3, 224, 224)}``; a leading
   symbolic (batch) dimension left unbound becomes 1, with a notice in ``graph.meta``;
3. drop initializers from the graph inputs (they are constants from IR version 4 on);
4. run ONNX shape inference with data propagation;
5. build the Graph, folding ``Constant`` and ``ConstantOfShape`` of a constant shape
   into constants (the zoo models compute their weights this way). A filled constant is
   kept as a broadcast view: zero memory until it is exported.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper

from nvmc.ir.errors import ModelError
from nvmc.ir.graph import Graph
from nvmc.ir.types import TensorType

from .onnx_types import attr_from_proto, to_array, type_from_proto

InputShapes = Mapping[str, Sequence[int]]


def read_model(path: str | os.PathLike, files: list[Path] | None = None) -> onnx.ModelProto:
    """Read an ONNX file with its external data, turning every failure into a ModelError.

    ``files``, when given, receives the paths read (the model and its external-data files)."""
    path = Path(path)
    if not path.exists():
        raise ModelError("file not found", where=str(path), hint="check the path")
    if path.is_dir():
        raise ModelError("is a directory, not an ONNX file", where=str(path))
    data = path.read_bytes()
    if not data:
        raise ModelError("the file is empty", where=str(path), hint="re-export the model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as e:
        raise ModelError(f"not a valid ONNX model (protobuf: {e})", where=str(path),
                         hint="the file is truncated or is not ONNX; re-export it") from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise ModelError("not a valid ONNX model (no graph in it)", where=str(path),
                         hint="the file is truncated or is not ONNX; re-export it")
    external = _load_external_data(model, path)
    if files is not None:
        files += [path, *external]
    return model


def _load_external_data(model: onnx.ModelProto, path: Path) -> list[Path]:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    base = path.parent.resolve()
    targets: list[Path] = []
    for tensor in _get_all_tensors(model):
        if not uses_external_data(tensor):
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        target = (base / location).resolve()
        if base not in target.parents:
            raise ModelError(f"tensor '{tensor.name}' points at external data '{location}' outside "
                             f"the model's directory", where=str(path), hint="keep external data beside the model")
        if not target.exists():
            raise ModelError(f"external data file '{location}' of tensor '{tensor.name}' is missing",
                             where=str(path), hint="copy the data file next to the model")
        targets.append(target)
    if not targets:
        return []
    try:
        onnx.load_external_data_for_model(model, str(base))
    except Exception as e:
        raise ModelError(f"external data cannot be loaded: {e}", where=str(path)) from None
    return sorted(set(targets))


def import_model(model: onnx.ModelProto | str | os.PathLike, input_shapes: InputShapes | None = None,
                 *, source: str | None = None) -> Graph:
    """Import an ONNX model (proto or path) into a Graph."""
    files: list[Path] = []
    if not isinstance(model, onnx.ModelProto):
        source = source or str(model)
        model = read_model(model, files)
    source = source or model.graph.name or "model"
    _check_ops_known(model, source)  # before the checker, whose message names no node
    model, weights = _without_weights(model)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0]
        raise ModelError(f"the model is not valid ONNX: {first}", where=source) from None
    notices = _bind_inputs(model, input_shapes or {}, source, set(weights))
    _drop_initializer_inputs(model)
    try:
        model = onnx.shape_inference.infer_shapes(model, check_type=True, data_prop=True)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelError(f"ONNX shape inference failed: {first}", where=source) from None
    graph = _build(model, source, weights)
    # Every type came from ONNX's own inference: until the graph changes, verify_types need
    # not run it again.
    graph.analysis_cache["onnx-types"] = (graph.version, True)
    graph.meta["notices"] = notices
    graph.meta["source"] = source
    graph.meta["files"] = [str(f) for f in files]  # what a save must not overwrite (ir/files.py)
    return graph


def _without_weights(model: onnx.ModelProto, limit: int = 4096
                     ) -> tuple[onnx.ModelProto, dict[str, onnx.TensorProto]]:
    """A copy of ``model`` without its initializers of more than ``limit`` elements, and those
    (not copied) by name. The checker and shape inference then do not copy the weights
    through C++ and back (seconds for a VGG-sized model); the caller's model is untouched."""
    light = onnx.ModelProto()
    for field, value in model.ListFields():
        if field.name != "graph":
            target = getattr(light, field.name)
            if hasattr(value, "extend"):  # a repeated field
                target.extend(value)
            elif field.message_type is not None:
                target.CopyFrom(value)
            else:
                setattr(light, field.name, value)
    for field, value in model.graph.ListFields():
        if field.name == "initializer":
            continue
        if hasattr(value, "extend"):
            getattr(light.graph, field.name).extend(value)
        else:
            setattr(light.graph, field.name, value)
    weights = {}
    for tensor in model.graph.initializer:
        if math.prod(tensor.dims) > limit and tensor.name not in weights:
            weights[tensor.name] = tensor
        else:
            light.graph.initializer.append(tensor)
    # ONNX needs the weights' types, not their data: they stand in as typed graph inputs.
    listed = {i.name for i in light.graph.input}
    light.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims)
                             for t in weights.values() if t.name not in listed)
    return light, weights


def _bind_inputs(model: onnx.ModelProto, shapes: InputShapes, source: str, weights: set[str]) -> list[str]:
    inits = {t.name for t in model.graph.initializer} | weights
    inputs = {i.name: i for i in model.graph.input if i.name not in inits}
    unknown = set(shapes) - set(inputs)
    if unknown:
        from nvmc.ir.errors import did_you_mean

        name = sorted(unknown)[0]
        raise ModelError(f"--input-shape names '{name}', which is not an input of the model"
                         f"{did_you_mean(name, inputs)}", where=source,
                         hint=f"inputs are: {', '.join(inputs)}")
    notices = []
    for name, vi in inputs.items():
        if not vi.type.HasField("tensor_type"):
            continue
        dims = vi.type.tensor_type.shape.dim
        if name in shapes:
            want = list(shapes[name])
            if len(want) != len(dims):
                raise ModelError(f"--input-shape {name} has {len(want)} dimensions but the input has {len(dims)}",
                                 where=source)
            for d, value in zip(dims, want):
                if d.HasField("dim_value") and d.dim_value != value:
                    raise ModelError(f"--input-shape {name}: dimension fixed at {d.dim_value} by the model, "
                                     f"not {value}", where=source)
                d.Clear()
                d.dim_value = int(value)
        elif dims and not dims[0].HasField("dim_value"):
            label = dims[0].dim_param or "?"
            dims[0].Clear()
            dims[0].dim_value = 1
            notices.append(f"input '{name}': batch dimension '{label}' bound to 1 (set it with --input-shape)")
    return notices


def _drop_initializer_inputs(model: onnx.ModelProto) -> None:
    inits = {t.name for t in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    if len(keep) != len(model.graph.input):
        del model.graph.input[:]
        model.graph.input.extend(keep)
        model.ir_version = max(model.ir_version, 4)


def _check_ops_known(model: onnx.ModelProto, source: str) -> None:
    opsets = {o.domain or "": o.version for o in model.opset_import}
    known = {(f.domain, f.name) for f in model.functions}  # model-local functions, then ops seen
    for i, node in enumerate(model.graph.node):
        domain = node.domain if node.domain != "ai.onnx" else ""
        if (domain, node.op_type) in known:
            continue
        known.add((domain, node.op_type))
        version = opsets.get(domain)
        try:
            onnx.defs.get_schema(node.op_type, version or 1, domain)
        except onnx.defs.SchemaError:
            label = node.name or f"#{i}"
            raise ModelError(
                f"node '{label}' uses op '{node.op_type}'{f' of domain {domain!r}' if domain else ''}, "
                f"which is not an ONNX operator{f' in opset {version}' if version else ''}",
                where=source, hint="nvmc imports standard ONNX ops; export the model with standard ops") from None


def _build(model: onnx.ModelProto, source: str, weights: dict[str, onnx.TensorProto]) -> Graph:
    g_proto = model.graph
    g = Graph(g_proto.name or "main", {o.domain or "": o.version for o in model.opset_import})
    g.meta.update(ir_version=model.ir_version, producer=model.producer_name, doc=model.doc_string)
    types: dict[str, TensorType | None] = {}
    for vi in list(g_proto.input) + list(g_proto.value_info) + list(g_proto.output):
        types[vi.name] = type_from_proto(vi.type, f"value '{vi.name}'")

    for vi in g_proto.input:
        if vi.name in weights:
            continue
        t = types[vi.name]
        if t is None:
            raise ModelError(f"graph input '{vi.name}' has no type", where=source)
        g.add_input(vi.name, t)
    for tensor in list(g_proto.initializer) + list(weights.values()):
        if tensor.name in g.values:
            raise ModelError(f"initializer '{tensor.name}' is defined twice", where=source)
        g.add_const(tensor.name, to_array(tensor))

    folded_inputs: set[str] = set()
    values = g.values
    default_type = TensorType("f32", None)
    for i, node in enumerate(g_proto.node):
        op, inputs, outputs = node.op_type, list(node.input), list(node.output)
        attrs = {a.name: attr_from_proto(a, _where(node, i)) for a in node.attribute} if node.attribute else {}
        if op in ("Constant", "ConstantOfShape") and _fold_constant(g, node, attrs):
            folded_inputs.update(inputs)
            continue
        onnx_name = node.name
        name = onnx_name if onnx_name and not g.has_node(onnx_name) else g.fresh_name(onnx_name or f"{op}_{i}")
        for out in outputs:
            if out and out in values:
                raise ModelError(f"{_where(node, i)}: value '{out}' is defined more than once", where=source)
        for inp in inputs:
            if inp and inp not in values:
                raise ModelError(f"{_where(node, i)}: input '{inp}' is not defined before use", where=source,
                                 hint="the graph must be in topological order with every input defined")
        meta = {"onnx_name": onnx_name} if onnx_name and onnx_name != name else {}
        if node.doc_string:
            meta["doc"] = node.doc_string
        domain = "" if node.domain == "ai.onnx" else node.domain
        g.add_node(op, inputs, outputs, attrs, name=name, domain=domain,
                   types=[types.get(o) or default_type for o in outputs], meta=meta)
    for out in g_proto.output:
        if out.name not in g.values:
            raise ModelError(f"graph output '{out.name}' is never computed", where=source)
        g.outputs.append(out.name)
    for name in folded_inputs:  # e.g. the shape tensors of folded ConstantOfShape weights
        if name and g.is_const(name) and not g.users(name) and name not in g.outputs:
            g.remove_value(name)
    return g


def _where(node: onnx.NodeProto, index: int) -> str:
    return f"node '{node.name or node.op_type + str(index)}' ({node.op_type})"


def _fold_constant(g: Graph, node: onnx.NodeProto, attrs: dict) -> bool:
    """Turn Constant / ConstantOfShape(const) into a graph constant. Returns True if folded."""
    if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return False
    if node.op_type == "Constant":
        (key, value), = attrs.items()
        array = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
                 "value_ints": np.int64, "value_string": np.object_, "value_strings": np.object_}
        if key == "value":
            g.add_const(node.output[0], value)
        elif key in array:
            g.add_const(node.output[0], np.array(value, dtype=array[key]))
        else:
            return False
        return True
    if node.op_type == "ConstantOfShape" and node.input and g.is_const(node.input[0]):
        shape = tuple(int(d) for d in g.consts[node.input[0]].reshape(-1))
        fill = attrs.get("value", np.zeros(1, np.float32)).reshape(-1)[:1]
        g.add_const(node.output[0], np.broadcast_to(fill.reshape(()), shape))
        return True
    return False
