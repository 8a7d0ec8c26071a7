"""Build the small example models shipped in examples/models/ (onnx.helper + numpy only).

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
    n = helper.make_node
    nodes = [
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
