"""ONNX -> nvmc IR.

Steps, in order:
1. read the file (clear errors for missing, empty, non-ONNX, truncated files; external
   data must lie in the model's directory) and run ``onnx.checker``;
2. bind dynamic input dimensions: by input, ``input_shapes={"x": (1, 3, 224, 224)}``, or
   by the dimension's name for every input that has it, ``dims={"seq": 128}``; a leading
   symbolic (batch) dimension left unbound becomes 1, with a notice in ``graph.meta``.
   ``input_values={"sr": 16000}`` makes an input a constant, and an ``If`` whose condition
   then has a constant value is replaced by the branch it takes (silero-vad's sample rate);
3. drop initializers from the graph inputs (they are constants from IR version 4 on);
4. run ONNX shape inference with data propagation;
5. build the Graph, folding ``Constant`` and ``ConstantOfShape`` of a constant shape
   into constants (the zoo models compute their weights this way). A filled constant is
   kept as a broadcast view: zero memory until it is exported.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import helper

from nvmc.ir.errors import ModelError, did_you_mean
from nvmc.ir.files import note_input, read_input
from nvmc.ir.graph import Graph, gc_paused
from nvmc.ir.limits import MAX_ELEMENTS
from nvmc.ir.types import TensorType, numpy_dtype

from .onnx_types import attr_from_proto, to_array, type_from_proto
from .typecheck import _schema, infer_strict

InputShapes = Mapping[str, Sequence[int]]


def read_model(path: str | os.PathLike, files: list[Path] | None = None) -> onnx.ModelProto:
    """Read an ONNX file with its external data, turning every failure into a ModelError.

    ``files``, when given, receives the paths read (the model and its external-data files)."""
    path = Path(path)
    data = read_input(path, "model file", error=ModelError)
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
        if not location or "\x00" in location:
            raise ModelError(f"tensor '{tensor.name}' has external data at {location!r}, which is not a file name",
                             where=str(path), hint="re-export the model with its weights inside or beside it")
        target = (base / location).resolve()
        if base not in target.parents:
            raise ModelError(f"tensor '{tensor.name}' points at external data '{location}' outside "
                             f"the model's directory", where=str(path), hint="keep external data beside the model")
        if not target.exists():
            raise ModelError(f"external data file '{location}' of tensor '{tensor.name}' is missing",
                             where=str(path), hint="copy the data file next to the model")
        if not target.is_file():  # a FIFO would block the reader, a device never end
            raise ModelError(f"external data '{location}' of tensor '{tensor.name}' is not a regular file",
                             where=str(path), hint="keep the weights in a regular file beside the model")
        targets.append(target)
    if not targets:
        return []
    try:
        onnx.load_external_data_for_model(model, str(base))
    except Exception as e:
        raise ModelError(f"external data cannot be loaded: {e}", where=str(path)) from None
    for target in set(targets):
        note_input(target)
    return sorted(set(targets))


def import_model(model: onnx.ModelProto | str | os.PathLike, input_shapes: InputShapes | None = None,
                 *, source: str | None = None, dims: Mapping[str, int] | None = None,
                 input_values: Mapping[str, object] | None = None) -> Graph:
    """Import an ONNX model (proto or path) into a Graph."""
    try:
        return _import_model(model, input_shapes, source=source, dims=dims or {}, values=input_values or {})
    except UnicodeError as e:  # protobuf does not check a string field's UTF-8 until it is read
        where = source or (None if isinstance(model, onnx.ModelProto) else str(model))
        raise ModelError(f"the model holds text that is not UTF-8 ({e.reason})", where=where,
                         hint="the file is damaged; re-export the model") from None


def _import_model(model: onnx.ModelProto | str | os.PathLike, input_shapes: InputShapes | None,
                  *, source: str | None, dims: Mapping[str, int], values: Mapping[str, object]) -> Graph:
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
    except UnicodeError as e:  # the checker's own message quotes text of the model that is not UTF-8
        raise ModelError(f"the model is not valid ONNX: it holds text that is not UTF-8 ({e.reason})", where=source,
                         hint="the file is damaged; re-export the model") from None
    inits = {t.name for t in model.graph.initializer} | set(weights)
    inputs = {i.name: i for i in model.graph.input if i.name not in inits}
    notices = _bind_inputs(model, inputs, input_shapes or {}, dims, source)
    if values:
        notices += _bind_values(model, inputs, values, source)
    _drop_initializer_inputs(model)
    model = _infer(model, source)
    taken = _fold_ifs(model) if any(n.op_type == "If" for n in model.graph.node) else 0
    if taken:  # the bound shapes and values decide these Ifs: their branches replace them
        notices.append(f"{taken} If node(s) whose condition is constant (given the bound shapes and values) "
                       "replaced by the branch they take")
        model = _infer(model, source)
    with gc_paused():  # 100k nodes: the collector's full passes would make this superlinear
        graph = _build(model, source, weights)
    # Every type came from ONNX's own inference: until the graph changes, verify_types need
    # not run it again.
    graph.analysis_cache["onnx-types"] = (graph.version, True)
    graph.meta["notices"] = notices
    graph.meta["source"] = source
    graph.meta["files"] = [str(f) for f in files]  # what a save must not overwrite (ir/files.py)
    return graph


def _infer(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    """ONNX shape inference, then the shape arithmetic it leaves open (``_resolve_shape_arithmetic``)."""
    return _resolve_shape_arithmetic(infer_strict(model, "ONNX shape inference failed", ModelError, source))


def _without_weights(model: onnx.ModelProto, limit: int = 4096
                     ) -> tuple[onnx.ModelProto, dict[str, onnx.TensorProto]]:
    """A copy of ``model`` without its initializers of more than ``limit`` elements, and those
    (not copied) by name. The checker and shape inference then do not copy the weights
    through C++ and back (seconds for a VGG-sized model); the caller's model is untouched."""
    light = onnx.ModelProto()
    _copy_fields(model, light, but="graph")
    _copy_fields(model.graph, light.graph, but="initializer")
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


