"""Reproduce SCALE-Sim 3.0.0's USER-bandwidth (bandwidth-limited) numbers without SCALE-Sim.

Run:  python3 check_user_bw.py [scalesim_user_bw_refs.json] [--only REGEX] [-v]
      (numpy only; ~1-20 s per record, the 7x7 stem on 32x32 the slowest)

Two models, both checked against every "ok" record:

1. `simulate()` - a small event model that follows SCALE-Sim's memory system step by step
   (see README.md "USER (bandwidth-limited) mode" for the source references). It rebuilds the
   operand address matrices, the prefetch order and the per-cycle demand rows, and then
   * read buffers (ifmap, filter): the prefetch stream is cut into "sets" of
     ceil(SRAM_words/100) valid words; the active window is the first na sets; a demanded
     address missing from the window slides the window by np sets (circularly) and costs one
     DRAM prefetch of L = ceil(prefetch_half/bw) request lines. The k-th prefetch of an operand
     completes at cycle k*(L+1) - 1, independently of when the array asked for it. A miss in a
     demand row at current time t with completion time d moves the row to d if d <= t, or to
     2d - t if d > t (SCALE-Sim adds the positive stall twice);
   * the ofmap write buffer drains ceil(half/bw) lines of bw words when more than half is full,
     and stalls the array when it is full while a drain is in flight;
   * the array stalls, per demand row, by max(ifmap stall, filter stall, ofmap stall), at least 0.
   It predicts total_cycles, stall_cycles, DRAM reads/writes and the DRAM start/stop cycles.

2. `closed_form()` - total_cycles from counts, given the number of window slides per read
   buffer: max(t_c, 2*ceil(k/2)*(L+1) per read operand, ceil((W_o - S_o)/bw) for the ofmap). Exact
   when nothing misses and the ofmap never stalls, otherwise an estimate; its error over the
   records is printed at the end (see README for the numbers).

Also usable on cases SCALE-Sim could not finish: `simulate(rec)` needs only the record's layer
fields and `cfg`, and takes seconds where SCALE-Sim takes minutes (it does not build traces).
"""
import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np

IFMAP_OFFSET, FILTER_OFFSET, OFMAP_OFFSET = 0, 10000000, 20000000


# ----------------------------------------------------------------------------- operands
def layer_dims(rec):
    if rec['kind'] == 'gemm':   # topology_utils.load_arrays_gemm: [M, K, 1, K, 1, N, 1, 1]
        M, N, K = rec['gemm_M'], rec['gemm_N'], rec['gemm_K']
        return M, K, 1, K, 1, N, 1
    return (rec['ifmap_h'], rec['ifmap_w'], rec['filt_h'], rec['filt_w'], rec['channels'], rec['num_filt'],
            rec['stride'])


