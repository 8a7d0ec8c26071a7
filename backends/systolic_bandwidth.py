"""Bandwidth-limited timing of the systolic family (``interface.mode = "user"``): the stall cycles
SCALE-Sim v3 reports in its USER interface-bandwidth mode, in closed form, vectorised over GEMMs.

Derivation and the SCALE-Sim 3.0.0 source lines: tests/data/refs/scalesim/README.md, section
"USER (bandwidth-limited) mode", and its event model check_user_bw.py (which reproduces all 88
recorded runs; this module is what nvmc runs instead, without walking any demand matrix).
Units: operand *words* (one element each, SCALE-Sim's word) and the read buffers' capacities in
words; the interface moves ``bw`` bytes per cycle, so a refill of ``H`` words of ``e`` bytes takes
``ceil(H e / bw)`` request lines, one a cycle (SCALE-Sim: 1-byte words, ``bw`` = its Bandwidth).

**Read buffers** (ifmap, filter; ``memory/read_buffer.py``). A buffer of ``S`` words keeps an
active window of ``A = ceil(S f)`` words (``f`` = ``buffers.usable_fraction``, SCALE-Sim's
``rd_buf_active_frac = 0.5``) and prefetches ``H = S - A``. The operand's prefetch stream (its
``V`` words in the order the dataflow's folds fetch them) is cut into sets of ``eps = ceil(S /
100)`` words (``prepare_hashed_buffer``): ``n = floor(V / eps) + 1`` sets, a window of ``na =
min(n, ceil(A / eps))`` sets that slides forward, circularly, by ``np = min(n - na, ceil(H /
eps))`` sets at each miss. ``n = na``: the operand fits and never misses. Otherwise the demand
walks the stream ``passes`` times (the operand re-read once per outer fold); every time it steps
*behind* the window (a *wrap*) the window has to slide all the way round. Counting each wrap as
one more pass over the ``n`` sets (its slides plus the ones that regain the lost ground add up to
exactly ``n / np``), the number of slides (refills, DRAM refetches of ``H`` words each) is::

    k = ceil(((passes + wraps) * n - na) / np)

The wraps come from where the stream's window edges (sets ``na + j np``, j = 0 .. the pure-stream
count - 1) fall in the fold structure of the prefetch order (``create_*_prefetch_mat``):

* anti-diagonal order over stacked fold blocks (os ifmap and filter, ws ifmap, is filter): at a
  block boundary the tail of one block and the head of the next interleave over ``W(W-1)`` words
  (``W`` = block width, R or C); an edge inside that zone is crossed by the tail and then the head
  steps behind it: one wrap. os also re-reads each filter block once per row fold: each re-read
  of a block that an edge cut (the block start is behind the window) is one wrap.
* row-major order read in reversed rows inside each R-row fold block (ws filter, is ifmap): an
  edge inside a block is crossed by its last rows, then its earlier rows step behind it: one
  wrap, two when the edge cuts a row (the row's tail re-crosses it), and ``ceil(depth / x)``
  when a wrap only moves the window back ``x = n - ceil((n - na) / np) np`` sets (``x < np``).

Exact against SCALE-Sim when no operand word appears twice in the stream (GEMMs, filters, convs
whose windows do not overlap) and the window comes back to its old place after a wrap (``x =
na``): 79 of 79 such operand runs in the records. A conv ifmap whose windows overlap holds each
pixel up to (F/s)^2 times; SCALE-Sim then hits a copy elsewhere in the stream, which can remove
wraps or add whole extra walks over the stream. This count does not model that: over the
recorded runs it is 0.17x-1.3x of SCALE-Sim's for such ifmaps (10 operand runs, 3 equal; the
total cycles stay within 6 %, another operand binding), and against check_user_bw's event model
on cases SCALE-Sim did not finish it overcounts the 7x7 stride-2 stem on a 32x32 array 4.5x (os)
and 55x (is: copies absorb every wrap; total cycles 25x). Over 96 small overlapping layers
(tests/data/refs/scalesim/check_overlap.py: 7x7/s2, 3x3/s1, 3x3/s2, 5x5/s1 x os/ws/is x two arrays,
buffers and bandwidths) total cycles are 0.33x-4.1x of the event model's (os 0.59x-1.35x); an
estimate in USER mode notes how many of its convs this concerns.

These are SCALE-Sim's semantics, artefacts included: the window only moves forward, so a fold
block re-read after an edge cut it costs a full wrap each time (os filters re-read once per row
fold); on small arrays (many folds) this, not the bandwidth of one pass, dominates the stalls.

**Time** (``double_buffered_scratchpad_mem.service_memory_requests``). The k-th refill of an
operand completes at ``k P - 1``, ``P = ceil(H e / bw) + 1`` (one line a cycle plus the port's
1-cycle latency), however early the array asked; a stalled miss is counted twice, so misses cost
in pairs. The OFMAP write buffer (``write_buffer.py``) drains ``H_o`` words per ``ceil(H_o /
bw) - 1`` cycles once more than ``H_o`` are buffered and stalls the array when full. Total cycles
of one GEMM::

    total = max(t_c,                                     # check_formula / systolic_map cycles
                2 ceil(k_x / 2) P_x   for x in ifmap, filter,
                tau_1 + (m - 1)(ceil(H_o / bw) - 1) + tail)     # only if W_o > S_o
    stall = total - t_c

with ``W_o`` the words the ofmap buffer receives (os: M N; ws, is: row_folds M N),
``m = floor((W_o - S_o) / H_o) + 1`` drains the array must wait for, ``tau_1`` the stall-free
cycle of the ``(H_o + 1)``-th write (the first drain) and ``tail`` the stall-free cycles after the
last wait. Exact when nothing misses and the ofmap never fills (``W_o <= S_o``): then total = t_c.
Otherwise an estimate: the max() neither adds read and drain stalls that bind in different
phases nor places the misses in the fold (numbers: test_systolic_bandwidth.py).

Cost: per GEMM a few vector operations over one element per fold block boundary along the split
dimension (the edges in a boundary's zone, over all passes, are counted in closed form: a floor
sum) and per window edge of the reversed-row orders, at most ``MAX_EDGES`` (evenly sampled over
the stream beyond that): linear in the folds, no demand matrix walked, nothing per cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import systolic_map as smap

SETS = 100          # read_buffer.prepare_hashed_buffer: elems_per_set = ceil(total_size_elems / 100)
PORT_LATENCY = 1    # read_port latency: a request line issued at cycle c is served at c + 1
MAX_EDGES = 1024    # reversed-row orders: window edges classified per GEMM and operand; more are sampled evenly

# Where each operand's prefetch stream comes from (compute/systolic_compute_{os,ws,is}.py,
# create_{ifmap,filter}_prefetch_mat), as (order, rows of a fold block, split dimension, block
# width, passes, re-reads): the operand matrix is split along one GEMM dimension into blocks of
# the array's width, the blocks are stacked and read either along anti-diagonals ("diag") or row
# by row with each R-row fold block demanded in reversed rows ("rows"). Dimensions by name:
# m, n, k (the GEMM), R, C (the array), rf, cf (row and column folds).
PATTERNS = {
    ("os", "ifmap"): ("diag", "k", "m", "R", "cf", 1),
    ("os", "filter"): ("diag", "k", "n", "C", 1, "rf"),
    ("ws", "ifmap"): ("diag", "m", "k", "R", "cf", 1),
    ("ws", "filter"): ("rows", "k", "n", "C", 1, 1),
    ("is", "ifmap"): ("rows", "k", "m", "C", 1, 1),
    ("is", "filter"): ("diag", "n", "k", "R", "cf", 1),
}


def _cdiv(a, b):
    return -(-a // b)


@dataclass
class Windows:
    """SCALE-Sim's read-buffer geometry of one operand per GEMM (int64 arrays)."""

    eps: np.ndarray       # words per set
    n: np.ndarray         # sets in the stream (the last one may be partly empty)
    na: np.ndarray        # sets in the active window
    np_: np.ndarray       # sets one slide brings in
    active: np.ndarray    # A: words of the active half
    prefetch: np.ndarray  # H: words of one refill

    @property
    def fits(self) -> np.ndarray:
        return self.n <= self.na