def _copy_fields(src, dst, but: str) -> None:
    """Copy every field of the message ``src`` but one into ``dst``."""
    for field, value in src.ListFields():
        if field.name == but:
            continue
        if hasattr(value, "extend"):  # a repeated field
            getattr(dst, field.name).extend(value)
        elif field.message_type is not None:
            getattr(dst, field.name).CopyFrom(value)
        else:
            setattr(dst, field.name, value)


def _not_an_input(option: str, name: str, inputs: Mapping[str, onnx.ValueInfoProto], source: str) -> ModelError:
    return ModelError(f"{option} names '{name}', which is not an input of the model{did_you_mean(name, inputs)}",
                      where=source, hint=f"inputs are: {', '.join(inputs)}")


def _bind_inputs(model: onnx.ModelProto, inputs: dict[str, onnx.ValueInfoProto], shapes: InputShapes,
                 dims: Mapping[str, int], source: str) -> list[str]:
    unknown = sorted(set(shapes) - set(inputs))
    if unknown:
        raise _not_an_input("--input-shape", unknown[0], inputs, source)
    shapes = {**_shapes_from_dims(inputs, dims, source), **shapes}
    named: dict[str, tuple[int, str]] = {}
    batch: dict[str, list[str]] = {}  # leading dimension left open -> the inputs it was bound to 1 in
    notices = []
    for name, vi in inputs.items():
        if not vi.type.HasField("tensor_type"):
            continue
        shape = vi.type.tensor_type.shape.dim
        if name in shapes:
            want = list(shapes[name])
            if not all(isinstance(v, (int, np.integer)) and 0 <= v <= MAX_ELEMENTS for v in want):
                raise ModelError(f"--input-shape {name}={'x'.join(map(str, want))}: dimensions must be integers "
                                 f"from 0 (an empty tensor, such as a KV cache before the first token) to 2**40",
                                 where=source)
            if len(want) != len(shape):
                raise ModelError(f"--input-shape {name} has {len(want)} dimensions but the input has {len(shape)}",
                                 where=source)
            for d, value in zip(shape, want):
                if d.HasField("dim_value") and d.dim_value >= 0 and d.dim_value != value:  # -1: dynamic
                    raise ModelError(f"--input-shape {name}: dimension fixed at {d.dim_value} by the model, "
                                     f"not {value}", where=source)
                if _NAMED_DIM.match(d.dim_param):  # one name, one value: 'seq' of input_ids and attention_mask
                    bound = named.setdefault(d.dim_param, (int(value), name))
                    if bound[0] != value:
                        raise ModelError(f"dimension '{d.dim_param}' is {bound[0]} for input '{bound[1]}' but "
                                         f"{value} for input '{name}'", where=source,
                                         hint=f"bind it once for every input: --dim {d.dim_param}=N")
                d.Clear()
                d.dim_value = int(value)
        elif shape and (not shape[0].HasField("dim_value") or shape[0].dim_value < 0):
            label = shape[0].dim_param or "?"
            shape[0].Clear()
            shape[0].dim_value = 1
            for d in shape[1:]:  # some exporters write -1 for a dynamic dimension: unbound, not negative
                if d.HasField("dim_value") and d.dim_value < 0:
                    d.Clear()
            batch.setdefault(label, []).append(name)
    for label, names in batch.items():
        flag = f"--dim {label}=N" if label != "?" else "--input-shape"
        notices.append(f"batch dimension '{label}' of input{'s' if len(names) > 1 else ''} "
                       f"{', '.join(repr(n) for n in names)} bound to 1 (set it with {flag})")
    for vi in list(model.graph.output) + list(model.graph.value_info):  # -1 (paddle2onnx): dynamic; inference fills it
        for d in vi.type.tensor_type.shape.dim if vi.type.HasField("tensor_type") else ():
            if d.HasField("dim_value") and d.dim_value < 0:
                d.Clear()
    return notices


