"""Reference networks built in code (onnx.helper, seeded weights) for the crossbar studies, the
validation rows (nvmc validate), the examples and the tests: one definition each.

* ``vgg8()``: DNN+NeuroSim's VGG8 for CIFAR-10 (NeuroSIM/NetWork_VGG8.csv: six 3x3 convs
  128-128-256-256-512-512 with 2x2 max-pooling after every second, FC 8192-1024-10).
* ``mlp(layers, width)``: a ReLU MLP of ``layers`` Gemm layers (``width`` hidden units,
  784 inputs, 10 outputs) for the training studies.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


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
