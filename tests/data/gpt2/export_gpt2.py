#!/usr/bin/env python
"""Export small GPT-2-class decoders (random, seeded weights) to ONNX for nvmc's tests.

Not a test and not part of nvmc: it needs torch and transformers, which nvmc does not
depend on.  Run it from a throwaway environment (see README.md beside this file for the
exact versions and command); the committed .onnx files are its output.

    python export_gpt2.py                      # tiny: tiny_gpt2.onnx + tiny_gpt2_past.onnx here
    python export_gpt2.py --check              # ... and compare onnxruntime against torch
    python export_gpt2.py --check --ort-python /work/venv/bin/python   # ORT half in another env
    python export_gpt2.py --size distil --out /tmp/gpt2 --check        # ~330 MB, not committed

Two files per size:

* ``{stem}.onnx``: input_ids [batch, seq] int64, attention_mask [batch, seq] int64
  -> logits [batch, seq, vocab] float32.
* ``{stem}_past.onnx`` ("decoder with past"): input_ids [batch, seq],
  attention_mask [batch, past_seq + seq], past_key_values.{i}.key / .value
  [batch, n_head, past_seq, head_dim] float32 -> logits [batch, seq, vocab],
  present.{i}.key / .value [batch, n_head, past_seq + seq, head_dim].
  Position ids are past_seq + arange(seq), computed inside the graph.  past_seq may be 0
  (prefill); seq is 1 for a decode step.

Export: torch.onnx.export(dynamo=True) with dynamic_shapes, opset 18, eager attention
(plain MatMul/Softmax, no fused SDPA); --exporter torchscript uses the legacy TorchScript
exporter with dynamic_axes instead (same inputs, outputs and dim names; not committed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 0
OPSET = 18

SIZES = {
    # n_positions kept at 512 so the wpe table stays small.
    "tiny": {"n_layer": 2, "n_head": 4, "n_embd": 64, "vocab_size": 1000, "n_positions": 512},
    # distilgpt2's shape (n_positions 1024 as in distilgpt2)
    "distil": {"n_layer": 6, "n_head": 12, "n_embd": 768, "vocab_size": 50257, "n_positions": 1024},
}
STEMS = {"tiny": "tiny_gpt2", "distil": "distil_gpt2"}

# (batch, seq, past_seq) cases checked against torch; the first decode case is the
# one the brief asks for (one token after a past of 7).
PAST_CASES = [(1, 1, 7), (1, 16, 0), (2, 5, 7), (1, 1, 31)]
NOPAST_CASES = [(1, 16), (2, 7), (1, 1)]


# --------------------------------------------------------------------------- torch side


def build_model(size: str):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(SEED)
    cfg = GPT2Config(
        **SIZES[size],
        # dropout off: the export is of inference
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        use_cache=True,
    )
    cfg._attn_implementation = "eager"
    model = GPT2LMHeadModel(cfg).eval()
    # GPT2's init leaves every bias at 0 and every LayerNorm weight at 1; the exporter's
    # optimiser would then drop the biases and merge the LayerNorm parameters into one
    # shared initializer, a graph no trained checkpoint gives.  Make them distinct too.
    gen = torch.Generator().manual_seed(SEED + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(0.02 * torch.randn(p.shape, generator=gen))
            elif ".ln_" in name and name.endswith(".weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
    return model, cfg


def with_past(model, n_layer):
    """GPT2LMHeadModel with past/present as flat tensors, in the ONNX names' order."""
    import torch
    from transformers import DynamicCache

    class WithPast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, *past):
            cache = DynamicCache([(past[2 * i], past[2 * i + 1]) for i in range(n_layer)])
            out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                             cache=cache, use_cache=True, return_dict=True)
            present = []
            for layer in out.cache.layers:
                present += [layer.keys, layer.values]
            return (out.logits, *present)

    return WithPast()


def no_past(model):
    """GPT2LMHeadModel: (input_ids, attention_mask) -> logits, no cache."""
    import torch

    class NoPast(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              use_cache=False, return_dict=True).logits

    return NoPast()


def past_names(n_layer):
    names_in, names_out = [], []
    for i in range(n_layer):
        for kv in ("key", "value"):
            names_in.append(f"past_key_values.{i}.{kv}")
            names_out.append(f"present.{i}.{kv}")
    return names_in, names_out


