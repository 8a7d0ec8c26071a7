"""SCALE-Sim v3 references for the bandwidth-limited ("USER" interface bandwidth) mode.

Usage (with the SCALE-Sim venv, see README.md):
    /work/tmp/scalesim-venv/bin/python run_user_bw.py [--jobs 2] [--timeout 300]
        [--only REGEX] [--workdir DIR] [--out FILE] [--resume] [--list]

Writes scalesim_user_bw_refs.json (records below), WORKDIR/inputs/ (cfgs, topologies) and
WORKDIR/raw/<run_id>.json (run_one.py output, unmodified). Each case runs in its own subprocess
(run_all.execute) with a timeout; a case over it gets status "timeout". Cases we did not even
try because SCALE-Sim's pure-Python memory model is too slow for them get status "skipped"
(cheap cases run first). --resume keeps the "ok" and "timeout" records already in --out and
runs the rest.

How USER mode is configured in scalesim 3.0.0 (read from the source, see README.md):
  [run_presets] InterfaceBandwidth: USER
  single_layer_sim.run: ifmap DRAM->SRAM bw  = [layout] IfmapSRAMBankBandwidth
                        filter DRAM->SRAM bw = [layout] FilterSRAMBankBandwidth
                        ofmap SRAM->DRAM bw  = [architecture_presets] Bandwidth (first value)
  so all three are set to the same BW (words/cycle) here. read_buffer.set_params asserts that
  the bw is divisible by IfmapSRAMBankNum / FilterSRAMBankNum (10 in upstream scale.cfg), so
  those are set to 1 (they only matter with custom layouts, which are off).
"""
import argparse
import json
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_all as ra          # noqa: E402  (execute(), to_records(), set_workdir(), write_topo())
import check_formula as cf    # noqa: E402

OUT = os.path.join(HERE, 'scalesim_user_bw_refs.json')

CFG_TEMPLATE = """[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:   {ifmap_kb}
FilterSramSzkB:  {filter_kb}
OfmapSramSzkB:   {ofmap_kb}
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : {bw}
Dataflow : {df}
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: {bw}
IfmapSRAMBankNum: 1
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: {bw}
FilterSRAMBankNum: 1
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: USER
UseRamulatorTrace: False
"""

# (name, kind, params, source): conv params = (H, W, Fh, Fw, C, num_filt, stride); gemm = (M, N, K)
LAYERS = [
    ('resnet18_Conv1', 'conv', (224, 224, 7, 7, 3, 64, 2), 'upstream Resnet18.csv Conv1 (7x7 s2 stem)'),
    ('resnet18_Conv4_1b', 'conv', (14, 14, 3, 3, 256, 256, 1), 'upstream Resnet18.csv Conv4_1b (3x3)'),
    ('resnet18_Conv3_s', 'conv', (56, 56, 1, 1, 64, 128, 2), 'upstream Resnet18.csv Conv3_s (1x1 s2 downsample)'),
    ('gemm_M64_N256_K768', 'gemm', (64, 256, 768), 'GEMM mode'),
    ('gemm_M256_N128_K256', 'gemm', (256, 128, 256), 'GEMM mode'),
]
ARRAYS = [32, 128]
DATAFLOWS = ['os', 'ws', 'is']
SMALL_KB, BIG_KB = 64, 8192
# memory configs: (tag, ifmap kB, filter kB, ofmap kB, bw words/cycle)
MEMS = [('sram64kB_bw1', SMALL_KB, SMALL_KB, SMALL_KB, 1),
        ('sram64kB_bw4', SMALL_KB, SMALL_KB, SMALL_KB, 4),
        ('sram64kB_bw16', SMALL_KB, SMALL_KB, SMALL_KB, 16),
        ('sram8192kB_bw4', BIG_KB, BIG_KB, BIG_KB, 4)]
# SCALE-Sim's cost grows with the number of SRAM demand words (its memory model is a Python loop
# over every word): the 7x7 stem and the 3x3 layer on 32x32 are ~6-9 M words (2-7 min each on a
# shared 2-core machine), so they run for one memory config and os/ws only; 128x128 gets 3 configs.
HEAVY = {'resnet18_Conv1', 'resnet18_Conv4_1b'}


# SCALE-Sim's time also grows ~quadratically with the number k of read-buffer window slides
# (read_buffer.new_prefetch appends every prefetch to its trace with np.concatenate): the stem on
# 128x128 os (k = 2542 ifmap slides by check_user_bw.py) ran out of 300 s while ws (k = 101) took
# 24 s. Cases with k in the thousands or hundreds on top of a 32x32 heavy layer are not tried.
SLOW_K = {('resnet18_Conv1', 128, 'is'): 4868, ('resnet18_Conv1', 32, 'os'): 432,
          ('resnet18_Conv4_1b', 32, 'os'): 611}


