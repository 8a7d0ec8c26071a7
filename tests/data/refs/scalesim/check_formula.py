"""Check closed-form formulas against every SCALE-Sim v3 record in scalesim_refs.json.

Run:  python3 check_formula.py [scalesim_refs.json]      (stdlib only, no SCALE-Sim needed)

Formulas (derived from scalesim 3.0.0 source; see README.md for file/function references):

  conv -> GEMM (topology_utils.topo_calc_hyperparams, operand_matrix):
      E_h = ceil((H - Fh + s) / s), E_w = ceil((W - Fw + s) / s)     (no padding, ceil!)
      M = E_h * E_w   (ofmap pixels per filter)   N = num_filt   K = Fh * Fw * C
  GEMM mode CSV row "name, M, N, K," (topology_utils.load_arrays_gemm) is the conv layer
      H=M, W=K, Fh=1, Fw=K, C=1, num_filt=N, s=1  ->  same M, N, K.

  (Sr, Sc, T):  os = (M, N, K)   ws = (K, N, M)   is = (K, M, N)
  R = ArrayHeight (rows), C = ArrayWidth (cols)
  F = ceil(Sr / R) * ceil(Sc / C)
  lines per fold  L_f = R + C + T - 2       (os)
                  L_f = 2R + C + T - 2      (ws, is)
  compute_cycles  = F * L_f - 1 + stall_cycles        (stall_cycles = 0 in all runs here)
"""
import json, math, sys, os


def mnk(rec):
    if rec['kind'] == 'gemm':
        return rec['gemm_M'], rec['gemm_N'], rec['gemm_K']
    H, W, fh, fw = rec['ifmap_h'], rec['ifmap_w'], rec['filt_h'], rec['filt_w']
    c, n, s = rec['channels'], rec['num_filt'], rec['stride']
    eh = math.ceil((H - fh + s) / s)
    ew = math.ceil((W - fw + s) / s)
    return eh * ew, n, fh * fw * c


def spatio_temporal(df, M, N, K):
    return {'os': (M, N, K), 'ws': (K, N, M), 'is': (K, M, N)}[df]


def lines_per_fold(df, R, C, T):
    return R + C + T - 2 if df == 'os' else 2 * R + C + T - 2


def compute_cycles(df, R, C, M, N, K, stalls=0):
    Sr, Sc, T = spatio_temporal(df, M, N, K)
    folds = math.ceil(Sr / R) * math.ceil(Sc / C)
    return folds * lines_per_fold(df, R, C, T) - 1 + stalls


def covered(n_in, n_out, f, s):
    """# input rows (or cols) touched by n_out windows of size f, stride s, clipped to n_in."""
    cov, hi = 0, -1
    for e in range(n_out):
        lo_e, hi_e = e * s, min(e * s + f - 1, n_in - 1)
        lo_e = max(lo_e, hi + 1)
        if hi_e >= lo_e:
            cov += hi_e - lo_e + 1
            hi = hi_e
    return cov


def derived(rec):
    """Every reported quantity we model, as a dict name -> predicted value."""
    df, R, C = rec['dataflow'], rec['array_rows'], rec['array_cols']
    M, N, K = mnk(rec)
    Sr, Sc, T = spatio_temporal(df, M, N, K)
    rf, cf = math.ceil(Sr / R), math.ceil(Sc / C)
    F = rf * cf
    cyc = compute_cycles(df, R, C, M, N, K, rec['stall_cycles'])
    p = {}
    p['compute_cycles'] = cyc
    # single_layer_sim.calc_report_data: num_compute = M*N*K, divided by cycles*R*C
    p['overall_util_pct'] = 100.0 * M * N * K / (cyc * R * C)
    # per-fold (used rows * used cols)/(R*C), averaged over folds
    p['mapping_efficiency_pct'] = 100.0 * Sr * Sc / (F * R * C)
    # per-fold used*T / (R*C*cyc_fold), averaged; cyc_fold = demand-matrix rows + cols - 1
    cyc_fold = (T + R + C - 2) if df == 'os' else (2 * R + 2 * C + T - 3)
    p['compute_util_pct'] = 100.0 * Sr * Sc * T / (F * R * C * cyc_fold)
    if df == 'os':
        p['sram_ifmap_reads'] = cf * M * K
        p['sram_filter_reads'] = rf * K * N
        p['sram_ofmap_writes'] = M * N + F * (R + C)   # SCALE-Sim adds R+C per fold (counter quirk)
        ofmap_dram = M * N
    elif df == 'ws':
        p['sram_ifmap_reads'] = cf * M * K
        p['sram_filter_reads'] = K * N
        p['sram_ofmap_writes'] = rf * M * N
        ofmap_dram = rf * M * N
    else:
        p['sram_ifmap_reads'] = M * K
        p['sram_filter_reads'] = cf * K * N
        p['sram_ofmap_writes'] = rf * M * N
        ofmap_dram = rf * M * N
    # DRAM: with SRAMs large enough, every distinct valid address is fetched once; every
    # ofmap element written to the OFMAP SRAM (incl. partial sums of each row fold) is drained.
    if rec['kind'] == 'gemm':
        p['dram_ifmap_reads'] = M * K
    else:
        rows = covered(rec['ifmap_h'], rec['ofmap_h'], rec['filt_h'], rec['stride'])
        cols = covered(rec['ifmap_w'], rec['ofmap_w'], rec['filt_w'], rec['stride'])
        p['dram_ifmap_reads'] = rows * cols * rec['channels']
    p['dram_filter_reads'] = K * N
    p['dram_ofmap_writes'] = ofmap_dram
    return p