# A dimension name that binds: an identifier. Exporters also write '?', '-1' or '' for "unknown",
# which name no dimension (PP-OCR's classifier has [?, 3, ?, ?]: its '?'s differ).
_NAMED_DIM = re.compile(r"[A-Za-z_][\w.]*\Z")


def _shapes_from_dims(inputs: dict[str, onnx.ValueInfoProto], dims: Mapping[str, int],
                      source: str) -> dict[str, list[int]]:
    """``--dim seq=128``: the shape of every input that has a dimension of that name (the
    others of its dimensions as the model has them), so that it binds like --input-shape."""
    if not dims:
        return {}
    names = {d.dim_param for vi in inputs.values() if vi.type.HasField("tensor_type")
             for d in vi.type.tensor_type.shape.dim if _NAMED_DIM.match(d.dim_param)}
    for name, value in dims.items():
        if name not in names:
            raise ModelError(f"--dim names '{name}', which is no dimension of the model's inputs"
                             f"{did_you_mean(name, names)}", where=source,
                             hint=f"the inputs' named dimensions: {', '.join(sorted(names)) or 'none'} "
                                  f"({input_summary(inputs.values())})")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= MAX_ELEMENTS:
            raise ModelError(f"--dim {name}={value}: a dimension is a whole number from 0 to 2**40", where=source)
    shapes = {}
    for input_name, vi in inputs.items():
        shape = vi.type.tensor_type.shape.dim if vi.type.HasField("tensor_type") else ()
        if not any(d.dim_param in dims for d in shape):
            continue
        bound = [int(dims[d.dim_param]) if d.dim_param in dims
                 else (d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else None) for d in shape]
        if None not in bound:
            shapes[input_name] = bound
            continue
        for d, value in zip(shape, bound):  # a dimension --dim did not name stays as it is
            if value is not None:
                d.Clear()
                d.dim_value = value
    return shapes


def input_summary(inputs) -> str:
    """'input_ids i64[batch,seq], attention_mask i64[batch,seq]': the inputs as ONNX declares them."""
    parts = []
    for vi in inputs:
        t = type_from_proto(vi.type, vi.name) if vi.type.HasField("tensor_type") else None
        parts.append(f"{vi.name} {t}" if t is not None else vi.name)
    return ", ".join(parts)


