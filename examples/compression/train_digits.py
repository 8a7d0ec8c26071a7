"""Train a small CNN on scikit-learn's bundled digits (numpy only) and save it as ONNX.

    pip install scikit-learn        # in the dev extra
    python examples/compression/train_digits.py

writes, next to this file:

* ``digits.npz``: the split used (pixels 0..16 as uint8, 8x8 images; ``x_train``/``y_train``
  1437 images, ``x_test``/``y_test`` 360 held out: train_test_split, test_size=0.2,
  stratified, random_state=0);
* ``digits_cnn.onnx``: input ``image`` f32[N,1,8,8] (pixels / 16), output ``logits`` f32[N,10]:
  Conv 3x3 1->16 (pad 1), Relu, Conv 3x3 16->32 (stride 2, pad 1), Relu, Flatten, Gemm 512->10.

Training: Adam (lr 3e-3), batch 64, 40 epochs, cross-entropy with weight decay 1e-4, He
initialisation, seed 0; float64 in numpy, stored as float32 (a rerun gives the same weights).
The held-out accuracy is printed (numpy and onnxruntime agree).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
EPOCHS, BATCH, LR, DECAY = 40, 64, 3e-3, 1e-4


def load_split() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.uint8)  # 0..16
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.2, stratify=digits.target,
                                                        random_state=0)
    return {"x_train": x_train, "y_train": y_train.astype(np.int64), "x_test": x_test, "y_test": y_test.astype(np.int64)}


def images(x: np.ndarray) -> np.ndarray:
    """uint8 pixels 0..16 [N, 8, 8] -> the model's input f32 [N, 1, 8, 8]."""
    return (x.astype(np.float32) / 16.0)[:, None]


# ----------------------------------------------------------------- the network
def im2col(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    """[N, C, H, W] -> [N, Ho, Wo, C*k*k] patches."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, ho, wo = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n, ho, wo, c * k * k)


def col2im(dcols: np.ndarray, shape: tuple, k: int, stride: int, pad: int) -> np.ndarray:
    n, c, h, w = shape
    _, ho, wo, _ = dcols.shape
    d = dcols.reshape(n, ho, wo, c, k, k)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride] += d[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return dxp[:, :, pad:pad + h, pad:pad + w]


LAYERS = [("conv1", 1, 16, 1), ("conv2", 16, 32, 2)]  # name, in, out, stride (3x3, pad 1)


def init(rng: np.random.Generator) -> dict[str, np.ndarray]:
    p = {}
    for name, cin, cout, _ in LAYERS:
        p[f"{name}.w"] = rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))
        p[f"{name}.b"] = np.zeros(cout)
    p["fc.w"] = rng.standard_normal((10, 512)) * np.sqrt(1.0 / 512)
    p["fc.b"] = np.zeros(10)
    return p


def forward(p: dict[str, np.ndarray], x: np.ndarray):
    cache, h = [], x
    for name, _, cout, stride in LAYERS:
        cols = im2col(h, 3, stride, 1)
        z = cols @ p[f"{name}.w"].reshape(cout, -1).T + p[f"{name}.b"]  # [N, Ho, Wo, C]
        cache.append((h.shape, cols, z))
        h = np.maximum(z, 0).transpose(0, 3, 1, 2)
    flat = h.reshape(len(x), -1)
    return flat @ p["fc.w"].T + p["fc.b"], (cache, flat)


def gradients(p, x, y):
    logits, (cache, flat) = forward(p, x)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob = e / e.sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(prob[np.arange(len(y)), y] + 1e-12))
    d = prob
    d[np.arange(len(y)), y] -= 1
    d /= len(y)
    g = {"fc.w": d.T @ flat, "fc.b": d.sum(axis=0)}
    dh = (d @ p["fc.w"]).reshape(len(x), 32, 4, 4)
    for (name, _, cout, stride), (shape, cols, z) in zip(reversed(LAYERS), reversed(cache)):
        dz = dh.transpose(0, 2, 3, 1) * (z > 0)  # [N, Ho, Wo, C]
        flat_dz = dz.reshape(-1, cout)
        g[f"{name}.w"] = (flat_dz.T @ cols.reshape(-1, cols.shape[-1])).reshape(p[f"{name}.w"].shape)
        g[f"{name}.b"] = flat_dz.sum(axis=0)
        if name != LAYERS[0][0]:
            dcols = dz @ p[f"{name}.w"].reshape(cout, -1)
            dh = col2im(dcols, shape, 3, stride, 1)
    for k in g:
        if k.endswith(".w"):
            g[k] += DECAY * p[k]
    return loss, g


def train(x: np.ndarray, y: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = init(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(a) for k, a in p.items()}
    step = 0
    for epoch in range(EPOCHS):
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), BATCH):
            idx = order[start:start + BATCH]
            loss, g = gradients(p, x[idx], y[idx])
            losses.append(loss)
            step += 1
            for k in p:
                m[k] = 0.9 * m[k] + 0.1 * g[k]
                v[k] = 0.999 * v[k] + 0.001 * g[k] ** 2
                p[k] -= LR * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
        if epoch % 10 == 9:
            print(f"epoch {epoch + 1}: loss {np.mean(losses):.4f}")
    return p


def to_onnx(p: dict[str, np.ndarray]) -> onnx.ModelProto:
    inits = [numpy_helper.from_array(a.astype(np.float32), k) for k, a in p.items()]
    nodes = [
        helper.make_node("Conv", ["image", "conv1.w", "conv1.b"], ["c1"], name="conv1", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "conv2.w", "conv2.b"], ["c2"], name="conv2", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Flatten", ["r2"], ["flat"], name="flatten", axis=1),
        helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], name="fc", transB=1),
    ]
    graph = helper.make_graph(nodes, "digits_cnn", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                                   ["N", 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="nvmc-example")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main() -> None:
    import onnxruntime as ort

    split = load_split()
    np.savez_compressed(HERE / "digits.npz", **split)
    params = train(images(split["x_train"]).astype(np.float64), split["y_train"])
    model = to_onnx(params)
    onnx.save(model, HERE / "digits_cnn.onnx")
    x_test = images(split["x_test"])
    numpy_acc = np.mean(forward(params, x_test.astype(np.float64))[0].argmax(1) == split["y_test"])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ort_acc = np.mean(session.run(None, {"image": x_test})[0].argmax(1) == split["y_test"])
    print(f"held-out accuracy: {100 * numpy_acc:.2f}% (numpy), {100 * ort_acc:.2f}% (onnxruntime), "
          f"{len(x_test)} images; wrote digits.npz, digits_cnn.onnx")


if __name__ == "__main__":
    main()
