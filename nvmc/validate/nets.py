"""Reference networks built in code (onnx.helper, seeded weights) for the crossbar studies, the
validation rows (nvmc validate), the examples and the tests: one definition each.

* ``vgg8()``: DNN+NeuroSim's VGG8 for CIFAR-10 (NeuroSIM/NetWork_VGG8.csv: six 3x3 convs
  128-128-256-256-512-512 with 2x2 max-pooling after every second, FC 8192-1024-10).
* ``mlp(layers, width)``: a ReLU MLP of ``layers`` Gemm layers (``width`` hidden units,
  784 inputs, 10 outputs) for the training studies.
* ``encoder_block_nodes()``: a transformer encoder block's nodes (examples' tiny_transformer, BERT).
* HDC (seed 8): ``hdc_query(im, am, length=..)``, language recognition as plain ONNX.
* DRAM PIM (seed 5): ``gemv``, ``conv_stack``, ``edge_cnn``, ``edge_lstm``, ``binary_net`` with
  ``annotate_binary``, ``bulk_xor`` with ``annotate_bits``; ``fill`` makes a weight a
  ConstantOfShape (folded without being allocated).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

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
