"""An HDC language-recognition classifier: numpy training and reference, ONNX export.

The classic binary HDC recipe (Rahimi et al., ISLPED 2016; the use case of the racetrack
paper, shared/reference/seeds.md #8), with D-bit bool hypervectors:

* item memory: one random hypervector per symbol of ``ALPHABET`` (26 letters + space);
* n-gram encoding: gram_t = rho^(n-1)(X_t) xor rho^(n-2)(X_t+1) xor ... xor X_t+n-1,
  rho = rotation by one bit (numpy.roll along the hypervector axis);
* bundling: each bit of a text's hypervector is the majority over its n-grams
  (count of ones > G // 2 for G n-grams);
* associative memory: one bundled hypervector per language (trained on that language's
  text); a text is classified by the smallest Hamming distance.

``build_onnx`` writes the same inference computation as a plain ONNX graph (opset 17:
Gather, Slice, Concat, Xor, Cast, ReduceSum, Greater, Unsqueeze, ArgMin) built with
onnx.helper; ``reference`` is its numpy twin, bit for bit. The corpus (``corpus/*.txt``)
is original text written for nvmc, a few KB per language.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import onnx

from nvmc.validate.nets import hdc_query

ALPHABET = "abcdefghijklmnopqrstuvwxyz "
CORPUS = Path(__file__).resolve().parent / "corpus"
LANGUAGES = {"de": "German", "en": "English", "es": "Spanish", "fi": "Finnish", "fr": "French", "it": "Italian"}
OPSET = 17


# ------------------------------------------------------------------ text
def normalize(text: str) -> str:
    """Lower case, accents removed (é -> e, ß -> ss), everything but a-z a single space."""
    text = unicodedata.normalize("NFKD", text.lower().replace("ß", "ss"))
    kept = [c if c in ALPHABET else " " for c in text if not unicodedata.combining(c)]
    return " ".join("".join(kept).split())


def symbols(text: str) -> np.ndarray:
    """Indices into ``ALPHABET`` of a normalised text (int64)."""
    codes = np.frombuffer(text.encode("ascii"), dtype=np.uint8).astype(np.int64)
    return np.where(codes == ord(" "), ALPHABET.index(" "), codes - ord("a"))


def load_corpus(train_fraction: float = 0.7) -> tuple[dict[str, str], dict[str, str]]:
    """(training text, held-out text) per language: the first ``train_fraction`` of each
    file trains, the rest is never seen in training."""
    train, test = {}, {}
    for code in LANGUAGES:
        text = normalize((CORPUS / f"{code}.txt").read_text(encoding="utf-8"))
        cut = int(len(text) * train_fraction)
        train[code], test[code] = text[:cut], text[cut:]
    return train, test


def windows(text: str, length: int) -> list[str]:
    """Non-overlapping windows of ``length`` characters (the last partial one dropped)."""
    return [text[i:i + length] for i in range(0, len(text) - length + 1, length)]


# ------------------------------------------------------------------ HDC in numpy
def item_memory(dim: int, seed: int = 0) -> np.ndarray:
    """bool [len(ALPHABET), dim]: i.i.d. fair bits per symbol."""
    return np.random.default_rng(seed).integers(0, 2, (len(ALPHABET), dim)).astype(bool)


def ngrams(idx: np.ndarray, im: np.ndarray, n: int) -> np.ndarray:
    """bool [..., G, D] n-gram hypervectors of symbol indices [..., L] (G = L - n + 1)."""
    length = idx.shape[-1]
    grams = length - n + 1
    x = im[idx]                                        # [..., L, D]
    out = np.zeros(x.shape[:-2] + (grams, im.shape[1]), dtype=bool)
    for j in range(n):
        out ^= np.roll(x[..., j:j + grams, :], n - 1 - j, axis=-1)
    return out


def bundle(grams: np.ndarray) -> np.ndarray:
    """Majority over the n-gram axis (-2): ones > G // 2."""
    return grams.sum(axis=-2, dtype=np.int64) > grams.shape[-2] // 2


def train(texts: dict[str, str], dim: int = 10_000, n: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    """(item memory, associative memory bool [C, D], language codes in AM order)."""
    im = item_memory(dim, seed)
    langs = sorted(texts)
    am = np.stack([bundle(ngrams(symbols(texts[c]), im, n)) for c in langs])
    return im, am, langs


def reference(idx: np.ndarray, im: np.ndarray, am: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """What the ONNX model computes for symbol indices [B, L]: (class [B] int64, Hamming
    distances [B, C] int32)."""
    query = bundle(ngrams(idx, im, n))                  # [B, D]
    dist = np.logical_xor(query[:, None, :], am[None]).sum(axis=-1, dtype=np.int32)
    return np.argmin(dist, axis=1).astype(np.int64), dist


# ------------------------------------------------------------------ ONNX
def build_onnx(im: np.ndarray, am: np.ndarray, *, length: int, n: int = 4, batch: int = 1,
               name: str = "hdc_language") -> onnx.ModelProto:
    """The inference graph (nvmc.validate.nets.hdc_query, the one nvmc validate costs), checked."""
    model = hdc_query(im, am, length=length, n=n, batch=batch, name=name, opset=OPSET)
    onnx.checker.check_model(model)
    return model
