"""Seeded mutations of ONNX models: raw bytes, and the ModelProto's structure.

Every function takes a ``numpy.random.Generator`` and returns new data; the inputs are
never modified. ``STRUCTURED`` lists the structural mutators by name, so a failing case
is reported as ``(base model, mutator, seed)`` and reproduces exactly.
"""

from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# --------------------------------------------------------------------------- bytes


def flip_bits(data: bytes, rng: np.random.Generator, max_flips: int = 8) -> bytes:
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, max_flips + 1))):
        i = int(rng.integers(len(buf)))
        buf[i] ^= 1 << int(rng.integers(8))
    return bytes(buf)


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, len(data)))]


def splice(data: bytes, rng: np.random.Generator) -> bytes:
    """Overwrite, duplicate or delete a random run of bytes."""
    n = len(data)
    i = int(rng.integers(n))
    length = int(rng.integers(1, 64))
    kind = int(rng.integers(3))
    if kind == 0:
        return data[:i] + rng.bytes(length) + data[i + length:]
    if kind == 1:
        return data[:i] + data[i:i + length] * 2 + data[i + length:]
    return data[:i] + data[i + length:]


BYTE_MUTATORS = {"flip_bits": flip_bits, "truncate": truncate, "splice": splice}

# ----------------------------------------------------------------------- structure

HUGE_DIMS = [2**40, 2**62, -1, -7, 0, 2**31]
ODD_DTYPES = [TensorProto.UNDEFINED, TensorProto.STRING, TensorProto.BOOL, TensorProto.INT8,
              TensorProto.FLOAT16, TensorProto.COMPLEX64, TensorProto.DOUBLE, 99]


def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def _node(model, rng) -> onnx.NodeProto:
    return _pick(rng, model.graph.node)


def _out(name: str, rank: int, elem_type: int = TensorProto.FLOAT) -> onnx.ValueInfoProto:
    """A graph output of known rank and symbolic dims (the checker wants a shape)."""
    return helper.make_tensor_value_info(name, elem_type, [f"{name}_{i}" for i in range(rank)])


def _rank(model) -> int:  # the first node's output rank: that of the graph input (Conv, LayerNorm)
    return len(model.graph.input[0].type.tensor_type.shape.dim)


def _graph_values(model) -> list[str]:
    names = [i.name for i in model.graph.input] + [t.name for t in model.graph.initializer]
    for n in model.graph.node:
        names += [o for o in n.output if o]
    return names


def wrong_input_dtype(m, rng):
    vi = _pick(rng, list(m.graph.input) + list(m.graph.output))
    vi.type.tensor_type.elem_type = _pick(rng, ODD_DTYPES)


def wrong_initializer_dtype(m, rng):
    if m.graph.initializer:
        _pick(rng, m.graph.initializer).data_type = _pick(rng, ODD_DTYPES)


def short_initializer_data(m, rng):
    with_raw = [t for t in m.graph.initializer if t.raw_data]
    if with_raw:
        t = _pick(rng, with_raw)
        t.raw_data = t.raw_data[: int(rng.integers(len(t.raw_data)))]


def missing_initializer(m, rng):
    if m.graph.initializer:
        del m.graph.initializer[int(rng.integers(len(m.graph.initializer)))]


def dangling_input(m, rng):
    n = _node(m, rng)
    if n.input:
        n.input[int(rng.integers(len(n.input)))] = _pick(rng, ["nowhere", "", "x" * 300, "%x", "a b"])


def cycle(m, rng):
    nodes = m.graph.node
    if len(nodes) >= 2:
        first, last = nodes[0], nodes[int(rng.integers(1, len(nodes)))]
        if first.input:
            first.input[0] = last.output[0]


def self_loop(m, rng):
    n = _node(m, rng)
    if n.input:
        n.input[0] = n.output[0]