def plan(name, rows, df, mem_tag):
    """'run' or the reason the case is skipped."""
    if name not in HEAVY:
        return 'run'
    if rows == 32:
        if df == 'is':
            return 'skipped: is on 32x32 took >155 s already in CALC mode (acceptance_refs.json); USER mode is slower'
        if mem_tag != 'sram64kB_bw4':
            return 'skipped: runtime budget (32x32 heavy layer: only sram64kB_bw4 run)'
    elif mem_tag == 'sram64kB_bw1':
        return 'skipped: runtime budget (128x128 heavy layer: bw 4, 16 and the big SRAM run)'
    k = SLOW_K.get((name, rows, df))
    if k and mem_tag.startswith('sram64kB'):
        return (f'skipped: ~{k} read-buffer window slides (check_user_bw.py); SCALE-Sim time grows ~k^2 and '
                f'resnet18_Conv1 128x128 os (2542 slides) exceeded 300 s')
    return 'run'


def est_words(kind, p, df, A):
    rec = dict(kind=kind, dataflow=df, array_rows=A, array_cols=A, stall_cycles=0)
    if kind == 'gemm':
        rec.update(gemm_M=p[0], gemm_N=p[1], gemm_K=p[2])
    else:
        rec.update(ra.layer_fields('conv', p))
    d = cf.derived(rec)
    return d['sram_ifmap_reads'] + d['sram_filter_reads'] + d['sram_ofmap_writes']


def build_runs():
    layout = os.path.join(ra.INP, 'layout_test.csv')
    runs = []
    for name, kind, p, src in LAYERS:
        topo = ra.write_topo(name, kind, p)
        for A in ARRAYS:
            for df in DATAFLOWS:
                for tag, ikb, fkb, okb, bw in MEMS:
                    cfg_params = dict(rows=A, cols=A, df=df, ifmap_kb=ikb, filter_kb=fkb, ofmap_kb=okb, bw=bw)
                    cfg_name = f'cfg_user_{A}x{A}_{df}_{tag}'
                    runs.append(dict(group='user_bw', layer=name, source=src, topo=topo, mode=kind, params=p,
                                     rows=A, cols=A, df=df, mem=tag, cfg_params=cfg_params, cfg_name=cfg_name,
                                     cfg=os.path.join(ra.INP, cfg_name + '.cfg'), layout=layout,
                                     run_id=f'{name}__{A}x{A}_{df}__{tag}', plan=plan(name, A, df, tag),
                                     est_words=est_words(kind, p, df, A)))
    return runs


def to_user_records(r, status, wall, res):
    """Flat per-layer record (one layer per run here)."""
    base = dict(run_id=r['run_id'], status=status, wall_s=wall, layer=r['layer'], source=r['source'],
                kind='gemm' if r['mode'] == 'gemm' else 'conv', input_mode=r['mode'],
                array_rows=r['rows'], array_cols=r['cols'], dataflow=r['df'], memory=r['mem'],
                cfg=dict(r['cfg_params']), config_file=os.path.relpath(r['cfg'], ra.WORK),
                topology_file=os.path.relpath(r['topo'], ra.WORK))
    base['cfg']['bw_words_per_cycle'] = base['cfg'].pop('bw')
    fields = ra.layer_fields(base['kind'], r['params'])
    base.update(fields)
    zero_stall = cf.compute_cycles(r['df'], r['rows'], r['cols'], fields['gemm_M'], fields['gemm_N'],
                                   fields['gemm_K'])
    base['formula_zero_stall_compute_cycles'] = zero_stall
    if status != 'ok':
        if status == 'error':
            base['error'] = res['error']
        if r['plan'] != 'run':
            base['reason'] = r['plan']
        return base
    (rec,) = ra.to_records(dict(r, group='user_bw'), status, wall, res)
    da, bwr = rec['detailed_access_report'], rec['bandwidth_report']
    base.update(
        total_cycles=rec['compute_cycles'],               # COMPUTE_REPORT "Total Cycles" (stalls included)
        stall_cycles=rec['stall_cycles'],
        compute_cycles=rec['compute_cycles'] - rec['stall_cycles'],
        total_cycles_incl_prefetch=rec['total_cycles_incl_prefetch'],
        dram_ifmap_reads=rec['dram_ifmap_reads'],
        dram_filter_reads=rec['dram_filter_reads'],
        dram_ofmap_writes=rec['dram_ofmap_writes'],
        sram_ifmap_reads=rec['sram_ifmap_reads'],
        sram_filter_reads=rec['sram_filter_reads'],
        sram_ofmap_writes=rec['sram_ofmap_writes'],
        avg_dram_bw={k.replace('Avg ', '').replace(' DRAM BW', '').lower(): v
                     for k, v in bwr.items() if 'DRAM' in k},
        avg_sram_bw={k.replace('Avg ', '').replace(' SRAM BW', '').lower(): v
                     for k, v in bwr.items() if 'SRAM' in k},
        dram_cycles={k.replace('DRAM ', '').replace(' Cycle', '').lower().replace(' ', '_'): v
                     for k, v in da.items() if k.startswith('DRAM') and 'Cycle' in k},
        overall_util_pct=rec['overall_util_pct'],
    )
    return base