def incl_prefetch(rec, sram_kb):
    """SCALE-Sim 'Total Cycles (incl. prefetch)' in CALC (estimate-bandwidth) mode.

    = OFMAP DRAM stop cycle - min(IFMAP, FILTER DRAM start cycle), where
      IFMAP/FILTER DRAM start = -ceil(n_sets * set_sz / 10)   (whole operand prefetched before
            cycle 0 at the hard-coded 10 words/cycle; set_sz = floor(SRAM_bytes / 100),
            n_sets = ceil(distinct_addresses / set_sz))   read_buffer_estimate_bw.py
      OFMAP DRAM stop = compute_cycles + ceil(ofmap_dram_writes / C) - 1   (drained after the
            last compute cycle at C words/cycle)   write_buffer.empty_all_buffers
    Only valid while nothing is drained mid-run (ofmap writes <= half the OFMAP SRAM) and the
    operands fit in the active half of the read buffers; returns None otherwise.
    It depends on the SRAM size, so it is a config artefact rather than a property of the array.
    """
    elems = sram_kb * 1024
    set_sz = elems // 100
    p = derived(rec)
    if p['dram_ofmap_writes'] > elems // 2:
        return None
    starts = []
    for x in (p['dram_ifmap_reads'], p['dram_filter_reads']):
        n_sets = math.ceil(x / set_sz)
        if n_sets > 50:
            return None
        starts.append(-math.ceil(n_sets * set_sz / 10))
    stop = rec['compute_cycles'] + math.ceil(p['dram_ofmap_writes'] / rec['array_cols']) - 1
    return stop - min(starts)


def close(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    return a == b


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'scalesim_refs.json')
    data = json.load(open(path))
    sram_kb = data['config']['sram_kb_each']
    n_ok = n_bad = n_skipped = 0
    pf_ok = pf_bad = pf_na = 0
    cyc_ok = cyc_bad = 0
    bad_fields = {}
    for rec in data['records']:
        if rec['status'] != 'ok':
            n_skipped += 1
            print(f"SKIP {rec['run_id']:55s} status={rec['status']}")
            continue
        pred = derived(rec)
        if pred['dram_ofmap_writes'] > sram_kb * 1024 // 2:
            # OFMAP SRAM half-full -> drains start mid-run; SCALE-Sim then also counts some -1
            # padding words of partially filled drain lines as DRAM writes (empty_drain_buf).
            pred.pop('dram_ofmap_writes')
            print(f"NOTE {rec['run_id']}: ofmap writes exceed half the OFMAP SRAM; DRAM ofmap "
                  f"writes not modelled (formula {derived(rec)['dram_ofmap_writes']}, "
                  f"scalesim {rec['dram_ofmap_writes']})")
        ip = incl_prefetch(rec, sram_kb)
        if ip is None:
            pf_na += 1
        elif ip == rec['total_cycles_incl_prefetch']:
            pf_ok += 1
        else:
            pf_bad += 1
            print(f"NOTE {rec['run_id']}: incl-prefetch formula {ip} != {rec['total_cycles_incl_prefetch']}")
        # the cycle formula itself must hold with zero stalls
        M, N, K = mnk(rec)
        assert rec['stall_cycles'] == 0, rec['run_id']
        mism = []
        for k, v in pred.items():
            if not close(v, rec[k]):
                mism.append(f"{k}: formula={v} scalesim={rec[k]}")
                bad_fields[k] = bad_fields.get(k, 0) + 1
        if close(pred['compute_cycles'], rec['compute_cycles']):
            cyc_ok += 1
        else:
            cyc_bad += 1
        tag = 'OK  ' if not mism else 'FAIL'
        n_ok += not mism
        n_bad += bool(mism)
        print(f"{tag} {rec['run_id']:55s} M={M} N={N} K={K} cycles={rec['compute_cycles']}"
              + ('' if not mism else '\n      ' + '\n      '.join(mism)))
    print()
    print(f"compute_cycles: {cyc_ok} exact matches, {cyc_bad} mismatches")
    print(f"all modelled fields: {n_ok} records fully match, {n_bad} with some mismatch "
          f"{bad_fields if bad_fields else ''}; {n_skipped} runs skipped (timeout/error)")
    print(f"total_cycles_incl_prefetch (informational, SRAM-size artefact): {pf_ok} match, "
          f"{pf_bad} mismatch, {pf_na} outside the formula's validity range")
    print(f"{n_ok} passed, {n_bad} failed")
    return 0 if (n_bad == 0 and cyc_bad == 0) else 1


if __name__ == '__main__':
    sys.exit(main())