def reversed_order(m, rng):
    nodes = list(m.graph.node)[::-1]
    del m.graph.node[:]
    m.graph.node.extend(nodes)


def duplicate_node_name(m, rng):
    if len(m.graph.node) >= 2:
        a, b = rng.choice(len(m.graph.node), 2, replace=False)
        m.graph.node[int(b)].name = m.graph.node[int(a)].name or "n"
        m.graph.node[int(a)].name = m.graph.node[int(b)].name


def duplicate_value_name(m, rng):
    if len(m.graph.node) >= 2:
        a, b = rng.choice(len(m.graph.node), 2, replace=False)
        m.graph.node[int(b)].output[0] = m.graph.node[int(a)].output[0]


def duplicate_initializer(m, rng):
    if m.graph.initializer:
        m.graph.initializer.append(copy.deepcopy(_pick(rng, m.graph.initializer)))


def initializer_named_like_input(m, rng):
    if m.graph.initializer and m.graph.input:
        m.graph.initializer[0].name = m.graph.input[0].name


def output_is_input(m, rng):
    m.graph.output.append(copy.deepcopy(m.graph.input[0]))


def output_twice(m, rng):
    m.graph.output.append(copy.deepcopy(m.graph.output[0]))


def odd_input_dim(m, rng):
    dims = m.graph.input[0].type.tensor_type.shape.dim
    if dims:
        d = dims[int(rng.integers(len(dims)))]
        d.Clear()
        d.dim_value = _pick(rng, HUGE_DIMS)


def odd_initializer_dims(m, rng):
    if m.graph.initializer:
        t = _pick(rng, m.graph.initializer)
        if t.dims:
            t.dims[int(rng.integers(len(t.dims)))] = _pick(rng, HUGE_DIMS)


def huge_constant_of_shape(m, rng):
    """A ConstantOfShape of 2**40 (or negative, zero) elements feeding the first node."""
    dims = _pick(rng, [[2**20, 2**20], [2**40], [-1, 3], [0, 5], [2**31, 2**31, 2**31], [2**62, 4]])
    shape = numpy_helper.from_array(np.array(dims, dtype=np.int64), "fz_shape")
    m.graph.initializer.append(shape)
    fill = helper.make_tensor("value", TensorProto.FLOAT, [1], [1.5])
    m.graph.node.insert(0, helper.make_node("ConstantOfShape", ["fz_shape"], ["fz_big"], value=fill, name="fz_big"))
    m.graph.node.insert(1, helper.make_node("ReduceSum", ["fz_big"], ["fz_sum"], keepdims=0, name="fz_sum"))
    m.graph.output.append(_out("fz_sum", 0))


def huge_reshape(m, rng):
    dims = _pick(rng, [[2**40, -1], [-1, -1], [0, 2**62], [2**20, 2**20, 2**20]])
    m.graph.initializer.append(numpy_helper.from_array(np.array(dims, dtype=np.int64), "fz_rs"))
    first = m.graph.node[0]
    m.graph.node.append(helper.make_node("Reshape", [first.output[0], "fz_rs"], ["fz_r"], name="fz_reshape"))
    m.graph.output.append(_out("fz_r", len(dims)))


def huge_expand(m, rng):
    dims = _pick(rng, [[2**40], [2**20, 2**20], [1, 2**31, 2**31]])
    m.graph.initializer.append(numpy_helper.from_array(np.array(dims, dtype=np.int64), "fz_ex"))
    m.graph.initializer.append(numpy_helper.from_array(np.array([2.0], dtype=np.float32), "fz_one"))
    m.graph.node.append(helper.make_node("Expand", ["fz_one", "fz_ex"], ["fz_e"], name="fz_expand"))
    m.graph.output.append(_out("fz_e", len(dims)))


def unknown_domain(m, rng):
    n = _node(m, rng)
    n.domain = _pick(rng, ["com.evil", "ai.onnx.ml", "nvmc", "com.microsoft", "ai.onnx.preview.training"])
    if rng.integers(2):
        m.opset_import.append(helper.make_opsetid(n.domain, int(rng.integers(0, 3))))


