"""Build the small example models shipped in examples/models/ (onnx.helper + numpy; the
transformer block's nodes come from nvmc.validate.nets, shared with nvmc validate).

    python examples/models/build_models.py

* tiny_cnn.onnx: a ResNet-style block: Conv-BN-Relu, MaxPool, 3x3 Conv, depthwise Conv,
  residual Add, GlobalAveragePool, Gemm classifier, Softmax. Input x: f32[1,3,32,32].
* tiny_transformer.onnx: one pre-norm encoder block (LayerNorm, 4-head attention with
  Softmax, GELU MLP). Input tokens: f32[batch,16,64] with a symbolic batch dimension.
* resnet50.onnx: ResNet-50 v1 (ONNX model zoo, 4.1 GMAC, 25.6 M parameters), as the `onnx`
  wheel ships it for its own backend tests (onnx/backend/test/data/light/light_resnet50.onnx,
  Apache-2.0): every weight a ConstantOfShape fill, so the file is 80 KB. It is the README's
  main job: a model whose time goes to its arithmetic and memory traffic, not to the fixed
  per-kernel overhead that dominates tiny_cnn. Copied as it is (its bytes depend on the onnx
  release installed; the committed one is from onnx 1.23).

Weights are seeded, so the files are byte-identical on every run.
"""

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from nvmc.validate.nets import encoder_block_nodes

HERE = Path(__file__).resolve().parent
rng = np.random.default_rng(2026)


def weight(name: str, *shape: int, scale: float | None = None) -> onnx.TensorProto:
    fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    std = scale if scale is not None else np.sqrt(2.0 / fan_in)
    return numpy_helper.from_array((rng.standard_normal(shape) * std).astype(np.float32), name)


def const(name: str, values, dtype=np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def tiny_cnn() -> onnx.ModelProto:
    inits = [
        weight("conv1.w", 16, 3, 3, 3), const("conv1.b", rng.uniform(-0.1, 0.1, 16)),
        const("bn1.scale", rng.uniform(0.5, 1.5, 16)), const("bn1.bias", rng.uniform(-0.1, 0.1, 16)),
        const("bn1.mean", rng.uniform(-0.1, 0.1, 16)), const("bn1.var", rng.uniform(0.5, 1.5, 16)),
        weight("conv2.w", 16, 16, 3, 3), weight("dw.w", 16, 1, 3, 3), const("dw.b", np.zeros(16)),
        weight("fc.w", 10, 16), const("fc.b", rng.uniform(-0.1, 0.1, 10)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv1.w", "conv1.b"], ["c1"], "conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn1.scale", "bn1.bias", "bn1.mean", "bn1.var"], ["b1"], "bn1"),
        helper.make_node("Relu", ["b1"], ["r1"], "relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], "pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.w"], ["c2"], "conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], "relu2"),
        helper.make_node("Conv", ["r2", "dw.w", "dw.b"], ["c3"], "dwconv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         group=16),
        helper.make_node("Add", ["c3", "p1"], ["s"], "residual"),
        helper.make_node("Relu", ["s"], ["r3"], "relu3"),
        helper.make_node("GlobalAveragePool", ["r3"], ["g"], "gap"),
        helper.make_node("Flatten", ["g"], ["f"], "flatten"),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["logits"], "fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probs"], "softmax", axis=1),
    ]
    graph = helper.make_graph(nodes, "tiny_cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="nvmc-examples")


def tiny_transformer(d: int = 64, heads: int = 4, seq: int = 16, hidden: int = 128) -> onnx.ModelProto:
    hd = d // heads
    inits = [
        const("ln1.g", np.ones(d)), const("ln1.b", np.zeros(d)), const("ln2.g", np.ones(d)), const("ln2.b", np.zeros(d)),
        weight("wq", d, d, scale=d ** -0.5), weight("wk", d, d, scale=d ** -0.5), weight("wv", d, d, scale=d ** -0.5),
        weight("wo", d, d, scale=d ** -0.5), weight("w1", d, hidden, scale=d ** -0.5), const("b1", np.zeros(hidden)),
        weight("w2", hidden, d, scale=hidden ** -0.5), const("b2", np.zeros(d)),
        const("heads_shape", [0, seq, heads, hd], np.int64), const("merge_shape", [0, seq, d], np.int64),
        const("scale", 1.0 / np.sqrt(hd)), const("half", 0.5), const("one", 1.0), const("inv_sqrt2", 1 / np.sqrt(2)),
    ]
    nodes = encoder_block_nodes()
    graph = helper.make_graph(
        nodes, "tiny_transformer",
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["batch", seq, d])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", seq, d])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="nvmc-examples")


def main() -> None:
    for name, build in (("tiny_cnn", tiny_cnn), ("tiny_transformer", tiny_transformer)):
        model = build()
        onnx.checker.check_model(model, full_check=True)
        model.ir_version = 8  # readable by onnxruntime releases from 1.10 on
        onnx.save(model, HERE / f"{name}.onnx")
        print(f"wrote {HERE / f'{name}.onnx'}")
    zoo = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light" / "light_resnet50.onnx"
    (HERE / "resnet50.onnx").write_bytes(zoo.read_bytes())
    print(f"wrote {HERE / 'resnet50.onnx'} (from {zoo})")


if __name__ == "__main__":
    main()