def _bind_values(model: onnx.ModelProto, inputs: dict[str, onnx.ValueInfoProto], values: Mapping[str, object],
                 source: str) -> list[str]:
    """``--input-value sr=16000``: each named input becomes a constant of its declared type
    (after shape inference, ``_fold_ifs`` replaces the Ifs this decides by their branches)."""
    g = model.graph
    for name, value in values.items():
        if name not in inputs:
            raise _not_an_input("--input-value", name, inputs, source)
        t = type_from_proto(inputs[name].type, f"input '{name}'")
        try:
            array = np.asarray(value, dtype=numpy_dtype(t.dtype))
        except (TypeError, ValueError, OverflowError) as e:
            raise ModelError(f"--input-value {name}={value}: not a value of the input's type {t}: {e}",
                             where=source) from None
        if t.shape is not None and (len(t.shape) != array.ndim or any(
                isinstance(d, int) and d != n for d, n in zip(t.shape, array.shape))):
            if array.size == 1 and (t.shape == () or all(d == 1 or not isinstance(d, int) for d in t.shape)):
                array = array.reshape([1] * len(t.shape))
            else:
                raise ModelError(f"--input-value {name}: a value of shape {list(array.shape)} for an input of type "
                                 f"{t}", where=source)
        g.initializer.append(onnx.numpy_helper.from_array(array, name))
    kept = [i for i in g.input if i.name not in values]
    del g.input[:]
    g.input.extend(kept)
    return [f"input '{n}' is the constant {v!r} (--input-value)" for n, v in values.items()]


def _fold_ifs(model: onnx.ModelProto, limit: int = 4096, rounds: int = 16) -> int:
    """Replace every ``If`` whose condition is constant (computable from the model's small
    constants with onnx's reference evaluator) by the nodes of the branch it takes; repeat
    while that exposes more (nested Ifs). Returns how many were replaced."""

    g = model.graph
    taken = 0
    for _ in range(rounds):
        values = _small_initializers(g, limit)
        shapes = _static_shapes(model)
        changed = False
        nodes = list(g.node)
        out: list[onnx.NodeProto] = []
        for node in nodes:
            if node.op_type in ("Shape", "Size") and node.domain in ("", "ai.onnx") and node.input[0] in shapes:
                # a shape the bindings made static is a constant too
                values[node.output[0]] = _shape_value(node, shapes[node.input[0]])
            elif _evaluable(node) and node.op_type != "If" and (node.input or node.op_type == "Constant") \
                    and all(not i or i in values for i in node.input):
                results = _evaluate(node, values, model)  # a small constant expression (Equal, Cast ...)
                if results is not None and all(r.size <= limit for r in results):
                    values.update(zip(node.output, results))
            if node.op_type == "If" and node.domain in ("", "ai.onnx") and node.input[0] in values:
                cond = np.asarray(values[node.input[0]])
                if cond.size != 1:
                    out.append(node)
                    continue
                branch = next(a.g for a in node.attribute if a.name == ("then_branch" if bool(cond.reshape(-1)[0])
                                                                          else "else_branch"))
                out += _inline(branch, list(node.output), f"{node.name or 'If'}.{taken}", g)
                taken += 1
                changed = True
            else:
                out.append(node)
        if not changed:
            break
        del g.node[:]
        g.node.extend(out)
    if taken:
        del g.value_info[:]  # the branches' values replace the If's: inference recomputes every type
    return taken


def _small_initializers(g: onnx.GraphProto, limit: int) -> dict[str, np.ndarray]:
    """The initializers of at most ``limit`` elements, as arrays (a bad payload is left out: it
    is reported where the graph is built)."""
    values = {}
    for t in g.initializer:
        if math.prod(t.dims) <= limit:
            try:
                values[t.name] = onnx.numpy_helper.to_array(t)
            except Exception:
                continue
    return values


def _shape_value(node: onnx.NodeProto, dims: list[int]) -> np.ndarray:
    """What a Shape or Size node computes from the static ``dims`` of its input."""
    if node.op_type == "Size":
        return np.array(math.prod(dims), np.int64)
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return np.array(dims[attrs.get("start", 0):attrs.get("end", len(dims))], np.int64)


def _subgraphs(attr: onnx.AttributeProto) -> list[onnx.GraphProto]:
    return [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)


