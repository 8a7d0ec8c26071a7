"""Model code the DRAM-PIM families (``upmem``, ``mensa``, ``simdram``) and the ``roofline``
baselines share: the GEMMs a MAC node runs as, and the operand widths each node computes at.
Nothing here is configuration: keys, defaults and their sources are in each family's data file
(``data/families/<family>.toml``), op classes in the workload's ``kind`` column (ir/kinds.py).

Operand widths (:func:`operand_bits`) come from the workload's exact precision columns
(``act_bits``, ``weight_bits``, ``out_bits``: the graph's types, QDQ casts and ``#quant``
annotations), snapped to a power of two: the nearest one for activations and outputs; for
weights the one at or below, since ``weight_bits`` counts the codes plus their share of scales,
zero points and codebooks (an int8 depthwise kernel of 9 weights per channel with a float scale
and a zero point per channel stores 12.4 bits per weight and computes at 8):

* a MAC node multiplies its activation (``a_bits``) by its weight (``w_bits``; the second
  activation of an activation x activation MatMul, which has no weight) and computes at
  ``bits`` = the wider of the two;
* any other node computes at the width of its first run-time input (of its output when it has
  none).

:func:`precision_class` sorts widths into the classes the families price differently:
binary (1 bit), integers of up to 8 bits, wider integers, floating point, by nvmc's one naming
rule (``family.precision_name``: 32 bits and more are floating point).
"""

from __future__ import annotations

import numpy as np

from .family import KIND, precision_name
from .support import op_mask

# Recurrent layers: their GEMM batch is the time steps, which run one after another.
RECURRENT_OPS = frozenset({"LSTM", "GRU", "RNN"})
PRECISION_CLASSES = ("binary", "int8", "int16", "float")   # int8: at most 8 bits; int16: wider
BINARY, INT8, INT16, FLOAT = range(len(PRECISION_CLASSES))


def is_mac(workload) -> np.ndarray:
    return workload.columns["kind"] == KIND["mac"]


def recurrent(workload) -> np.ndarray:
    """MAC nodes that are recurrent layers (LSTM, GRU, RNN)."""
    return is_mac(workload) & op_mask(workload.ops, RECURRENT_OPS)


def gemm_dims(workload) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(batch, M, N, K) of every node's GEMMs, each at least 1. A batched MatMul whose weight
    the whole batch shares (``gemm_batch x K x N`` at least twice its parameters) is one GEMM
    of ``batch x M`` rows; recurrent layers keep their time steps as a batch (each step needs
    the previous one)."""
    c = workload.columns
    f = np.float64
    gb, gm, gn, gk = (np.maximum(c[k].astype(f), 1.0) for k in ("gemm_batch", "gemm_m", "gemm_n", "gemm_k"))
    params = c["params"].astype(f)
    reuse = np.rint(gb * gk * gn / np.maximum(params, 1.0))
    shared = is_mac(workload) & (params > 0) & (gb > 1) & (reuse >= 2) & ~recurrent(workload)
    return np.where(shared, 1.0, gb), np.where(shared, gb * gm, gm), gn, gk


def snap_bits(bits: np.ndarray, rounding=np.rint) -> np.ndarray:
    """The nearest power of two (in log2; ``rounding=np.floor``: the one at or below); 0 (no
    operand) stays 0."""
    b = np.asarray(bits, dtype=np.float64)
    snapped = np.exp2(rounding(np.log2(np.where(b > 0, b, 1.0))))
    return np.where(b > 0, snapped, 0.0)


def operand_bits(workload, activation_bits: float = 0) -> dict[str, np.ndarray]:
    """``w_bits``, ``a_bits``, ``out_bits`` and ``bits`` per node (module docstring).
    ``activation_bits`` > 0 replaces the activation width of MAC nodes with weights."""
    c = workload.columns
    mac = is_mac(workload)
    a, out = snap_bits(c["act_bits"]), snap_bits(c["out_bits"])
    w = snap_bits(c["weight_bits"], np.floor)    # the codes, under their share of scales and zero points
    w = np.where(mac & (w <= 0), a, w)           # activation x activation: both operands activations
    a = np.where(mac & (a <= 0), w, a)
    if activation_bits > 0:
        a = np.where(mac & (c["params"] > 0), float(activation_bits), a)
    own = np.where(a > 0, a, out)
    bits = np.where(mac, np.maximum(w, a), own)
    return {"w_bits": np.where(mac, w, bits), "a_bits": np.where(mac, a, bits), "out_bits": out, "bits": bits}


def precision_class(bits: np.ndarray) -> np.ndarray:
    """BINARY, INT8 (integers of at most 8 bits), INT16 (wider integers) or FLOAT per width (a
    power of two, as :func:`snap_bits` gives), by ``precision_name``; 0 bits (no operand) is FLOAT."""
    b = np.asarray(bits, dtype=np.float64)
    log2 = np.where(b > 0, np.rint(np.log2(np.where(b > 0, b, 1.0))), -1.0).astype(np.int64)
    widths = range(int(log2.max(initial=0)) + 1)
    table = np.array([_class(precision_name(2.0 ** k)) for k in widths] + [FLOAT])    # [-1]: no operand
    return table[log2]


def _class(name: str) -> int:
    if name == "binary":
        return BINARY
    if name.startswith("int"):
        return INT8 if int(name.removeprefix("int")) <= 8 else INT16
    return FLOAT