def windows(words, capacity, active_fraction: float) -> Windows:
    """The read-buffer sets of an operand of ``words`` in a buffer of ``capacity`` words."""
    words = np.asarray(words, dtype=np.int64)
    cap = np.maximum(np.asarray(capacity, dtype=np.int64), 1)
    active = np.ceil(cap * active_fraction).astype(np.int64)
    prefetch = cap - active
    eps = _cdiv(cap, SETS)
    n = words // eps + 1
    na = np.minimum(n, _cdiv(active, eps))
    np_ = np.minimum(n - na, _cdiv(prefetch, eps))
    np_ = np.where(n > na, np.maximum(np_, 1), 0)   # a buffer of 1 word still slides (SCALE-Sim would hang)
    return Windows(eps, n, na, np_, active, prefetch)


def _tri(m, cap):
    """sum_{i=1..m} min(i, cap): elements of a block's corner on the diagonals it shares with the next."""
    m, cap = np.maximum(m, 0), np.maximum(cap, 0)
    low = np.minimum(m, cap)
    return low * (low + 1) // 2 + cap * (m - low)


def _edges(g, w: Windows, passes, limit: int = MAX_EDGES):
    """The window edges of each GEMM's pure stream as sets within a pass: (GEMM index, set,
    weight), and the number of stream slides J. Edge j sits at set ``(na + j np) mod n``: these
    repeat every ``p = n / gcd(n, np)`` edges and one period visits the sets ``na + i gcd(n, np)``
    (mod n) once each, so J edges are ``J // p`` periods (one period, weighted) plus the first
    ``J mod p`` edges; beyond ``limit`` both are sampled evenly over the period's sets."""
    np_ = np.maximum(w.np_, 1)
    J = np.maximum(np.where(w.fits, 0, _cdiv(passes * w.n - w.na, np_)), 0)
    step = np.gcd(w.n, np_)
    period = w.n // step
    full, rem = J // period, J % period

    def rows(count, pick, weight):
        gi = np.repeat(g, count)
        t = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        return gi, pick(gi, t) % w.n[gi], weight[gi]

    spread = lambda total, take: lambda gi, t: w.na[gi] + (t * total[gi] // np.maximum(take[gi], 1)) * step[gi]
    take_p = np.where(full > 0, np.minimum(period, limit), 0)
    take_r = np.minimum(rem, limit)
    first = lambda gi, t: w.na[gi] + t * np_[gi]          # the first J mod p edges themselves
    parts = [rows(take_p, spread(period, take_p), full * period / np.maximum(take_p, 1)),
             rows(np.where(rem <= limit, take_r, 0), first, np.ones(len(g))),
             rows(np.where(rem > limit, take_r, 0), spread(period, take_r), rem / np.maximum(take_r, 1))]
    gi, e, weight = (np.concatenate(x) for x in zip(*parts))
    return gi, e, weight, J


def _floor_sum(count, mod, a, b):
    """sum_{i < count} floor((a i + b) / mod) for arrays of non-negative ints (mod >= 1), by the
    Euclid-like reduction of the AtCoder Library's floor_sum: O(log) vector steps."""
    count, mod, a, b = (np.array(v, dtype=np.int64) for v in np.broadcast_arrays(count, mod, a, b))
    total = np.zeros_like(count)
    idx = np.flatnonzero(count > 0)
    count, mod, a, b = count[idx], mod[idx], a[idx], b[idx]
    while idx.size:
        q, a = np.divmod(a, mod)
        part = (count - 1) * count // 2 * q
        q, b = np.divmod(b, mod)
        part += count * q
        total[idx] += part                       # idx holds each GEMM once
        top = a * count + b
        live = top >= mod
        idx, top, a, mod = idx[live], top[live], a[live], mod[live]
        count, b = np.divmod(top, mod)
        mod, a = a, mod
    return total


def _edges_in(J, n, step, first, lo, hi):
    """How many of the edges j < J sit at a pass-local set ``(first + j step) mod n`` in [lo, hi]:
    ``x mod n`` is in [lo, hi] iff floor((x - lo + n) / n) - floor((x - hi - 1 + n) / n) = 1, and
    both sums over j are floor sums."""
    lo, hi = np.maximum(lo, 0), np.minimum(hi, n - 1)
    some = np.flatnonzero((lo <= hi) & (J > 0))
    out = np.zeros(len(lo), dtype=np.int64)
    J, n, step, first, lo, hi = (np.broadcast_to(v, lo.shape)[some] for v in (J, n, step, first, lo, hi))
    out[some] = _floor_sum(J, n, step, first - lo + n) - _floor_sum(J, n, step, first - hi - 1 + n)
    return out


def _diag_wraps(g, w: Windows, J, dims, scale):
    """Wraps at the interleaved block boundaries of an anti-diagonal prefetch order: the stream's
    edges (window ends at sets ``na + j np``, j < J, over all passes) that fall in a boundary's
    zone, where the tail of one block is read past the edge and the head of the next is behind
    the window; counted per boundary in closed form (_edges_in). Boundaries are not sampled: their
    zones and the edges are both arithmetic progressions, and a sample aliases."""
    T, split, width = dims
    nb = _cdiv(split, width)
    bounds = np.where(w.fits | (J == 0), 0, np.maximum(nb - 1, 0))
    gi = np.repeat(g, bounds)
    b = np.arange(int(bounds.sum())) - np.repeat(np.cumsum(bounds) - bounds, bounds) + 1
    T, width, last = T[gi], width[gi], (split - (nb - 1) * width)[gi]
    n, na, np_, eps, sc = w.n[gi], w.na[gi], np.maximum(w.np_[gi], 1), w.eps[gi], scale[gi]
    block = T * width
    wb = np.where(b < nb[gi] - 1, width, last)
    z0 = b * block - _tri(width - 1, T)                           # first head element of block b
    z1 = b * block + _tri(width - 1, np.minimum(wb, T)) - 1       # last tail element of block b - 1
    head = np.floor(z0 * sc / eps).astype(np.int64)
    lo = np.maximum(head + 1, head + (na - np_) + 1)             # crossed by the tail, head behind the window
    hi = np.floor(z1 * sc / eps).astype(np.int64)
    hits = _edges_in(J[gi], n, np_, na, lo, hi)
    return np.bincount(gi, weights=hits, minlength=len(g)) * 1.0


def _reuse_wraps(g, w: Windows, J, dims, reuse):
    """os filter: each of a block's re-reads after the first wraps when an edge cut the block."""
    T, split, width = dims
    nb = np.where(reuse > 1, _cdiv(split, width), 0)
    gi = np.repeat(g, nb)
    c = np.arange(int(nb.sum())) - np.repeat(np.cumsum(nb) - nb, nb)
    T, split, width, nbi = T[gi], split[gi], width[gi], nb[gi]
    eps, na, np_ = w.eps[gi], w.na[gi], np.maximum(w.np_[gi], 1)
    block = T * width
    last = split - (nbi - 1) * width
    start = np.where(c > 0, c * block - _tri(width - 1, T), 0)
    wnext = np.where(c + 1 < nbi - 1, width, last)
    end = np.where(c + 1 < nbi, (c + 1) * block + _tri(width - 1, np.minimum(wnext, T)) - 1, T * split - 1)
    lo = start // eps + (na - np_)
    hi = end // eps
    jmin = np.maximum(np.floor_divide(lo - na, np_) + 1, 0)
    jmax = np.minimum(np.floor_divide(hi - na, np_), J[gi] - 1)
    cut = (jmax >= jmin) & ~w.fits[gi]
    return np.bincount(gi, weights=cut * (reuse[gi] - 1.0), minlength=len(g)) * 1.0


def _row_wraps(gi, edge, w: Windows, dims, R, scale):
    """Wraps of a row-major prefetch order whose R-row fold blocks are demanded in reversed rows."""
    K, split, width = (x[gi] for x in dims)
    n, na, np_, eps = w.n[gi], w.na[gi], np.maximum(w.np_[gi], 1), w.eps[gi]
    x = np.maximum(n - _cdiv(n - na, np_) * np_, 1)   # sets a wrap moves the window back
    nb = _cdiv(split, width)
    last = split - (nb - 1) * width
    e = edge % n
    s = e - (na - np_)                                 # window start after the edge's slide
    pos = e * eps / scale[gi]
    c = np.minimum(pos // (K * width), nb - 1)
    rl = np.where(c < nb - 1, width, last)             # words of a row in this block
    q = pos - c * K * width
    sub = R * rl
    qi = q // sub
    rq = np.minimum(R, K - qi * R)                     # rows of this fold block
    within = q - qi * sub
    rho = within // rl
    off = within - rho * rl
    row_set = np.floor((pos - off) * scale[gi] / eps)
    sub_set = np.floor((c * K * width + qi * sub) * scale[gi] / eps)
    first = (off > 0) & (rho < rq - 1) & (row_set < s)            # the cut row's head, read first
    s_now = np.where(first & (x < np_), s - x, s)                  # x = np: the tail re-crosses the edge
    below = np.where((rho > 0) & (sub_set < s_now), np.ceil((s_now - sub_set) / x), 0.0)
    return first + below


def slides(dataflow: str, rows: int, cols: int, m, n, k, *, ifmap_capacity, filter_capacity,
           active_fraction: float = 0.5, ifmap_words=None) -> dict[str, np.ndarray]:
    """Window slides (refills of ``prefetch`` words) of the ifmap and filter buffers per GEMM, with
    the geometry they come from: {"ifmap": (slides, Windows), "filter": (...)}.

    Capacities in words (elements); ``ifmap_words``: valid words of the im2col ifmap (default
    ``m * k``; SCALE-Sim's no-padding convs leave out the window positions off the image)."""
    m, n, k = (np.asarray(v, dtype=np.int64) for v in (m, n, k))
    rf, cf = smap.folds(dataflow, rows, cols, m, n, k)
    size = {"m": m, "n": n, "k": k, "R": np.full_like(m, rows), "C": np.full_like(m, cols), "rf": rf, "cf": cf}
    v_ifmap = m * k if ifmap_words is None else np.asarray(ifmap_words, dtype=np.int64)
    words = {"ifmap": v_ifmap, "filter": k * n}
    scale = {"ifmap": v_ifmap / np.maximum(m * k, 1), "filter": np.ones(len(m))}
    caps = {op: np.broadcast_to(np.floor(np.asarray(c, dtype=np.float64)), m.shape).astype(np.int64)
            for op, c in (("ifmap", ifmap_capacity), ("filter", filter_capacity))}
    g = np.arange(len(m))
    out = {}
    for op in ("ifmap", "filter"):
        order, t, split, width, passes, reuse = PATTERNS[(dataflow, op)]
        w = windows(words[op], caps[op], active_fraction)
        passes = size[passes] if isinstance(passes, str) else np.full_like(m, passes)
        reuse = size[reuse] if isinstance(reuse, str) else np.full_like(m, reuse)
        dims = (size[t], size[split], size[width])
        if order == "diag":
            J = np.maximum(np.where(w.fits, 0, _cdiv(passes * w.n - w.na, np.maximum(w.np_, 1))), 0)
            wraps = _diag_wraps(g, w, J, dims, scale[op]) + _reuse_wraps(g, w, J, dims, reuse)
        else:
            gi, edge, weight, J = _edges(g, w, passes)
            per_edge = _row_wraps(gi, edge, w, dims, rows, scale[op])
            wraps = np.bincount(gi, weights=weight * per_edge, minlength=len(g)) * 1.0
        total = np.ceil(((passes + wraps) * w.n - w.na) / np.maximum(w.np_, 1))
        out[op] = (np.where(w.fits | (m * n * k == 0), 0, np.maximum(total, 0)).astype(np.int64), w)
    return out


def drain_bound(dataflow: str, rows: int, cols: int, m, n, k, writes, capacity, bandwidth,
                active_fraction: float = 0.5) -> np.ndarray:
    """Cycles the OFMAP write buffer needs to take ``writes`` words (capacity and ``bandwidth``
    per cycle in the same unit), 0 where they fit: its first drain starts at the stall-free cycle
    of write ``H + 1``, then the array waits for ``m - 1`` drains of ``ceil(H / bw) - 1`` cycles
    each and finishes the rest stall-free (module docstring)."""
    m, n, k = (np.asarray(v, dtype=np.int64) for v in (m, n, k))
    writes = np.asarray(writes, dtype=np.float64)
    cap = np.asarray(capacity, dtype=np.float64)
    rf, cf = smap.folds(dataflow, rows, cols, m, n, k)
    _, _, t = smap.spatio_temporal(dataflow, m, n, k)
    folds = np.maximum(rf * cf, 1)
    per_fold = smap.cycles_per_fold(dataflow, rows, cols, t)
    tc = smap.compute_cycles(dataflow, rows, cols, m, n, k)
    half = cap - np.ceil(cap * active_fraction)
    # the writes of a fold land on its last rows: os after the T-1 row prefix over R + C - 1 rows,
    # ws / is after the 2R - 1 row prefix over T + C - 1 rows (systolic_compute_*.create_ofmap_demand_mat)
    first, span = (t - 1, rows + cols - 1) if dataflow == "os" else (2 * rows - 1, t + cols - 1)
    per = np.maximum(writes / folds, 1e-300)

    def row(word):   # stall-free demand row of write number ``word`` (1-based)
        f = np.floor((word - 1) / per)
        return f * per_fold + first + ((word - 1) - f * per) / per * span

    over = writes > cap
    h = np.maximum(half, 1.0)
    waits = np.floor(np.maximum(writes - cap, 0.0) / h) + 1
    rest = writes - cap - (waits - 1) * h
    drain = np.ceil(h / bandwidth) - 1
    bound = row(h + 1) + (waits - 1) * drain + np.where(rest > 0, tc - row(writes - rest + 1), 0.0)
    return np.where(over & (tc > 0), np.maximum(bound, 0.0), 0.0)


def user_cycles(dataflow: str, rows: int, cols: int, m, n, k, *, bandwidth, ifmap_capacity, filter_capacity,
                ofmap_capacity, ofmap_writes=None, ifmap_bytes=1.0, filter_bytes=1.0, active_fraction: float = 0.5,
                ifmap_words=None, filter_fits=None) -> dict[str, np.ndarray]:
    """Compute, stall and total cycles of each GEMM behind a DRAM interface of ``bandwidth`` bytes
    per cycle, and the read buffers' slides and the words they refetch (module docstring).

    ``ifmap_capacity`` / ``filter_capacity``: words (operand elements of ``*_bytes`` bytes) per
    GEMM; ``ofmap_capacity`` and ``ofmap_writes`` (what the ofmap buffer receives per GEMM): bytes,
    by default SCALE-Sim's 1-byte words (os ``m n``, ws / is ``row_folds m n``); ``filter_fits``:
    GEMMs whose weights stay in the filter buffer (no filter refills)."""
    m, n, k = (np.asarray(v, dtype=np.int64) for v in (m, n, k))
    tc = smap.compute_cycles(dataflow, rows, cols, m, n, k).astype(np.float64)
    s = slides(dataflow, rows, cols, m, n, k, ifmap_capacity=ifmap_capacity, filter_capacity=filter_capacity,
               active_fraction=active_fraction, ifmap_words=ifmap_words)
    k_i, w_i = s["ifmap"]
    k_f, w_f = s["filter"]
    if filter_fits is not None:
        k_f = np.where(filter_fits, 0, k_f)
    # a refill of H words takes ceil(H e / bw) request lines, one a cycle, served a port latency later
    period = {op: np.ceil(w.prefetch * np.asarray(nbytes, dtype=np.float64) / bandwidth) + PORT_LATENCY
              for op, w, nbytes in (("ifmap", w_i, ifmap_bytes), ("filter", w_f, filter_bytes))}
    reads = np.maximum(2 * _cdiv(k_i, 2) * period["ifmap"], 2 * _cdiv(k_f, 2) * period["filter"])
    if ofmap_writes is None:
        rf, _ = smap.folds(dataflow, rows, cols, m, n, k)
        ofmap_writes = m * n * (1 if dataflow == "os" else rf)
    drains = drain_bound(dataflow, rows, cols, m, n, k, ofmap_writes, ofmap_capacity, bandwidth, active_fraction)
    total = np.maximum.reduce([tc, reads.astype(np.float64), np.ceil(drains)])
    v_i = m * k if ifmap_words is None else np.asarray(ifmap_words, dtype=np.int64)
    # DRAM words beyond one pass over the operand: the first fill (min(A, V)) plus k refills of H
    refetch = {op: np.maximum(np.minimum(w.active, v) + kk * w.prefetch - v, 0).astype(np.float64)
               for op, kk, w, v in (("ifmap", k_i, w_i, v_i), ("filter", k_f, w_f, k * n))}
    return {"compute": tc, "stall": total - tc, "total": total, "ifmap_slides": k_i, "filter_slides": k_f,
            "ifmap_refetch_words": refetch["ifmap"], "filter_refetch_words": refetch["filter"]}
