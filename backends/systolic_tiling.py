"""``mapping.tiling = "search"``: per layer, the GEMM tiling of the buffer hierarchy that moves the
fewest DRAM bytes within the buffer capacities (issue 26), vectorised over layers.

The idea of the search space is Timeloop's and ZigZag's temporal mapping at the DRAM level (a
"mapspace" of tile factors and loop permutations of one memory level), reduced to what the
systolic family's two-level hierarchy (DRAM -> ifmap / filter / ofmap buffer -> array) needs:

* A GEMM ``(M x K) @ (K x N)`` (one of ``gemm_batch``) is cut into tiles ``Mt x Kt`` of A (in
  the ifmap buffer), ``Kt x Nt`` of B (filter buffer) and ``Mt x Nt`` partial sums of C (ofmap
  buffer, 32-bit), each within its buffer's *usable* bytes (capacity x
  ``buffers.usable_fraction``, the rest is the double-buffering half, as in point 3 of
  systolic.py). The DRAM-level loops run over the ``tm = ceil(M / Mt)``, ``tn``, ``tk`` tiles
  in one of the 6 orders (outer -> inner, code 0-5 below).
* Reuse (Timeloop's rule for one level): an operand's tile is fetched again each time the tile
  index it depends on changes, so it is fetched ``trips(irrelevant loop)`` times when that loop
  sits outside a relevant loop of more than one trip, else once: A (M, K) is re-fetched per N
  tile, B (K, N) per M tile; C (M, N) partial sums spill to DRAM and come back (``2 x (tk - 1)``
  x its 32-bit bytes) when the K loop sits outside an M or N loop of more than one trip;
  otherwise they accumulate in the ofmap buffer: ``max(0, tk - k_folds)`` extra read-modify-
  writes of M x N partial sums beyond those the array already does per row fold (ws, is:
  ``k_folds = row_folds``; os: 1).
* Objective: the refetch DRAM bytes (A and B beyond their first pass, C spills); ties: the fewest
  buffer accesses (those refetches and the extra partial-sum accesses, in buffer words); then
  the fewest tiles (``tm x tn x tk``: the largest tiles, fewest DRAM transfers), then the lower
  order code.
* Candidates: for M and N the trip counts 1..8, the powers of two and the trips of power-of-two
  tiles ``ceil(D / 2^e)`` (each trip count with its smallest tile ``ceil(D / trips)``); for K,
  given (Mt, Nt), exactly the fewest K trips whose tile fits both the ifmap and the filter
  buffer (the cost never falls as a trip count grows, so that is optimal, not a grid point).
  For a GEMM with M and N <= 8 the search is therefore exhaustive over all tile sizes.

Left out (as against Timeloop / ZigZag): no change of the spatial mapping (the array folds the
whole GEMM as SCALE-Sim does, so compute cycles stay SCALE-Sim's even where a K tile does not
align with the row folds: its extra fill / drain is not counted); no bypass (every operand is
staged in its own buffer); no tile sharing between operands or across layers (activations stay
on chip by point 4 as before); one DRAM level of loops (no per-buffer sub-tiling); uneven last
tiles are taken as full ones for capacity (a tile of ``ceil(D / trips)``).

The fixed rule of point 3 (the dataflow's own loop order, partial retention of an operand that
does not fit) is kept as a candidate too (:data:`FIXED`): it is what ``mapping.tiling =
"fixed"`` computes, so a searched layer never moves more DRAM bytes than the fixed one
(systolic_traffic.traffic chooses per layer).
"""

from __future__ import annotations

import numpy as np

ORDERS = ("MNK", "MKN", "NMK", "NKM", "KMN", "KNM")   # DRAM-level loops, outer -> inner; code = index
FIXED = len(ORDERS)                                   # code 6: the fixed loop-order rule won (tiles NaN)
_DIM = {"M": 0, "N": 1, "K": 2}
_IRRELEVANT = {"A": 1, "B": 0, "C": 2}                 # A (M, K) ignores N, B (K, N) ignores M, C (M, N) ignores K
SMALL = 8                                             # trip counts 1..SMALL are always candidates
CHUNK = 256                                           # layers per block (bounds the candidate grid's memory)


def _trips(d: np.ndarray) -> np.ndarray:
    """(layers, J) candidate trip counts of a dimension of sizes ``d`` (normalised to the
    trip count of the smallest tile that gives them)."""
    e = np.arange(int(np.ceil(np.log2(max(float(d.max()), 1.0)))) + 1)
    big = 2.0 ** e[2.0 ** e > SMALL]                 # powers of two not already among 1..SMALL
    cand = np.concatenate([np.broadcast_to(np.arange(1, SMALL + 1, dtype=np.float64), (d.size, SMALL)),
                           np.ceil(d[:, None] / 2.0 ** e), np.broadcast_to(big, (d.size, big.size))], axis=1)
    cand = np.clip(cand, 1.0, d[:, None])
    return np.ceil(d[:, None] / np.ceil(d[:, None] / cand))


def multiplier(order: str, operand: str, t: tuple) -> np.ndarray:
    """How many times ``operand``'s tiles are fetched over (its first pass = 1), for loop trip
    counts ``t = (tm, tn, tk)`` in ``order`` (outer -> inner)."""
    d = _IRRELEVANT[operand]
    inner = order[order.index("MNK"[d]) + 1:]
    reused = np.zeros(np.broadcast(*t).shape, dtype=bool)
    for c in inner:
        reused = reused | (t[_DIM[c]] > 1)
    return np.where(reused, t[d], 1.0)