def odd_opset(m, rng):
    version = _pick(rng, [0, 1, 999, -1, 2**40, 6])
    for o in m.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = version


def no_opset(m, rng):
    del m.opset_import[:]


def odd_ir_version(m, rng):
    m.ir_version = _pick(rng, [0, 1, 3, 999, -5])


def empty_graph(m, rng):
    kind = int(rng.integers(4))
    del m.graph.node[:]
    if kind >= 1:
        del m.graph.output[:]
    if kind >= 2:
        del m.graph.initializer[:]
    if kind >= 3:
        del m.graph.input[:]


def drop_attributes(m, rng):
    with_attrs = [n for n in m.graph.node if n.attribute]
    if with_attrs:
        del _pick(rng, with_attrs).attribute[:]


def wrong_attribute_type(m, rng):
    with_attrs = [n for n in m.graph.node if n.attribute]
    if with_attrs:
        a = _pick(rng, _pick(rng, with_attrs).attribute)
        a.type = _pick(rng, [onnx.AttributeProto.UNDEFINED, onnx.AttributeProto.FLOATS, onnx.AttributeProto.STRING,
                             onnx.AttributeProto.GRAPH, onnx.AttributeProto.SPARSE_TENSOR,
                             onnx.AttributeProto.TYPE_PROTOS, onnx.AttributeProto.TENSOR])


def odd_attribute_values(m, rng):
    """Zero or negative strides/groups/kernels, out-of-range axes, huge pads."""
    n = _node(m, rng)
    name = _pick(rng, ["strides", "group", "kernel_shape", "pads", "dilations", "axis", "perm", "transB", "alpha"])
    value = _pick(rng, [0, -1, 2**40, -(2**40)])
    for i, a in enumerate(n.attribute):
        if a.name == name:
            del n.attribute[i]
            break
    if name in ("strides", "kernel_shape", "pads", "dilations", "perm"):
        n.attribute.append(helper.make_attribute(name, [value] * int(rng.integers(1, 5))))
    elif name == "alpha":
        n.attribute.append(helper.make_attribute(name, float(_pick(rng, [np.nan, np.inf, -0.0, 1e308]))))
    else:
        n.attribute.append(helper.make_attribute(name, value))


def random_op_type(m, rng):
    n = _node(m, rng)
    n.op_type = _pick(rng, ["", "Conv2", "If", "Loop", "Scan", "Relu", "MatMul", "Gemm", "Softmax", "Identity",
                            "Resize", "Einsum", "NonZero", "Reshape", "Concat", "Split", "\u00e9\u00e9", "a" * 500])


def drop_node_input(m, rng):
    n = _node(m, rng)
    if n.input:
        del n.input[-1]


def extra_node_input(m, rng):
    n = _node(m, rng)
    n.input.append(_pick(rng, _graph_values(m)[:1] + [""]))


def extra_node_output(m, rng):
    n = _node(m, rng)
    n.output.append(_pick(rng, ["fz_extra", "", n.output[0]]))


def odd_names(m, rng):
    """Names the .nvir printer must quote: unicode, spaces, quotes, '%', newlines, very long."""
    name = _pick(rng, ["caf\u00e9 \u2603", 'q"uote', "%pct", "new\nline", "tab\there", "x" * 5000, "//", "@a:b",
                       "\u202e", "a}b{", "{", "-", "..", "0", "\x00nul"])
    target = int(rng.integers(3))
    if target == 0:
        _node(m, rng).name = name
    elif target == 1:  # rename a value everywhere it appears
        old = m.graph.node[0].output[0]
        for n in m.graph.node:
            for i, v in enumerate(n.input):
                if v == old:
                    n.input[i] = name
        m.graph.node[0].output[0] = name
        for o in m.graph.output:
            if o.name == old:
                o.name = name
    else:
        m.graph.name = name