def _evaluable(node: onnx.NodeProto) -> bool:
    """An ONNX op the importer may evaluate on constants: deterministic, without subgraphs."""
    return node.domain in ("", "ai.onnx") and not node.op_type.startswith("Random") and not any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def _static_dims(tp: onnx.TypeProto) -> list[int] | None:
    """The dimensions of a tensor type whose shape is fully known, else None."""
    tt = tp.tensor_type
    if tp.HasField("tensor_type") and tt.HasField("shape") and all(
            d.HasField("dim_value") and d.dim_value >= 0 for d in tt.shape.dim):
        return [d.dim_value for d in tt.shape.dim]
    return None


def _evaluate(node: onnx.NodeProto, values: Mapping[str, np.ndarray], model: onnx.ModelProto) -> list | None:
    """``node``'s outputs from the constant ``values`` of its inputs, in the model's opsets, or
    None when it cannot be evaluated: how the importer folds the small constant expressions that
    decide an If or a shape (runtime.evaluate with the reference evaluator: one node, no session)."""
    from .runtime import evaluate  # the parser and the session wrapper load when an expression needs them

    quick = _evaluate_directly(node, values)
    if quick is not None:
        return quick
    try:
        return evaluate([node], {i: values[i] for i in set(node.input) if i}, [o for o in node.output],
                        opsets={o.domain: o.version for o in model.opset_import}, engine="reference")
    except Exception:  # noqa: BLE001 - an op the evaluator cannot run only keeps what it feeds unknown
        return None


def _evaluate_directly(node: onnx.NodeProto, values: Mapping[str, np.ndarray]) -> list | None:
    """The two ops exporters emit by the hundred around shape arithmetic, without building a
    reference evaluator for each (about 0.2 ms apiece): Identity, and a Constant given as a tensor
    or one of the scalar/list attributes. None: any other node (the evaluator runs it)."""
    if node.op_type == "Identity" and len(node.input) == 1 and node.input[0] in values:
        return [np.asarray(values[node.input[0]])]
    if node.op_type != "Constant" or len(node.attribute) != 1:
        return None
    a = node.attribute[0]
    if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
        return [onnx.numpy_helper.to_array(a.t)]
    dtype = _CONSTANT_ATTRS.get(a.name)
    if dtype is None or dtype is np.object_:  # strings: the evaluator's
        return None
    value = helper.get_attribute_value(a)
    return [np.array(list(value) if a.name.endswith("s") else value, dtype)]


def _static_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    """Value -> its shape, for every value ONNX inference (on a copy) gives a static shape."""
    try:
        inferred = _resolve_shape_arithmetic(onnx.shape_inference.infer_shapes(model, data_prop=True))
    except Exception:
        return {}
    infos = list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output)
    return {vi.name: dims for vi in infos if (dims := _static_dims(vi.type)) is not None}