def write_out(path, records, args):
    out = dict(
        description='SCALE-Sim v3 (scalesim 3.0.0) USER-bandwidth (bandwidth-limited) reference runs: per '
                    'layer total cycles (stalls included), stall cycles, DRAM traffic per operand. See '
                    'README.md "USER (bandwidth-limited) mode" and check_user_bw.py.',
        versions=ra.versions(),
        config_template=CFG_TEMPLATE,
        config_note='each record\'s cfg = config_template.format(run_name=<cfg file stem>, **cfg) with '
                    'bw=cfg["bw_words_per_cycle"]; word size 1 byte, so kB = kilo-words (1024).',
        fields={
            'total_cycles': 'COMPUTE_REPORT "Total Cycles" = cycles incl. stalls, excl. the initial SRAM fill '
                            'and the final OFMAP drain',
            'stall_cycles': 'COMPUTE_REPORT "Stall Cycles"',
            'compute_cycles': 'total_cycles - stall_cycles (equals formula_zero_stall_compute_cycles from '
                              'check_formula.py in every ok record)',
            'total_cycles_incl_prefetch': 'COMPUTE_REPORT "Total Cycles (incl. prefetch)" = OFMAP DRAM stop - '
                                          'min(IFMAP, FILTER DRAM start)',
            'dram_*': 'DETAILED_ACCESS_REPORT DRAM reads/writes in words (reads count whole bw-wide request '
                      'lines, see README)',
            'avg_dram_bw': 'BANDWIDTH_REPORT: DRAM accesses / (DRAM stop - start + 1)',
            'dram_cycles': 'DETAILED_ACCESS_REPORT DRAM start/stop cycles per operand',
        },
        timeout_s=args.timeout,
        records=records)
    head = json.dumps({k: v for k, v in out.items() if k != 'records'}, indent=1)
    with open(path, 'w') as f:   # one record per line keeps the file small and diffable
        f.write(head[:-2] + ',\n "records": [\n' + ',\n'.join('  ' + json.dumps(r) for r in records)
                + '\n ]\n}\n')


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--timeout', type=int, default=300)
    ap.add_argument('--only', help='regex on run_id')
    ap.add_argument('--workdir', default=HERE)
    ap.add_argument('--out', default=OUT)
    ap.add_argument('--resume', action='store_true', help='keep the ok and timeout records already in --out')
    ap.add_argument('--list', action='store_true', help='print the cases and exit')
    args = ap.parse_args()
    ra.set_workdir(args.workdir)
    runs = build_runs()
    for r in runs:
        ra.make_cfg(name=r['cfg_name'], template=CFG_TEMPLATE, **r['cfg_params'])
    if args.only:
        runs = [r for r in runs if re.search(args.only, r['run_id'])]
    order = {r['run_id']: i for i, r in enumerate(runs)}
    done = {}
    if args.resume and os.path.exists(args.out):
        done = {r['run_id']: r for r in json.load(open(args.out))['records'] if r['status'] in ('ok', 'timeout')}
    todo = sorted([r for r in runs if r['plan'] == 'run' and r['run_id'] not in done], key=lambda r: r['est_words'])
    if args.list:
        for r in runs:
            print(f"{r['run_id']:60s} {r['est_words'] / 1e6:6.2f} M words  {r['plan']}")
        print(f'{len(runs)} cases, {len(todo)} to run, {len(done)} done')
        return
    records = dict(done)
    for r in runs:
        if r['plan'] != 'run':
            records[r['run_id']] = to_user_records(r, 'skipped', None, None)
    print(f'{len(runs)} cases: {len(todo)} to run, {len(done)} kept, '
          f'{sum(r["plan"] != "run" for r in runs)} skipped', flush=True)
    t0 = time.time()

    def flush():
        write_out(args.out, sorted(records.values(), key=lambda x: order.get(x['run_id'], 1e9)), args)

    with ThreadPoolExecutor(args.jobs) as ex:
        for r, status, wall, res in ex.map(lambda r: ra.execute(r, args.timeout), todo):
            rec = to_user_records(r, status, wall, res)
            records[r['run_id']] = rec
            print(f"{time.time() - t0:7.0f}s {r['run_id']:60s} {status} {wall:.1f}s "
                  f"total={rec.get('total_cycles')} stall={rec.get('stall_cycles')}", flush=True)
            flush()
    flush()


if __name__ == '__main__':
    main()