def doc_strings(m, rng):
    _node(m, rng).doc_string = _pick(rng, ["line1\nline2", "\u0000", "x" * 10000, "*/ // {"])
    m.doc_string = "model doc \u2603"


def if_node(m, rng):
    """A control-flow node with subgraphs (an attribute of type GRAPH)."""
    out = m.graph.node[0].output[0]
    then = helper.make_graph([helper.make_node("Identity", [out], ["t_out"])], "then", [],
                             [_out("t_out", _rank(m))])
    other = helper.make_graph([helper.make_node("Neg", [out], ["e_out"])], "else", [],
                              [_out("e_out", _rank(m))])
    m.graph.initializer.append(numpy_helper.from_array(np.array(True), "fz_cond"))
    m.graph.node.append(helper.make_node("If", ["fz_cond"], ["fz_if"], then_branch=then, else_branch=other))
    m.graph.output.append(_out("fz_if", _rank(m)))


def sparse_initializer(m, rng):
    values = numpy_helper.from_array(np.array([1.0, 2.0], dtype=np.float32), "fz_sparse")
    indices = numpy_helper.from_array(np.array([0, _pick(rng, [3, 2**40, -1])], dtype=np.int64), "")
    m.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))


def local_function(m, rng):
    fn = helper.make_function("fz.local", "Twice", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    m.functions.append(fn)
    m.opset_import.append(helper.make_opsetid("fz.local", 1))
    out = m.graph.node[0].output[0]
    m.graph.node.append(helper.make_node("Twice", [out], ["fz_tw"], domain="fz.local"))
    m.graph.output.append(_out("fz_tw", _rank(m)))


def non_tensor_input(m, rng):
    vi = m.graph.input[0]
    kind = int(rng.integers(3))
    if kind == 0:
        vi.type.CopyFrom(helper.make_sequence_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [1])))
    elif kind == 1:
        vi.type.Clear()
    else:
        vi.type.tensor_type.ClearField("shape")


def string_tensor(m, rng):
    t = helper.make_tensor("fz_str", TensorProto.STRING, [2], [b"a", b"\xff\xfe"])
    m.graph.initializer.append(t)
    m.graph.node.append(helper.make_node("Identity", ["fz_str"], ["fz_str_out"]))
    m.graph.output.append(helper.make_tensor_value_info("fz_str_out", TensorProto.STRING, [2]))


def stacked(m, rng):
    """Two or three mutations at once."""
    for _ in range(int(rng.integers(2, 4))):
        name = _pick(rng, [k for k in STRUCTURED if k != "stacked"])
        try:
            STRUCTURED[name](m, rng)
        except (IndexError, ValueError):  # it no longer applies (an earlier step emptied the graph)
            pass


STRUCTURED = {f.__name__: f for f in [
    wrong_input_dtype, wrong_initializer_dtype, short_initializer_data, missing_initializer, dangling_input,
    cycle, self_loop, reversed_order, duplicate_node_name, duplicate_value_name, duplicate_initializer,
    initializer_named_like_input, output_is_input, output_twice, odd_input_dim, odd_initializer_dims,
    huge_constant_of_shape, huge_reshape, huge_expand, unknown_domain, odd_opset, no_opset, odd_ir_version,
    empty_graph, drop_attributes, wrong_attribute_type, odd_attribute_values, random_op_type, drop_node_input,
    extra_node_input, extra_node_output, odd_names, doc_strings, if_node, sparse_initializer, local_function,
    non_tensor_input, string_tensor, stacked,
]}


def mutate(model: onnx.ModelProto, name: str, seed: int) -> bytes:
    """The serialized model after mutation ``name`` with ``seed`` (the input is not changed)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    rng = np.random.default_rng(seed)
    STRUCTURED[name](m, rng)
    return m.SerializeToString()