def operand_matrices(rec):
    """compute/operand_matrix.py: ifmap (M x K), filter (K x N), ofmap (M x N) addresses, -1 = none."""
    H, W, fh, fw, C, N, s = layer_dims(rec)
    Eh, Ew = -(-(H - fh + s) // s), -(-(W - fw + s) // s)
    M, K = Eh * Ew, fh * fw * C
    i = np.arange(M, dtype=np.int64)[:, None]
    j = np.arange(K, dtype=np.int64)[None, :]
    orow, ocol = np.divmod(i, Ew)
    irow, icol = orow * s, ocol * s
    crow, k = np.divmod(j, fw * C)
    ccol, cch = np.divmod(k, C)
    valid = (crow + irow < H) & (ccol + icol < W)
    ifmap = np.where(valid, (crow * W + ccol) * C + cch + (irow * W + icol) * C + IFMAP_OFFSET, -1)
    filt = np.arange(N, dtype=np.int64)[None, :] * K + np.arange(K, dtype=np.int64)[:, None] + FILTER_OFFSET
    ofmap = N * np.arange(M, dtype=np.int64)[:, None] + np.arange(N, dtype=np.int64)[None, :] + OFMAP_OFFSET
    return ifmap, filt, ofmap


def pad_cols(a, width):
    if a.shape[1] == width:
        return a
    return np.concatenate([a, np.full((a.shape[0], width - a.shape[1]), -1, dtype=a.dtype)], axis=1)


def diag_unroll(mat):
    """systolic_compute_*.create_*_prefetch_mat 'roll out along the diagonal': anti-diagonals
    r+c = 0, 1, ...; inside one, row index descending."""
    r, c = np.indices(mat.shape)
    order = np.lexsort((-r.ravel(), (r + c).ravel()))
    return mat.ravel()[order]


def blocks(n, size):
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def prefetch_sequences(df, R, C, ifmap, filt):
    """Prefetch (DRAM fetch) order of the ifmap and filter words, -1 included."""
    if df == 'os':
        ifm = diag_unroll(np.vstack([pad_cols(ifmap.T[:, a:b], R) for a, b in blocks(ifmap.shape[0], R)]))
        fil = diag_unroll(np.vstack([pad_cols(filt[:, a:b], C) for a, b in blocks(filt.shape[1], C)]))
    elif df == 'ws':
        ifm = diag_unroll(np.vstack([pad_cols(ifmap[:, a:b], R) for a, b in blocks(ifmap.shape[1], R)]))
        fil = np.vstack([pad_cols(filt[:, a:b], C) for a, b in blocks(filt.shape[1], C)]).ravel()
    else:  # is
        ifm = np.vstack([pad_cols(ifmap.T[:, a:b], C) for a, b in blocks(ifmap.shape[0], C)]).ravel()
        fil = diag_unroll(np.vstack([pad_cols(filt[a:b, :].T, R) for a, b in blocks(filt.shape[0], R)]))
    return ifm, fil


def _skewed(block, row0):
    """Valid entries of skew_matrix(block) placed from demand row row0: (rows, cols, addrs),
    row-major. Entry (t, c) lands on row row0 + t + c."""
    t, c = np.nonzero(block != -1)
    rows = row0 + t + c
    order = np.lexsort((c, rows))
    return rows[order], c[order], block[t, c][order]


def _flat(block, row0):
    """Valid entries of an unskewed block placed from row row0, row-major."""
    t, c = np.nonzero(block != -1)
    return row0 + t, c, block[t, c]


def demand_streams(df, R, C, ifmap, filt, ofmap):
    """Per operand: (row index array, address array) of the valid demand words in SCALE-Sim's
    service order (row by row, column by column); plus rows per fold and the fold count."""
    M, K = ifmap.shape
    N = filt.shape[1]
    Sr, Sc, T = {'os': (M, N, K), 'ws': (K, N, M), 'is': (K, M, N)}[df]
    Lf = R + C + T - 2 if df == 'os' else 2 * R + C + T - 2
    out = {'ifmap': [], 'filter': [], 'ofmap': []}
    f = 0
    for c0, c1 in blocks(Sc, C):
        for r0, r1 in blocks(Sr, R):
            base = f * Lf
            if df == 'os':
                ib = pad_cols(ifmap.T[:, r0:r1], R)
                fb = pad_cols(filt[:, c0:c1], C)
                ob = np.full((R, C), -1, dtype=np.int64)
                ob[:r1 - r0, :c1 - c0] = ofmap[r0:r1, c0:c1]
                parts = {'ifmap': _skewed(ib, base), 'filter': _skewed(fb, base),
                         'ofmap': _skewed(ob[::-1], base + T - 1)}
            elif df == 'ws':
                ib = pad_cols(ifmap[:, r0:r1], R)
                fb = np.full((R, C), -1, dtype=np.int64)
                fb[:r1 - r0, :c1 - c0] = filt[r0:r1, c0:c1]
                ob = pad_cols(ofmap[:, c0:c1], C)
                parts = {'ifmap': _skewed(ib, base + R), 'filter': _flat(fb[::-1], base),
                         'ofmap': _skewed(ob, base + 2 * R - 1)}
            else:
                ib = np.full((R, C), -1, dtype=np.int64)
                ib[:r1 - r0, :c1 - c0] = ifmap.T[r0:r1, c0:c1]
                fb = pad_cols(filt[r0:r1, :].T, R)
                ob = pad_cols(ofmap[c0:c1, :].T, C)
                parts = {'ifmap': _flat(ib[::-1], base), 'filter': _skewed(fb, base + R),
                         'ofmap': _skewed(ob, base + 2 * R - 1)}
            for k, v in parts.items():
                out[k].append(v)
            f += 1
    streams = {k: (np.concatenate([p[0] for p in v]), np.concatenate([p[2] for p in v])) for k, v in out.items()}
    return streams, Lf, f


# ----------------------------------------------------------------------------- read buffer
class ReadBuffer:
    """memory/read_buffer.py (USER mode): sets, sliding active window, prefetch timing."""

    def __init__(self, prefetch_seq, sram_kb, bw):
        total = sram_kb * 1024                       # words (word size 1 byte)
        self.active = math.ceil(total * 0.5)
        self.pre = total - self.active
        self.bw = bw
        eps = math.ceil(total / 100)                 # prepare_hashed_buffer: elems_per_set
        valid = prefetch_seq[prefetch_seq != -1]
        self.n_sets = len(valid) // eps + 1          # the last set may be empty, it still counts
        max_a, max_p = math.ceil(self.active / eps), math.ceil(self.pre / eps)
        self.na = min(self.n_sets, max_a)
        self.np = min(self.n_sets - self.na, max_p)
        self.L = math.ceil(self.pre / bw)            # new_prefetch: request lines per prefetch
        fetch_rows = math.ceil(len(prefetch_seq) / bw)
        self.n0 = min(math.ceil(self.active / bw), fetch_rows)   # prefetch_active_buffer
        # address -> sorted set indices (CSR over compact address ids)
        self.uaddr, inv = np.unique(valid, return_inverse=True)
        sets = np.arange(len(valid), dtype=np.int64) // eps
        keys = np.unique(inv.astype(np.int64) * self.n_sets + sets)
        self.keys = keys
        self.first = np.full(len(self.uaddr), -1, dtype=np.int64)
        aid = keys // self.n_sets
        first_pos = np.flatnonzero(np.r_[True, aid[1:] != aid[:-1]])
        self.first[aid[first_pos]] = keys[first_pos] % self.n_sets

    def ids(self, addrs):
        idx = np.searchsorted(self.uaddr, addrs)
        assert np.all(idx < len(self.uaddr)) and np.all(self.uaddr[np.minimum(idx, len(self.uaddr) - 1)] == addrs), \
            'demanded address never prefetched (SCALE-Sim would loop forever)'
        return idx

    def dist(self, aids, s):
        """circular distance from window start s to the nearest set holding each address"""
        n = self.n_sets
        pos = np.searchsorted(self.keys, aids * n + s)
        posc = np.minimum(pos, len(self.keys) - 1)
        same = (pos < len(self.keys)) & (self.keys[posc] // n == aids)
        d1 = np.where(same, self.keys[posc] % n - s, n)
        d0 = (self.first[aids] - s) % n
        return np.minimum(d1, d0)

    def misses(self, aids, rows, n_rows):
        """number of new_prefetch() calls made in each demand row"""
        if self.na == self.n_sets:       # everything fits the active half: never misses
            self.miss_rows = []
            return np.zeros(n_rows, dtype=np.int64), 0
        s, pos, n_all, chunk = 0, 0, len(aids), 4096
        miss_rows = []
        while pos < n_all:
            end = min(n_all, pos + chunk)
            bad = np.flatnonzero(self.dist(aids[pos:end], s) >= self.na)
            if len(bad) == 0:
                pos, chunk = end, min(chunk * 2, 1 << 20)
                continue
            e = pos + int(bad[0])
            a = aids[e:e + 1]
            while self.dist(a, s)[0] >= self.na:      # while not active_buffer_hit: new_prefetch
                s = (s + self.np) % self.n_sets
                miss_rows.append(rows[e])
            pos, chunk = e + 1, max(4096, (e + 1 - pos) * 2)
        cnt = np.bincount(np.asarray(miss_rows, dtype=np.int64), minlength=n_rows) if miss_rows else \
            np.zeros(n_rows, dtype=np.int64)
        self.miss_rows = miss_rows
        return cnt, len(miss_rows)


# ----------------------------------------------------------------------------- write buffer
class WriteBuffer:
    """memory/write_buffer.py: active/drain halves, drains of ceil(half/bw) lines of bw words."""

    def __init__(self, sram_kb, bw):
        self.total = sram_kb * 1024
        self.active = math.ceil(self.total * 0.5)
        self.drain = self.total - self.active
        self.bw = bw
        self.free = self.total
        self.drain_end = 0
        self.n_lines, self.li, self.partial, self.start = 0, 0, {}, 0
        self.writes, self.first_cycle, self.last_cycle = 0, None, None

    def _store(self, j):
        self.free -= j
        self.li += j
        self.n_lines += self.li // self.bw
        self.li %= self.bw

    def _flush(self):
        if self.li:
            self.partial[self.n_lines] = self.li
            self.n_lines += 1
            self.li = 0

    def _drain(self, cur):
        nl = math.ceil(self.drain / self.bw)
        end = min(self.start + nl, self.n_lines)
        num = end - self.start
        d = (num - 1) * self.bw + self.partial.get(end - 1, self.bw)
        self.free += d
        self.writes += d
        if self.first_cycle is None:
            self.first_cycle = cur
        # DRAM OFMAP stop = max over all drains: a drain started just before the end of the run
        # can end after the final drains, which start at the last compute cycle (empty_all_buffers)
        self.last_cycle = max(cur + num - 1, self.last_cycle if self.last_cycle is not None else cur)
        self.start = end
        return cur + num - 1

    def row(self, c, n):
        """service_writes for one demand row with n valid words at cycle c -> offset (stall)"""
        cur, off = c, 0
        while n > 0:
            if cur < self.drain_end:
                j = max(self.free, 1)                 # store until free <= 0
                if j > n:
                    self._store(n)
                    break
                self._store(j)
                n -= j
                off += self.drain_end - cur
                cur = self.drain_end
            else:
                j = max(self.free - self.active + 1, 1)   # store until free < active
                if j > n:
                    self._store(n)
                    break
                self._store(j)
                n -= j
                self._flush()
                self.drain_end = self._drain(cur)
        return off

    def empty_all(self, cycle):
        self._flush()
        while self.start < self.n_lines:
            self.drain_end = self._drain(cycle)
            cycle = self.drain_end + 1


# ----------------------------------------------------------------------------- the model
def simulate(rec):
    cfg = rec['cfg']
    R, C, df, bw = cfg['rows'], cfg['cols'], cfg['df'], cfg['bw_words_per_cycle']
    ifmap, filt, ofmap = operand_matrices(rec)
    pf_i, pf_f = prefetch_sequences(df, R, C, ifmap, filt)
    streams, Lf, F = demand_streams(df, R, C, ifmap, filt, ofmap)
    n_rows = F * Lf
    rb_i, rb_f = ReadBuffer(pf_i, cfg['ifmap_kb'], bw), ReadBuffer(pf_f, cfg['filter_kb'], bw)
    m_i, k_i = rb_i.misses(rb_i.ids(streams['ifmap'][1]), streams['ifmap'][0], n_rows)
    m_f, k_f = rb_f.misses(rb_f.ids(streams['filter'][1]), streams['filter'][0], n_rows)
    n_o = np.bincount(streams['ofmap'][0], minlength=n_rows)
    wb = WriteBuffer(cfg['ofmap_kb'], bw)

    # double_buffered_scratchpad.service_memory_requests: one demand row per step
    S = 0
    ki = kf = 0
    Pi, Pf = rb_i.L + 1, rb_f.L + 1
    events = np.flatnonzero((m_i > 0) | (m_f > 0) | (n_o > 0))
    last_out = None
    for i in events.tolist():
        c = i + S
        t = c + 1
        for _ in range(int(m_i[i])):
            ki += 1
            d = ki * Pi - 1              # completion of the ki-th ifmap prefetch
            t = 2 * d - t if d > t else d
        st_i = t - c - 1
        t = c + 1
        for _ in range(int(m_f[i])):
            kf += 1
            d = kf * Pf - 1
            t = 2 * d - t if d > t else d
        st_f = t - c - 1
        off = wb.row(c, int(n_o[i]))
        S += max(st_i, st_f, off)
        last_out = (i, c + off)
    i_last = n_rows - 1
    total = last_out[1] if last_out[0] == i_last else i_last + S   # max ofmap serviced cycle
    wb.empty_all(total)
    ifmap_start, filter_start = -rb_i.n0, -rb_f.n0
    return dict(
        total_cycles=total, stall_cycles=S, compute_cycles=total - S,
        dram_ifmap_reads=(rb_i.n0 + k_i * rb_i.L) * bw, dram_filter_reads=(rb_f.n0 + k_f * rb_f.L) * bw,
        dram_ofmap_writes=wb.writes,
        dram_cycles=dict(ifmap_start=ifmap_start, ifmap_stop=k_i * Pi - 1 if k_i else -1,
                         filter_start=filter_start, filter_stop=k_f * Pf - 1 if k_f else -1,
                         ofmap_start=wb.first_cycle, ofmap_stop=wb.last_cycle),
        total_cycles_incl_prefetch=wb.last_cycle - min(ifmap_start, filter_start),
        _misses=(k_i, k_f), _sets=(rb_i.n_sets, rb_f.n_sets), _window=((rb_i.na, rb_i.np), (rb_f.na, rb_f.np)),
        _miss_rows=(rb_i.miss_rows, rb_f.miss_rows), _period=(Pi, Pf), _rows=n_rows)


# ----------------------------------------------------------------------------- closed form
def closed_form(rec, k_i, k_f):
    """Estimate of total_cycles from counts, given the number of window slides (misses) k_i, k_f
    of the ifmap and filter read buffers (ReadBuffer.misses; see README for when k has a simple
    form). Not exact; its error over the records is printed by main().

        t_c = F*Lf - 1                        zero-stall cycles (check_formula.compute_cycles)
        P_x = ceil(prefetch_half_x / bw) + 1  cycles per window slide of operand x
        read bound  = 2*ceil(k_x/2) * P_x     the k-th prefetch completes at k*P_x - 1, and the
                                              doubled stall makes misses cost in pairs
        write bound = ceil((W_o - S_o) / bw)  W_o = words written to the OFMAP SRAM, S_o = its size:
                                              all but the last SRAM-full must drain during compute
        total ~= max(t_c, read bound ifmap, read bound filter, write bound)
    """
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import check_formula as cf
    cfg = rec['cfg']
    R, C, df, bw = cfg['rows'], cfg['cols'], cfg['df'], cfg['bw_words_per_cycle']
    M, N, K = rec['gemm_M'], rec['gemm_N'], rec['gemm_K']
    tc = cf.compute_cycles(df, R, C, M, N, K)
    Sr = cf.spatio_temporal(df, M, N, K)[0]
    W_o = M * N if df == 'os' else math.ceil(Sr / R) * M * N
    S_o = cfg['ofmap_kb'] * 1024
    half = lambda kb: kb * 1024 - math.ceil(kb * 1024 * 0.5)
    P_i, P_f = math.ceil(half(cfg['ifmap_kb']) / bw) + 1, math.ceil(half(cfg['filter_kb']) / bw) + 1
    w = math.ceil((W_o - S_o) / bw) if W_o > S_o else 0
    return max(tc, 2 * math.ceil(k_i / 2) * P_i, 2 * math.ceil(k_f / 2) * P_f, w)


FIELDS = ['total_cycles', 'stall_cycles', 'compute_cycles', 'dram_ifmap_reads', 'dram_filter_reads',
          'dram_ofmap_writes', 'total_cycles_incl_prefetch']


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('refs', nargs='?', default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                           'scalesim_user_bw_refs.json'))
    ap.add_argument('--only')
    ap.add_argument('-v', action='store_true', help='list the largest closed_form errors')
    ap.add_argument('--predict', action='store_true',
                    help='also print the model for the skipped/timeout records (NOT SCALE-Sim output)')
    args = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    data = json.load(open(args.refs))
    n_ok = n_bad = n_skip = 0
    cf_err = []
    for rec in data['records']:
        if args.only and not re.search(args.only, rec['run_id']):
            continue
        if rec['status'] != 'ok':
            n_skip += 1
            if args.predict:
                p = simulate(rec)
                print(f"PRED {rec['run_id']:58s} ({rec['status']}; NOT SCALE-Sim) model total={p['total_cycles']} "
                      f"stall={p['stall_cycles']} slides(i,f)={p['_misses']}")
            continue
        t0 = time.time()
        p = simulate(rec)
        dt = time.time() - t0
        mism = [f'{k}: model={p[k]} scalesim={rec[k]}' for k in FIELDS if p[k] != rec[k]]
        mism += [f'dram_cycles.{k}: model={v} scalesim={rec["dram_cycles"][k]}'
                 for k, v in p['dram_cycles'].items() if v != rec['dram_cycles'][k]]
        est = closed_form(rec, *p['_misses'])
        cf_err.append((abs(est - rec['total_cycles']) / rec['total_cycles'], rec['run_id'], est))
        tag = 'OK  ' if not mism else 'FAIL'
        n_ok += not mism
        n_bad += bool(mism)
        print(f"{tag} {rec['run_id']:58s} total={rec['total_cycles']:>8} stall={rec['stall_cycles']:>8} "
              f"slides(i,f)={p['_misses']} sets={p['_sets']} ({dt:.1f}s)"
              + ('' if not mism else '\n      ' + '\n      '.join(mism)))
    if cf_err:
        cf_err.sort()
        e = [x[0] for x in cf_err]
        print(f"\nclosed_form() vs total_cycles over {len(e)} records: {sum(x == 0 for x in e)} exact, "
              f"{sum(x <= 0.01 for x in e)} within 1%, {sum(x <= 0.05 for x in e)} within 5%, "
              f"{sum(x <= 0.10 for x in e)} within 10%; median {e[len(e) // 2]:.2%}, max {e[-1]:.1%} ({cf_err[-1][1]})")
        if args.v:
            for x, rid, est in cf_err[::-1][:15]:
                print(f"   {x:7.2%} {rid} closed_form={est}")
    print(f"{n_ok} passed, {n_bad} failed ({n_skip} records not simulated by SCALE-Sim: skipped/timeout)")
    return 0 if n_bad == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
