"""Mapping GEMMs onto a rows x cols systolic array: folds, compute cycles, operand accesses.

The cycle model is the one of SCALE-Sim v3 (scalesim 3.0.0, read from its source; the
derivation and 70 reproduced runs are in tests/data/refs/scalesim/README.md). A GEMM
``(M x K) @ (K x N)`` maps onto the array's R rows and C columns as (Sr, Sc, T):

=========  =====================  ==========  ===========================================
dataflow   Sr (spread on rows)    Sc (cols)   T (streamed in time)
=========  =====================  ==========  ===========================================
``os``     M (output pixels)      N (filters) K (reduction)   outputs stay in the PEs
``ws``     K (reduction)          N (filters) M (pixels)      weights stay in the PEs
``is``     K (reduction)          M (pixels)  N (filters)     inputs stay in the PEs
=========  =====================  ==========  ===========================================

``row_folds = ceil(Sr / R)``, ``col_folds = ceil(Sc / C)``, ``F = row_folds * col_folds``;
folds run one after another with full fill and drain (no overlap), each taking
``R + C + T - 2`` cycles (os) or ``2R + C + T - 2`` (ws, is: R more to load the stationary
operand). SCALE-Sim reports ``F * cycles_per_fold - 1`` (the 0-based index of the last
demand row); so does :func:`compute_cycles`, for one GEMM. Everything is vectorised over
numpy arrays of layers.

Operand accesses between the array and its three buffers (elements, one GEMM), as
SCALE-Sim's DETAILED_ACCESS_REPORT counts them (its ``os`` ofmap-write counter adds
``R + C`` per fold, an artefact not reproduced here):

==========  ==================  ==================  =================================
dataflow    ifmap reads         filter reads        ofmap writes (partial sums)
==========  ==================  ==================  =================================
``os``      col_folds * M * K   row_folds * K * N   M * N
``ws``      col_folds * M * K   K * N               row_folds * M * N
``is``      M * K               col_folds * K * N   row_folds * M * N
==========  ==================  ==================  =================================

In ``ws`` and ``is`` each row fold after the first also reads back the partial sums it
accumulates into: ``(row_folds - 1) * M * N`` ofmap reads (SCALE-Sim does not count these).
"""

from __future__ import annotations

import numpy as np

DATAFLOWS = ("os", "ws", "is")


def spatio_temporal(dataflow: str, m, n, k):
    """(Sr, Sc, T) of a GEMM for a dataflow (module docstring)."""
    if dataflow == "os":
        return m, n, k
    if dataflow == "ws":
        return k, n, m
    if dataflow == "is":
        return k, m, n
    raise ValueError(f"unknown dataflow {dataflow!r}; expected one of {', '.join(DATAFLOWS)}")


def folds(dataflow: str, rows: int, cols: int, m, n, k):
    """(row_folds, col_folds) as int64 arrays."""
    sr, sc, _ = spatio_temporal(dataflow, *(np.asarray(x, dtype=np.int64) for x in (m, n, k)))
    return -(-sr // rows), -(-sc // cols)


def cycles_per_fold(dataflow: str, rows: int, cols: int, t):
    t = np.asarray(t, dtype=np.int64)
    return rows + cols + t - 2 if dataflow == "os" else 2 * rows + cols + t - 2


def compute_cycles(dataflow: str, rows: int, cols: int, m, n, k):
    """Cycles of one (M x K) @ (K x N) GEMM, exactly as SCALE-Sim v3 reports them (0 stalls).

    ``m, n, k`` may be ints or arrays; a GEMM with a zero dimension takes 0 cycles."""
    m, n, k = (np.asarray(x, dtype=np.int64) for x in (m, n, k))
    rf, cf = folds(dataflow, rows, cols, m, n, k)
    _, _, t = spatio_temporal(dataflow, m, n, k)
    cycles = rf * cf * cycles_per_fold(dataflow, rows, cols, t) - 1
    return np.where((m > 0) & (n > 0) & (k > 0), cycles, 0)


def operand_accesses(dataflow: str, rows: int, cols: int, m, n, k) -> dict[str, np.ndarray]:
    """Element accesses of one GEMM between the array and its buffers (module docstring)."""
    m, n, k = (np.asarray(x, dtype=np.float64) for x in (m, n, k))
    rf, cf = (x.astype(np.float64) for x in folds(dataflow, rows, cols, m, n, k))
    if dataflow == "os":
        ifmap, filt, ofmap_w, ofmap_r = cf * m * k, rf * k * n, m * n, 0.0 * m
    elif dataflow == "ws":
        ifmap, filt, ofmap_w, ofmap_r = cf * m * k, k * n, rf * m * n, (rf - 1) * m * n
    else:
        ifmap, filt, ofmap_w, ofmap_r = m * k, cf * k * n, rf * m * n, (rf - 1) * m * n
    return {"ifmap_reads": ifmap, "filter_reads": filt, "ofmap_writes": ofmap_w, "ofmap_reads": ofmap_r,
            "row_folds": rf, "col_folds": cf}


def conv_gemm_scalesim(ifmap_h: int, ifmap_w: int, filt_h: int, filt_w: int, channels: int, num_filt: int,
                       stride: int) -> tuple[int, int, int]:
    """(M, N, K) of a conv layer as SCALE-Sim maps it: no padding, ``E = ceil((H - F + s) / s)``.

    For comparisons with SCALE-Sim only: nvmc's own workload uses the model's real (padded)
    output shapes."""
    eh = -(-(ifmap_h - filt_h + stride) // stride)
    ew = -(-(ifmap_w - filt_w + stride) // stride)
    return eh * ew, num_filt, filt_h * filt_w * channels
