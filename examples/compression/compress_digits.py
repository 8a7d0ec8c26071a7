"""Compress the trained digits CNN and measure held-out accuracy, bytes and MACs.

    python examples/compression/compress_digits.py

Uses the committed digits_cnn.onnx and digits.npz (see train_digits.py). Calibration uses
720 training images; accuracy is on the 360 held-out ones. Weight bytes and MACs are the
workload analysis's (what every cost model reads).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

import nvmc
from nvmc.passes import run_pipeline
from nvmc.frontend.runtime import Session

HERE = Path(__file__).resolve().parent
PIPELINES = ("quantize{bits=8}", "quantize{bits=8,activations=false}", "quantize{bits=8,granularity=tensor}",
             "quantize{bits=4}", "quantize{bits=4,activations=false}", "quantize{bits=2}",
             "quantize{bits=2,activations=false}", "prune{sparsity=0.5}", "prune{sparsity=0.8}",
             'prune{pattern="n:m"}', "prune{pattern=channel,sparsity=0.25}", "prune{pattern=channel,sparsity=0.5}",
             "share-weights{clusters=16}", "share-weights{clusters=4}",
             "prune{sparsity=0.5},share-weights{clusters=16},quantize{bits=8}")


def main() -> None:
    data = np.load(HERE / "digits.npz")
    x_test = (data["x_test"].astype(np.float32) / 16)[:, None]
    graph = nvmc.load(HERE / "digits_cnn.onnx", input_shapes={"image": x_test.shape})

    def accuracy(g) -> float:
        return 100 * float(np.mean(Session(g).run({"image": x_test})["logits"].argmax(1) == data["y_test"]))

    t = nvmc.analyze(graph).totals
    print(f"{'pipeline':62s} {'accuracy':>8s} {'weights':>9s} {'MMAC':>6s}")
    print(f"{'(float)':62s} {accuracy(graph):7.2f}% {t['weight_bytes']:7d} B {t['macs'] / 1e6:6.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calibration.npz"
        np.savez(calib, image=(data["x_train"][:720].astype(np.float32) / 16)[:, None])
        for pipeline in PIPELINES:
            g = graph.copy()
            spec = pipeline.replace("quantize{", f'quantize{{inputs="{calib}",')
            run_pipeline(g, spec.replace("}", ",measure=false}"))
            t = nvmc.analyze(g).totals
            print(f"{pipeline:62s} {accuracy(g):7.2f}% {t['weight_bytes']:7d} B {t['macs'] / 1e6:6.2f}")


if __name__ == "__main__":
    main()