def _inline(branch: onnx.GraphProto, outputs: list[str], prefix: str, g: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The nodes of ``branch`` with its own values renamed under ``prefix`` (a branch may reuse
    a name of the other branch or of another If), its constants moved to ``g``, and an
    Identity from each of its outputs to the If's outputs."""
    local = {t.name for t in branch.initializer} | {o for n in branch.node for o in n.output if o}
    rename = {name: f"{prefix}/{name}" for name in local}
    for t in branch.initializer:
        copy = onnx.TensorProto()
        copy.CopyFrom(t)
        copy.name = rename[t.name]
        g.initializer.append(copy)
    nodes = []
    for n in branch.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        copy.input[:] = [rename.get(i, i) for i in n.input]
        copy.output[:] = [rename.get(o, o) for o in n.output]
        copy.name = f"{prefix}/{n.name}" if n.name else ""
        for attr in copy.attribute:  # nested subgraphs read the branch's values by name too
            for sub in _subgraphs(attr):
                _rename_reads(sub, rename)
        nodes.append(copy)
    for src, dst in zip(branch.output, outputs):
        nodes.append(helper.make_node("Identity", [rename.get(src.name, src.name)], [dst], name=f"{prefix}/{dst}"))
    return nodes


def _rename_reads(graph: onnx.GraphProto, rename: dict[str, str]) -> None:
    """Rename the outer-scope values ``graph`` (and its own subgraphs) read, where it does not
    define a value of the same name itself."""
    own = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {
        o for n in graph.node for o in n.output}
    visible = {k: v for k, v in rename.items() if k not in own}
    for n in graph.node:
        n.input[:] = [visible.get(i, i) for i in n.input]
        for attr in n.attribute:
            for sub in _subgraphs(attr):
                _rename_reads(sub, visible)
    for o in graph.output:
        o.name = visible.get(o.name, o.name)


def _resolve_shape_arithmetic(model: onnx.ModelProto, limit: int = 4096, rounds: int = 4) -> onnx.ModelProto:
    """Types ONNX inference left unknown although every graph input is static.

    Exporters compute shapes at run time (TorchScript: Shape -> Gather -> Div -> Concat ->
    Reshape; torch's F.pad: ConstantOfShape -> Slice -> Transpose -> Pad), and ONNX's data
    propagation does not follow every op. Here the nodes whose inputs are all small
    constants or Shape/Size of a static value are evaluated once (onnx's reference
    evaluator), a copy with those results as initializers is inferred again, and its types
    fill the unknown ones (again, up to ``rounds`` times, while that resolves more). The
    graph itself is not changed; on any failure the types stay.
    """

    g = model.graph

    def static(tp: onnx.TypeProto) -> bool:
        return _static_dims(tp) is not None

    infos = {vi.name: vi for vi in list(g.input) + list(g.value_info) + list(g.output)}
    if not all(static(vi.type) for vi in g.input) or all(static(vi.type) for vi in infos.values()):
        return model
    local = {(f.domain, f.name) for f in model.functions}
    results = _small_initializers(g, limit)
    evaluated_nodes: list[onnx.NodeProto] = []

    def small(name: str, op: str) -> bool:  # never materialise a large result
        dims = _static_dims(infos[name].type) if name in infos else None
        if dims is not None:
            return math.prod(dims) <= limit
        return op not in ("ConstantOfShape", "Expand", "Tile", "Range", "Resize", "Upsample", "Pad", "OneHot")

    for node in g.node:  # one by one: a node the evaluator cannot run only loses what it feeds
        if not _evaluable(node) or (node.domain, node.op_type) in local:
            continue
        source_info = infos.get(node.input[0]) if node.input else None
        if node.op_type in ("Shape", "Size") and source_info is not None and static(source_info.type):
            value = _shape_value(node, _static_dims(source_info.type))
            node = helper.make_node("Constant", [], [node.output[0]], value=onnx.numpy_helper.from_array(value))
        ready = all(not i or i in results for i in node.input)
        if not ready or not all(small(o, node.op_type) for o in node.output):
            continue
        evaluated = _evaluate(node, results, model)
        if evaluated is not None:
            results.update(zip(node.output, evaluated))
            evaluated_nodes.append(node)
    outputs = {o for n in evaluated_nodes for o in n.output if o and o in results}
    if not outputs:
        return model
    try:
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        folded = {o for o in outputs if isinstance(results[o], np.ndarray) and results[o].size <= limit}
        kept = [n for n in probe.graph.node if not any(o in folded for o in n.output)]
        del probe.graph.node[:]
        probe.graph.node.extend(kept)
        probe.graph.initializer.extend(onnx.numpy_helper.from_array(np.asarray(results[o]), o) for o in folded)
        del probe.graph.value_info[:]
        probe = onnx.shape_inference.infer_shapes(probe, check_type=True, data_prop=True)
    except Exception:
        return model
    better = {vi.name: vi for vi in list(probe.graph.value_info) + list(probe.graph.output) if static(vi.type)}
    resolved = 0
    for vi in list(g.value_info) + list(g.output):
        if not static(vi.type):
            if vi.name in better:
                vi.type.CopyFrom(better[vi.name].type)
                resolved += 1
            elif vi.name in folded and vi.type.HasField("tensor_type"):
                vi.type.tensor_type.shape.CopyFrom(
                    helper.make_tensor_type_proto(1, list(np.shape(results[vi.name]))).tensor_type.shape)
                resolved += 1
    missing = [vi for name, vi in better.items() if name not in infos]  # values inference had no type for
    g.value_info.extend(missing)
    resolved += len(missing)
    return _resolve_shape_arithmetic(model, limit, rounds - 1) if resolved and rounds > 1 else model


def _drop_initializer_inputs(model: onnx.ModelProto) -> None:
    inits = {t.name for t in model.graph.initializer}
    keep = [i for i in model.graph.input if i.name not in inits]
    if len(keep) != len(model.graph.input):
        del model.graph.input[:]
        model.graph.input.extend(keep)
        model.ir_version = max(model.ir_version, 4)


def _check_ops_known(model: onnx.ModelProto, source: str) -> None:
    opsets = {o.domain or "": o.version for o in model.opset_import}
    for domain, version in opsets.items():  # onnx.defs takes a C int
        if not 0 <= version < 2**31:
            raise ModelError(f"opset_import of domain {domain or 'ai.onnx'!r} has version {version}, "
                             f"which is no opset version", where=source, hint="the file is damaged; re-export the model")
    known = {(f.domain, f.name) for f in model.functions}  # model-local functions, then ops seen
    for i, node in enumerate(model.graph.node):
        if not isinstance(node.op_type, str) or not isinstance(node.domain, str):  # not UTF-8 in the file
            raise ModelError(f"node #{i} ('{node.name}') has an op type or domain that is not UTF-8 text: "
                             f"{node.op_type!r}", where=source, hint="the file is damaged; re-export the model")
        domain = node.domain if node.domain != "ai.onnx" else ""
        if (domain, node.op_type) in known:
            continue
        known.add((domain, node.op_type))
        version = opsets.get(domain)
        if _schema(node.op_type, domain, version or 1) is None:
            raise ModelError(
                f"node '{node.name or f'#{i}'}' uses op '{node.op_type}'{f' of domain {domain!r}' if domain else ''}, "
                f"which is not an ONNX operator{f' in opset {version}' if version else ''}",
                where=source, hint="nvmc imports standard ONNX ops; export the model with standard ops")


def _build(model: onnx.ModelProto, source: str, weights: dict[str, onnx.TensorProto]) -> Graph:
    g_proto = model.graph
    g = Graph(g_proto.name or "main", {o.domain or "": o.version for o in model.opset_import})
    g.meta.update(ir_version=model.ir_version, producer=model.producer_name, doc=model.doc_string)
    types = {vi.name: type_from_proto(vi.type, f"value '{vi.name}'")
             for vi in list(g_proto.input) + list(g_proto.value_info) + list(g_proto.output)}

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


# Constant's attributes besides 'value' (a tensor): the element type each makes.
_CONSTANT_ATTRS = {"value_float": np.float32, "value_floats": np.float32, "value_int": np.int64,
                   "value_ints": np.int64, "value_string": np.object_, "value_strings": np.object_}


def _fold_constant(g: Graph, node: onnx.NodeProto, attrs: dict) -> bool:
    """Turn Constant / ConstantOfShape(const) into a graph constant. Returns True if folded."""
    if node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return False
    if node.op_type == "Constant":
        (key, value), = attrs.items()
        if key == "value":
            g.add_const(node.output[0], value)
        elif key in _CONSTANT_ATTRS:
            g.add_const(node.output[0], np.array(value, dtype=_CONSTANT_ATTRS[key]))
        else:
            return False
        return True
    if node.op_type == "ConstantOfShape" and node.input and g.is_const(node.input[0]):
        shape = tuple(int(d) for d in g.consts[node.input[0]].reshape(-1))
        fill = np.asarray(attrs.get("value", np.zeros(1, np.float32))).reshape(-1)
        where = f"{_where(node, 0)} makes a constant of shape {list(shape)}"
        if any(d < 0 for d in shape) or math.prod(shape) > MAX_ELEMENTS:
            raise ModelError(f"{where}: {'a negative dimension' if min(shape, default=0) < 0 else 'more than 2**40 elements'}",
                             hint="fix the shape tensor that feeds it")
        if fill.size != 1:
            raise ModelError(f"{where} from a 'value' of {fill.size} elements; it needs exactly one")
        # a broadcast view: zero memory until exported
        g.add_const(node.output[0], np.broadcast_to(fill.reshape(()), shape))
        return True
    return False
