"""EIE's compressed sparse column (CSC) weight format: its one definition, read by the workload
analysis (passes/workload.py: a shared weight's ``weight_bytes``, the per-PE entry columns) and
by the sparse-engine family (backends/eie.py: what fits a PE's SRAMs).

Han et al., EIE (ISCA'16), as transcribed in shared/reference/params.md §8 (EIE-N):

* the weight is an [outputs, inputs] matrix (:func:`as_matrix`); each column (one input) lists
  its non-zeros in row order;
* an entry is a weight code (``v``: the codebook index) and a relative row index (``z``: the
  zeros since the column's previous entry) of ``rel_bits`` bits (EIE: 4 and 4);
* a run of 2^rel_bits zeros does not fit ``z``: it takes a padding entry (code 0) per 2^rel_bits
  zeros;
* a pointer per column plus one (where each column starts, and where the last one ends), of
  :data:`POINTER_BITS` bits.

Over P processing elements, output row r lives on PE r mod P and each PE stores its rows in this
format (:func:`pe_entries`); the whole matrix is the case P = 1 (:func:`entries`).
"""

from __future__ import annotations

import numpy as np

POINTER_BITS = 16  # EIE-N: 16-bit column pointers p (in two SRAM banks)


def as_matrix(array: np.ndarray, axis: int) -> np.ndarray:
    """The weight as the [outputs, inputs] matrix EIE stores, its outputs on ``axis`` (a scalar: 1 x 1)."""
    array = np.asarray(array)
    if array.ndim == 0:
        return array.reshape(1, 1)
    moved = np.moveaxis(array, axis % array.ndim, 0)
    return moved.reshape(moved.shape[0], array.size // max(moved.shape[0], 1))  # also for a zero-size weight


def pe_entries(stack: np.ndarray, pes: int, rel_bits: int) -> np.ndarray:
    """Entries (non-zeros + padding) of each PE for K same-shape [outputs, inputs] matrices
    [K, outputs, inputs] -> [K, pes], in one vectorised pass: per matrix, PE and column, the
    non-zeros in local-row order, each charging ``gap >> rel_bits`` padding entries (the zeros
    since the previous one)."""
    nonzero = np.asarray(stack) != 0  # a byte per element: the copies below stay a quarter of an f32 weight's
    k, rows, columns = nonzero.shape
    local_rows = -(-rows // pes)
    if local_rows * pes != rows:  # zero rows hold no entries: pad so that the rows deal out evenly
        nonzero = np.concatenate([nonzero, np.zeros((k, local_rows * pes - rows, columns), bool)], axis=1)
    # row r = local * pes + PE: laid out by matrix, PE, column, then local row, so one PE's column is a run
    ordered = np.ascontiguousarray(nonzero.reshape(k, local_rows, pes, columns).transpose(0, 2, 3, 1))
    position = np.flatnonzero(ordered)
    if position.size == 0:
        return np.zeros((k, pes), dtype=np.int64)
    run, local = np.divmod(position, local_rows)  # run: one (matrix, PE, column)
    group = run // columns  # one (matrix, PE)
    gap = local.copy()  # the first non-zero of a run: the zeros above it
    same = run[1:] == run[:-1]
    gap[1:][same] = local[1:][same] - local[:-1][same] - 1
    padding = np.bincount(group, weights=gap >> rel_bits, minlength=k * pes).astype(np.int64)
    return (np.bincount(group, minlength=k * pes) + padding).reshape(k, pes)


def entries(matrix: np.ndarray, rel_bits: int) -> int:
    """Entries (non-zeros + padding) of one [outputs, inputs] matrix stored whole."""
    return int(pe_entries(np.asarray(matrix)[None], 1, rel_bits)[0, 0])


def pointers(columns: int) -> int:
    """Column pointers of a matrix with ``columns`` columns: where each starts, and the end."""
    return columns + 1


def storage_bits(entries: int, columns: int, code_bits: float, rel_bits: float,
                 pointer_bits: float = POINTER_BITS) -> float:
    """Bits of a matrix stored in this format: its entries and its pointers."""
    return entries * (code_bits + rel_bits) + pointers(columns) * pointer_bits


def pe_columns(pes: int) -> tuple[str, str]:
    """The workload columns of the entries over ``pes`` PEs: the busiest PE's, and all PEs' together."""
    return f"pe_entries_max_{pes}", f"pe_entries_sum_{pes}"
