"""Export GPT-2-class decoders to ONNX for nvmc's generation costing (issue #27).

Run in a throwaway venv with torch, transformers, onnx and onnxruntime (see README.md here for
the exact versions and commands); nvmc itself does not need torch:

    python examples/models/gpt2/export_gpt2.py                      # the three committed files
    python examples/models/gpt2/export_gpt2.py --weighted-distil DIR # + distilgpt2 with weights

Weights are random (GPT2LMHeadModel's own init under a fixed seed): nothing is downloaded.

* gpt2_tiny_past.onnx: tiny GPT-2 (2 layers, d=64, 4 heads, 1024 positions, vocab 256),
  decoder-with-past: inputs input_ids[batch,seq], attention_mask[batch,total_seq],
  past_key_values.{i}.key/value[batch,4,past_seq,16]; outputs logits[batch,seq,256],
  present.{i}.key/value[batch,4,total_seq,16] (total_seq = past_seq + seq).
* gpt2_tiny.onnx: the same model and weights without a cache (use_cache=False): inputs
  input_ids[batch,seq], attention_mask[batch,seq]; output logits[batch,seq,256].
* distilgpt2_shape_past.onnx: distilgpt2's configuration (6 layers, d=768, 12 heads, vocab
  50257) with past, every initializer of 1024 elements or more replaced by a ConstantOfShape
  fill as the onnx wheel's light model-zoo files are (onnx/backend/test/data/light): shapes,
  MACs and parameter bytes are exact, the file is small, and it still runs (on constant
  weights, so its logits mean nothing).
* --weighted-distil DIR writes distilgpt2_past.onnx (and .onnx.data) with its random weights
  kept (about 330 MB; not committed): the model benchmarks/bench_ort_generation.py times.

Each export is checked in onnxruntime against torch: a prefill with past_seq=0 (empty
past tensors, which onnxruntime accepts), then decode steps feeding present back as past,
including a left-padded batch so the attention mask is known to be live in the graph.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
SEED = 2027
OPSET = 17

# vocab 256 (byte-sized), not 1000: the tied lm_head is exported as its own transposed
# initializer, and 2 x 1000 x 64 floats of embeddings would push the file past 1 MB.
TINY = {"n_layer": 2, "n_embd": 64, "n_head": 4, "n_positions": 1024, "vocab_size": 256}
DISTILGPT2 = {"n_layer": 6, "n_embd": 768, "n_head": 12, "n_positions": 1024, "vocab_size": 50257}


def make_model(arch: dict, seed: int = SEED):
    """A randomly initialised GPT2LMHeadModel with eager attention (plain MatMul/Softmax)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(**arch, n_inner=None, activation_function="gelu_new",
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=0, eos_token_id=0, tie_word_embeddings=True)
    config._attn_implementation = "eager"
    model = GPT2LMHeadModel(config)
    model.eval()
    return model