def make_inputs(cfg, batch, seq, past_seq, rng, with_past=True):
    """Random ids, a mask, and random past (numpy).

    The mask is all ones except that rows after the first are left-padded by 2 (when
    there are more than 2 positions), so a check sees the mask reach the attention.
    """
    ids = rng.integers(0, cfg.vocab_size, size=(batch, seq), dtype=np.int64)
    total = past_seq + seq if with_past else seq
    mask = np.ones((batch, total), dtype=np.int64)
    if total > 2:
        mask[1:, :2] = 0
    feeds = {"input_ids": ids, "attention_mask": mask}
    if with_past:
        hd = cfg.n_embd // cfg.n_head
        for name in past_names(cfg.n_layer)[0]:
            feeds[name] = rng.standard_normal((batch, cfg.n_head, past_seq, hd)).astype(np.float32)
    return feeds


def export(size: str, out_dir: Path, exporter: str = "dynamo") -> list[Path]:
    import torch

    model, cfg = build_model(size)
    stem = STEMS[size]
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    pin, pout = past_names(cfg.n_layer)
    # traced/exported with batch 2, seq 5, past_seq 3 so that no dim is specialised to 0 or 1
    f0 = make_inputs(cfg, 2, 5, 0, rng, with_past=False)
    f1 = make_inputs(cfg, 2, 5, 3, rng, with_past=True)
    jobs = [
        (out_dir / f"{stem}.onnx", no_past(model),
         tuple(torch.from_numpy(f0[k]) for k in ("input_ids", "attention_mask")),
         ["input_ids", "attention_mask"], ["logits"]),
        (out_dir / f"{stem}_past.onnx", with_past(model, cfg.n_layer),
         tuple(torch.from_numpy(f1[k]) for k in ["input_ids", "attention_mask", *pin]),
         ["input_ids", "attention_mask", *pin], ["logits", *pout]),
    ]
    for path, module, args, inames, onames in jobs:
        has_past = len(inames) > 2
        if exporter == "dynamo":
            B = torch.export.Dim("batch")
            S = torch.export.Dim("seq")
            P = torch.export.Dim("past_seq")
            T = torch.export.Dim("total_seq")
            shapes = {"input_ids": {0: B, 1: S},
                      "attention_mask": {0: B, 1: T if has_past else S}}
            if has_past:
                shapes["past"] = tuple({0: B, 2: P} for _ in pin)
            torch.onnx.export(module, args, str(path), dynamo=True, opset_version=OPSET,
                              input_names=inames, output_names=onames,
                              dynamic_shapes=shapes, external_data=False, optimize=True,
                              verbose=False)
        else:
            dyn = {"input_ids": {0: "batch", 1: "seq"},
                   "attention_mask": {0: "batch", 1: "total_seq" if has_past else "seq"},
                   "logits": {0: "batch", 1: "seq"}}
            for n in inames[2:]:
                dyn[n] = {0: "batch", 2: "past_seq"}
            for n in onames[1:]:
                dyn[n] = {0: "batch", 2: "total_seq"}
            torch.onnx.export(module, args, str(path), dynamo=False, opset_version=OPSET,
                              input_names=inames, output_names=onames, dynamic_axes=dyn,
                              do_constant_folding=True)
    written = [j[0] for j in jobs]
    tidy(written, size, exporter)
    return written


# dim expressions the dynamo exporter writes for past_seq + seq
TOTAL_EXPRS = {"past_seq + seq", "seq + past_seq"}


def tidy(paths, size, exporter):
    """Make the files small and deterministic.

    * node doc strings and metadata (source paths and FX stack traces of this machine) go;
    * 'past_seq + seq' (dynamo's name for present's length) becomes total_seq, the same
      name as attention_mask's length in the past model;
    * the TorchScript exporter constant-folds lm_head's transpose of the tied wte into a
      second (vocab x n_embd) initializer; it is put back as Transpose(wte), which is what
      the dynamo exporter writes and halves the file.
    """
    import onnx
    from onnx import helper, numpy_helper

    for p in paths:
        m = onnx.load(str(p))
        g = m.graph
        for n in g.node:
            n.doc_string = ""
            del n.metadata_props[:]
        for v in [*g.input, *g.output, *g.value_info]:
            v.doc_string = ""
            for d in v.type.tensor_type.shape.dim:
                if d.dim_param in TOTAL_EXPRS:
                    d.dim_param = "total_seq"
        if exporter == "torchscript":
            inits = {t.name: t for t in g.initializer}
            wte_name = "model.transformer.wte.weight"
            wte = numpy_helper.to_array(inits[wte_name])
            for name, t in list(inits.items()):
                if name != wte_name and tuple(t.dims) == wte.shape[::-1] \
                        and np.array_equal(numpy_helper.to_array(t), wte.T):
                    g.initializer.remove(t)
                    g.node.insert(0, helper.make_node("Transpose", [wte_name], [name],
                                                      perm=[1, 0], name="/lm_head/Transpose"))
        m.producer_name = "nvmc tests/data/gpt2/export_gpt2.py"
        m.producer_version = ""
        del m.metadata_props[:]
        for k, v in (("source", "GPT2LMHeadModel(GPT2Config(...)), random weights"),
                     ("seed", str(SEED)), ("size", size), ("exporter", exporter),
                     ("config", json.dumps(SIZES[size], sort_keys=True))):
            e = m.metadata_props.add()
            e.key, e.value = k, v
        onnx.checker.check_model(m, full_check=True)
        onnx.save(m, str(p))


