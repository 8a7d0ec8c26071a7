"""Shared fixtures: the onnx wheel's zoo models with deterministic weights, ORT runners."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

REPO = Path(__file__).resolve().parents[1]
ZOO_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
ZOO_NAMES = sorted(p.stem for p in ZOO_DIR.glob("light_*.onnx"))
SMALL_ZOO = ["light_squeezenet", "light_shufflenet", "light_inception_v1"]


def zoo_path(name: str) -> Path:
    return ZOO_DIR / f"{name}.onnx"


@lru_cache(maxsize=2)
def materialize_weights(name: str, seed: int = 0) -> onnx.ModelProto:
    """The zoo model with every ConstantOfShape weight replaced by seeded random data.

    The zoo files ship weights as constant fills (0.02), which make outputs trivial. Here
    1-D tensors (biases, BN scale/mean/var) get U(0.5, 1.5) (positive: safe as variances)
    and N-D weights He-normal values, so activations stay in range through deep models.
    """
    model = onnx.load(zoo_path(name))
    rng = np.random.default_rng(seed)
    inits = {t.name: t for t in model.graph.initializer}
    keep = []
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape" and node.input[0] in inits:
            shape = tuple(int(d) for d in numpy_helper.to_array(inits[node.input[0]]))
            if len(shape) <= 1:
                data = rng.uniform(0.5, 1.5, size=shape).astype(np.float32)
            else:  # float32 throughout: vgg19 has 143 M weights
                data = rng.standard_normal(size=shape, dtype=np.float32)
                data *= np.float32(np.sqrt(2.0 / int(np.prod(shape[1:]))))
            model.graph.initializer.append(numpy_helper.from_array(data, node.output[0]))
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    model.ir_version = max(model.ir_version, 4)  # IR 3 wants every initializer listed as an input
    return model


def random_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    inits = {t.name for t in model.graph.initializer}
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.dim_value > 0 else 1 for d in tt.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type)
        if np.issubdtype(dtype, np.floating):
            feeds[vi.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[vi.name] = rng.integers(0, 4, size=shape).astype(dtype)
    return feeds


def run_ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray], optimize: bool = True) -> list[np.ndarray]:
    """Run in onnxruntime (CPU). ``optimize=False`` turns ORT's graph rewrites off, so two
    models with the same nodes run the same kernels in the same order (bit-identical)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def run_nvmc(*args: str, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run the installed `nvmc` CLI as a user would (a real subprocess)."""
    env = dict(os.environ, NO_COLOR="1", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", "nvmc", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"nvmc {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def example_models() -> Path:
    """examples/models, built by its committed script if a fresh checkout lacks the files."""
    folder = REPO / "examples" / "models"
    if not (folder / "tiny_cnn.onnx").exists():
        subprocess.run([sys.executable, str(folder / "build_models.py")], check=True)
    return folder