class WithPast(torch.nn.Module):
    """Flat tensors in and out, so the ONNX graph has the usual decoder-with-past signature."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.n_layer = model.config.n_layer

    def forward(self, input_ids, attention_mask, *past):
        from transformers import DynamicCache

        cache = DynamicCache([(past[2 * i], past[2 * i + 1]) for i in range(self.n_layer)])
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, cache=cache,
                         use_cache=True)
        present = []
        for layer in out.past_key_values.layers:
            present += [layer.keys, layer.values]
        return (out.logits, *present)


class NoPast(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits


def io_names(n_layer: int) -> tuple[list[str], list[str]]:
    past = [f"past_key_values.{i}.{kv}" for i in range(n_layer) for kv in ("key", "value")]
    present = [f"present.{i}.{kv}" for i in range(n_layer) for kv in ("key", "value")]
    return ["input_ids", "attention_mask", *past], ["logits", *present]


def export(model, path: Path, with_past: bool) -> None:
    """torch.onnx.export (TorchScript tracer, opset 17) with named symbolic dimensions."""
    cfg = model.config
    head_dim = cfg.n_embd // cfg.n_head
    batch, seq, past_seq = 2, 3, 5  # trace with past_seq > 0; every size stays symbolic
    ids = torch.randint(0, cfg.vocab_size, (batch, seq))
    if with_past:
        inputs, outputs = io_names(cfg.n_layer)
        past = [torch.randn(batch, cfg.n_head, past_seq, head_dim) for _ in range(2 * cfg.n_layer)]
        args = (ids, torch.ones(batch, past_seq + seq, dtype=torch.int64), *past)
        axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "total_seq"},
                "logits": {0: "batch", 1: "seq"}}
        axes |= {n: {0: "batch", 2: "past_seq"} for n in inputs[2:]}
        axes |= {n: {0: "batch", 2: "total_seq"} for n in outputs[1:]}
        module = WithPast(model)
    else:
        inputs, outputs = ["input_ids", "attention_mask"], ["logits"]
        args = (ids, torch.ones(batch, seq, dtype=torch.int64))
        axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                "logits": {0: "batch", 1: "seq"}}
        module = NoPast(model)
    with torch.no_grad():
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                          dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True,
                          dynamo=False)
    proto = onnx.load(str(path), load_external_data=True)
    proto.producer_name = "nvmc examples/models/gpt2/export_gpt2.py"
    arch = {k: getattr(cfg, k) for k in ("n_layer", "n_embd", "n_head", "n_positions", "vocab_size")}
    proto.doc_string = f"GPT-2 {arch}, random init seed {SEED}, {'with' if with_past else 'without'} past"
    save(proto, path)


def save(proto: onnx.ModelProto, path: Path) -> None:
    """Weights inline when small (the committed files); over 100 MB in PATH.data beside it."""
    for f in (path, path.with_name(path.name + ".data")):
        f.unlink(missing_ok=True)
    external = sum(t.ByteSize() for t in proto.graph.initializer) > 100_000_000
    onnx.save(proto, str(path), save_as_external_data=external, all_tensors_to_one_file=True,
              location=path.name + ".data")


def strip_initializers(proto: onnx.ModelProto, min_elements: int = 1024) -> onnx.ModelProto:
    """Replace every float initializer of >= min_elements by ConstantOfShape(shape) filled
    with one value of its dtype (0.02, as onnx's light zoo files), the shape an int64
    initializer named NAME__SHAPE. Small ones (shape constants, LayerNorm params) stay.
    """
    keep, fills = [], []
    for init in proto.graph.initializer:
        n = int(np.prod(init.dims)) if init.dims else 1
        if n < min_elements or init.data_type not in (TensorProto.FLOAT, TensorProto.FLOAT16):
            keep.append(init)
            continue
        shape_name = init.name + "__SHAPE"
        keep.append(numpy_helper.from_array(np.asarray(init.dims, dtype=np.int64), shape_name))
        value = helper.make_tensor("value", init.data_type, [1], [0.02])
        fills.append(helper.make_node("ConstantOfShape", [shape_name], [init.name],
                                      name=init.name + "__fill", value=value))
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(keep)
    nodes = fills + list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return proto


def check(path: Path, model, with_past: bool, compare: bool = True) -> str:
    """Run path in onnxruntime: prefill (past_seq=0) then 3 decode steps, on a batch of 2
    where row 1 is left-padded by 2 tokens; compare logits with torch when compare."""
    import onnxruntime as ort

    cfg = model.config
    head_dim = cfg.n_embd // cfg.n_head
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(SEED)
    prompt = 7
    ids = rng.integers(0, cfg.vocab_size, (2, prompt), dtype=np.int64)
    mask = np.ones((2, prompt), dtype=np.int64)
    mask[1, :2] = 0
    worst = 0.0

    def ref(all_ids, all_mask):
        with torch.no_grad():
            return model(input_ids=torch.from_numpy(all_ids), attention_mask=torch.from_numpy(all_mask),
                         use_cache=False).logits.numpy()

    if not with_past:
        (logits,) = sess.run(None, {"input_ids": ids, "attention_mask": mask})
        if compare:
            r = ref(ids, mask)
            worst = float(np.abs(logits - r)[mask.astype(bool)].max())
        return f"{path.name}: ran seq={prompt} logits {logits.shape}, max |ort - torch| = {worst:.2e}"

    inputs, _ = io_names(cfg.n_layer)
    empty = np.zeros((2, cfg.n_head, 0, head_dim), dtype=np.float32)
    feed = {"input_ids": ids, "attention_mask": mask} | {n: empty for n in inputs[2:]}
    all_ids, all_mask = ids, mask
    for step in range(4):
        res = sess.run(None, feed)
        logits, present = res[0], res[1:]
        assert present[0].shape[2] == all_ids.shape[1], (present[0].shape, all_ids.shape)
        if compare:
            r = ref(all_ids, all_mask)[:, -logits.shape[1]:]
            valid = all_mask[:, -logits.shape[1]:].astype(bool)
            worst = max(worst, float(np.abs(logits - r)[valid].max()))
        nxt = logits[:, -1].argmax(-1)[:, None].astype(np.int64)
        all_ids = np.concatenate([all_ids, nxt], 1)
        all_mask = np.concatenate([all_mask, np.ones((2, 1), np.int64)], 1)
        feed = {"input_ids": nxt, "attention_mask": all_mask} | dict(zip(inputs[2:], present))
    return (f"{path.name}: prefill past_seq=0 seq={prompt}, 3 decode steps to total_seq={all_ids.shape[1] - 1}"
            + (f", max |ort - torch| = {worst:.2e}" if compare else " (constant weights: not compared)"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=HERE, help="folder for the committed files")
    ap.add_argument("--weighted-distil", type=Path, metavar="DIR",
                    help="also write DIR/distilgpt2_past.onnx with its random weights (not committed)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)

    tiny = make_model(TINY)
    export(tiny, a.out / "gpt2_tiny_past.onnx", with_past=True)
    print(check(a.out / "gpt2_tiny_past.onnx", tiny, True))
    export(tiny, a.out / "gpt2_tiny.onnx", with_past=False)
    print(check(a.out / "gpt2_tiny.onnx", tiny, False))

    distil = make_model(DISTILGPT2)
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "distilgpt2_past.onnx"
        export(distil, full, with_past=True)
        if a.weighted_distil:
            a.weighted_distil.mkdir(parents=True, exist_ok=True)
            kept = a.weighted_distil / "distilgpt2_past.onnx"
            save(onnx.load(str(full)), kept)
            print(check(kept, distil, True))
        stripped = strip_initializers(onnx.load(str(full)))
    stripped.doc_string += "; initializers >= 1024 elements replaced by ConstantOfShape(0.02)"
    save(stripped, a.out / "distilgpt2_shape_past.onnx")
    onnx.checker.check_model(str(a.out / "distilgpt2_shape_past.onnx"))
    print(check(a.out / "distilgpt2_shape_past.onnx", distil, True, compare=False))
    for name in ("gpt2_tiny_past.onnx", "gpt2_tiny.onnx", "distilgpt2_shape_past.onnx"):
        print(f"{name}: {os.path.getsize(a.out / name)} B")


if __name__ == "__main__":
    main()