def costs(order: str, t: tuple, g: dict) -> tuple[np.ndarray, ...]:
    """(refetch A, refetch B, spill, extra on-chip partial-sum bytes) of one order, broadcast."""
    ma, mb, mc = (multiplier(order, x, t) for x in "ABC")
    a_re, b_re = g["a_u"] * (ma - 1.0), g["b_u"] * (mb - 1.0)
    c_bytes = g["gb"] * g["m"] * g["n"] * g["psum"]
    spill = 2.0 * c_bytes * (mc - 1.0)
    extra = np.where(mc > 1.0, 0.0, c_bytes * np.maximum(t[2] - g["k_folds"], 0.0))
    return a_re, b_re, spill, extra


def search(m, n, k, *, gb, a_u, b_u, a_el, w_el, psum, use, word, k_folds) -> dict[str, np.ndarray]:
    """The best tiling per GEMM layer (module docstring). Per-layer arrays in, per-layer arrays
    out: ``tile_m/n/k``, ``order`` (index into ORDERS), ``a_re``, ``b_re``, ``spill`` (DRAM bytes
    beyond the first pass, as systolic_traffic.traffic counts them), ``extra`` (on-chip partial-
    sum read bytes = write bytes), ``dram`` (``a_re + b_re + spill``), ``accesses`` (the tie-break,
    buffer words) and ``ok`` (some tiling fits; where not, the other entries are inf / NaN)."""
    f = np.float64
    m, n, k, gb, a_u, b_u, a_el, w_el, k_folds = (np.broadcast_to(np.asarray(x, dtype=f), np.shape(m)).ravel()
                                                  for x in (m, n, k, gb, a_u, b_u, a_el, w_el, k_folds))
    names = ("tile_m", "tile_n", "tile_k", "order", "a_re", "b_re", "spill", "extra", "dram", "accesses")
    out = {key: np.full(m.size, np.nan) for key in names}
    out["ok"] = np.zeros(m.size, dtype=bool)
    for lo in range(0, m.size, CHUNK):     # blocks of layers, each vectorised (bounded memory)
        sl = slice(lo, lo + CHUNK)
        _search_block(out, sl, m[sl], n[sl], k[sl], dict(gb=gb[sl], a_u=a_u[sl], b_u=b_u[sl], a_el=a_el[sl],
                                                           w_el=w_el[sl], k_folds=k_folds[sl]),
                      float(psum), use, word)
    return out


def _search_block(out, sl, m, n, k, g, psum, use, word):
    col = {key: v[:, None, None] for key, v in g.items()}
    tm = _trips(m)[:, :, None]                       # (L, J, 1)
    tn = _trips(n)[:, None, :]                       # (L, 1, J)
    mt, nt = np.ceil(m[:, None, None] / tm), np.ceil(n[:, None, None] / tn)
    kmax = np.minimum(np.floor(use["ifmap"] / (mt * col["a_el"])), np.floor(use["filter"] / (nt * col["w_el"])))
    kmax = np.minimum(kmax, k[:, None, None])
    fits = (kmax >= 1) & (mt * nt * psum <= use["ofmap"])
    tk = np.where(fits, np.ceil(k[:, None, None] / np.maximum(kmax, 1.0)), 1.0)   # no fit: masked below
    t = (tm, tn, tk)
    col.update(m=m[:, None, None], n=n[:, None, None], psum=psum)
    L = m.size
    dram, acc = [], []
    for order in ORDERS:                             # 6 orders, each over all layers and tiles at once
        a_re, b_re, spill, extra = costs(order, t, col)
        dram.append(np.where(fits, a_re + b_re + spill, np.inf))
        acc.append(np.where(fits, a_re / word["ifmap"] + b_re / word["filter"] + 2 * extra / word["ofmap"], np.inf))
    dram = np.stack(dram, axis=1).reshape(L, -1)     # (L, orders * J * J), order-major
    acc = np.stack(acc, axis=1).reshape(L, -1)
    best = dram.min(axis=1, keepdims=True)
    acc = np.where(dram == best, acc, np.inf)
    tiles = np.broadcast_to(np.where(fits, tm * tn * tk, np.inf)[:, None], (L, len(ORDERS), *fits.shape[1:]))
    tiles = tiles.reshape(L, -1)
    pick = np.argmin(np.where(acc == acc.min(axis=1, keepdims=True), tiles, np.inf), axis=1)   # the first of equals
    ok = np.isfinite(best[:, 0])
    order, cell = np.divmod(pick, tm.shape[1] * tn.shape[2])
    i, j = np.divmod(cell, tn.shape[2])
    rows = np.arange(L)
    t1 = (tm[rows, i, 0], tn[rows, 0, j], np.broadcast_to(tk, fits.shape)[rows, i, j])   # the chosen trips
    chosen = {"tile_m": np.ceil(m / t1[0]), "tile_n": np.ceil(n / t1[1]), "tile_k": np.ceil(k / t1[2]),
              "order": order.astype(np.float64)}
    one = {key: (v[:, 0, 0] if isinstance(v, np.ndarray) else v) for key, v in col.items()}
    per_order = [costs(o, t1, one) for o in ORDERS]  # the chosen cell's parts, recomputed on (L,) vectors
    for q, key in enumerate(("a_re", "b_re", "spill", "extra")):
        chosen[key] = np.choose(order, [np.broadcast_to(parts[q], (L,)) for parts in per_order])
    chosen["dram"], chosen["accesses"] = best[:, 0], acc[rows, pick]
    for key, v in chosen.items():
        out[key][sl] = np.where(ok, v, np.nan if key.startswith("tile") or key == "order" else np.inf)
    out["ok"][sl] = ok