def torch_reference(size: str, out_dir: Path, npz: Path):
    """Torch outputs for every check case, written as one .npz next to its inputs."""
    import torch

    model, cfg = build_model(size)
    stem = STEMS[size]
    rng = np.random.default_rng(SEED + 1)
    data = {}
    cases = []
    pin, pout = past_names(cfg.n_layer)
    with torch.no_grad():
        for b, s in NOPAST_CASES:
            tag = f"nopast_b{b}_s{s}"
            f = make_inputs(cfg, b, s, 0, rng, with_past=False)
            out = no_past(model)(*(torch.from_numpy(f[k]) for k in ("input_ids", "attention_mask")))
            cases.append({"tag": tag, "model": f"{stem}.onnx", "inputs": list(f), "outputs": ["logits"]})
            for k, v in f.items():
                data[f"{tag}/in/{k}"] = v
            data[f"{tag}/out/logits"] = out.numpy()
        for b, s, p in PAST_CASES:
            tag = f"past_b{b}_s{s}_p{p}"
            f = make_inputs(cfg, b, s, p, rng, with_past=True)
            out = with_past(model, cfg.n_layer)(
                *(torch.from_numpy(f[k]) for k in ["input_ids", "attention_mask", *pin]))
            names = ["logits", *pout]
            cases.append({"tag": tag, "model": f"{stem}_past.onnx", "inputs": list(f), "outputs": names})
            for k, v in f.items():
                data[f"{tag}/in/{k}"] = v
            for n, t in zip(names, out):
                data[f"{tag}/out/{n}"] = t.numpy()
        # consistency of the two exports' torch sides: prefill 16 tokens + 1 decode
        # step with the past equals the no-past model on the 17 tokens (last position).
        ids = rng.integers(0, cfg.vocab_size, size=(1, 17), dtype=np.int64)
        full = no_past(model)(torch.from_numpy(ids), torch.ones(1, 17, dtype=torch.int64))
        data["chain/ids"] = ids
        data["chain/full_logits"] = full.numpy()
    data["cases.json"] = np.frombuffer(json.dumps({"cases": cases, "n_layer": cfg.n_layer,
                                                       "n_head": cfg.n_head,
                                                       "head_dim": cfg.n_embd // cfg.n_head}).encode(),
                                       dtype=np.uint8)
    np.savez(npz, **data)


# --------------------------------------------------------------------------- ORT side
# Only numpy + onnxruntime from here on, so --ort-python can run it in nvmc's venv.


def ort_check(out_dir: Path, npz: Path) -> dict:
    import onnxruntime as ort

    z = np.load(npz)
    meta = json.loads(bytes(z["cases.json"]).decode())
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sessions = {}

    def sess(name):
        if name not in sessions:
            sessions[name] = ort.InferenceSession(str(out_dir / name), so,
                                                  providers=["CPUExecutionProvider"])
        return sessions[name]

    report = {"onnxruntime": ort.__version__, "cases": {}}
    for c in meta["cases"]:
        s = sess(c["model"])
        feeds = {k: z[f"{c['tag']}/in/{k}"] for k in c["inputs"]}
        got = s.run(c["outputs"], feeds)
        errs = {}
        for n, g in zip(c["outputs"], got):
            ref = z[f"{c['tag']}/out/{n}"]
            if g.shape != ref.shape:
                raise SystemExit(f"{c['tag']} {n}: shape {g.shape} != torch {ref.shape}")
            errs[n] = float(np.max(np.abs(g - ref)))
        report["cases"][c["tag"]] = {
            "model": c["model"],
            "max_abs_err_logits": errs["logits"],
            "max_abs_err_present": max((v for k, v in errs.items() if k != "logits"), default=None),
            "logits_absmax": float(np.max(np.abs(z[f"{c['tag']}/out/logits"]))),
        }

    # chain: prefill 16 with past_seq=0, then decode token 17 with the returned present.
    stem = meta["cases"][-1]["model"]
    past_model = sess(stem)
    nopast = sess(stem.replace("_past.onnx", ".onnx"))
    ids = z["chain/ids"]
    L, H, D = meta["n_layer"], meta["n_head"], meta["head_dim"]
    empty = {f"past_key_values.{i}.{kv}": np.zeros((1, H, 0, D), np.float32)
             for i in range(L) for kv in ("key", "value")}
    pre = past_model.run(None, {"input_ids": ids[:, :16],
                                "attention_mask": np.ones((1, 16), np.int64), **empty})
    onames = [o.name for o in past_model.get_outputs()]
    present = dict(zip(onames, pre))
    feeds = {"input_ids": ids[:, 16:], "attention_mask": np.ones((1, 17), np.int64)}
    for i in range(L):
        for kv in ("key", "value"):
            feeds[f"past_key_values.{i}.{kv}"] = present[f"present.{i}.{kv}"]
    step = past_model.run(["logits"], feeds)[0]
    full_ort = nopast.run(["logits"], {"input_ids": ids,
                                       "attention_mask": np.ones((1, 17), np.int64)})[0]
    full_torch = z["chain/full_logits"]
    report["chain_prefill16_decode1"] = {
        "prefill_vs_torch_full": float(np.max(np.abs(pre[0] - full_torch[:, :16]))),
        "decode_vs_torch_full_last": float(np.max(np.abs(step[0, -1] - full_torch[0, -1]))),
        "nopast_ort_vs_torch": float(np.max(np.abs(full_ort - full_torch))),
    }
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", choices=sorted(SIZES), default="tiny")
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default: this script's folder for tiny; required for distil)")
    ap.add_argument("--exporter", choices=["dynamo", "torchscript"], default="dynamo",
                    help="torch.onnx.export(dynamo=True) (default) or the legacy TorchScript one")
    ap.add_argument("--check", action="store_true",
                    help="run each export in onnxruntime against torch and print max abs errors")
    ap.add_argument("--tol", type=float, default=1e-4, help="--check fails above this max abs error")
    ap.add_argument("--no-export", action="store_true", help="only --check existing files")
    ap.add_argument("--ort-python", default=None,
                    help="python interpreter (numpy + onnxruntime) that runs the onnxruntime half of --check")
    ap.add_argument("--_ort-eval", nargs=2, dest="ort_eval", metavar=("OUT_DIR", "NPZ"),
                    help=argparse.SUPPRESS)
    a = ap.parse_args(argv)

    if a.ort_eval:
        print(json.dumps(ort_check(Path(a.ort_eval[0]), Path(a.ort_eval[1]))))
        return 0

    out = a.out or (HERE if a.size == "tiny" else None)
    if out is None:
        ap.error("--size distil writes ~330 MB: give --out (it is not committed)")

    if not a.no_export:
        import torch
        import transformers

        print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
              f"opset {OPSET}, exporter {a.exporter}")
        for p in export(a.size, out, a.exporter):
            print(f"wrote {p} ({p.stat().st_size} bytes)")

    if a.check:
        with tempfile.TemporaryDirectory() as td:
            npz = Path(td) / "ref.npz"
            torch_reference(a.size, out, npz)
            if a.ort_python:
                r = subprocess.run([a.ort_python, __file__, "--_ort-eval", str(out), str(npz)],
                                   check=True, capture_output=True, text=True)
                report = json.loads(r.stdout.strip().splitlines()[-1])
                report["ort_python"] = a.ort_python
            else:
                report = ort_check(out, npz)
        print(json.dumps(report, indent=1))
        worst = max([v["max_abs_err_logits"] for v in report["cases"].values()]
                    + [v["max_abs_err_present"] or 0.0 for v in report["cases"].values()]
                    + list(report["chain_prefill16_decode1"].values()))
        print(f"worst max abs error {worst:.3g} (tol {a.tol:g})")
        if worst > a.tol:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
