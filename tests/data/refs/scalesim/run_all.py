"""Regenerate scalesim_refs.json: SCALE-Sim v3 reference runs for nvmc's systolic cost model.

Usage (from any directory; with the SCALE-Sim venv, see README.md):
    /work/tmp/scalesim-venv/bin/python run_all.py [--jobs 2] [--timeout 180]
        [--only REGEX] [--workdir DIR] [--out FILE] [--verify]

* writes the configs and topologies it runs to WORKDIR/inputs/ (default WORKDIR: this directory;
  inputs/ and raw/ are generated, not committed),
* runs every case as `run_one.py CFG TOPO LAYOUT OUTDIR conv|gemm` in its own subprocess with a
  timeout (a run over the timeout is killed and recorded with status "timeout" plus
  NOT_SCALESIM_formula_predicted_compute_cycles from check_formula.py: NOT SCALE-Sim output),
* writes each run's parsed reports unmodified to WORKDIR/raw/<run_id>.json,
* writes the records to --out (default: scalesim_refs.json here).

--only REGEX runs the cases whose run_id matches (re.search) and refuses to overwrite the
committed scalesim_refs.json with that subset: give --out. --verify then compares every
regenerated record with the committed record of the same (run_id, layer_index), all fields but
wall_s, and exits 1 on any difference.

Cases: 6 layers x {8x8, 32x32, 128x128} x {os, ws, is} ("suite"), non-square 16x8 and GEMM-mode
cross-checks ("crosscheck"), the first 8 rows of upstream Resnet18.csv one layer per run at 32x32
os ("resnet18"), and its first 3 rows as one multi-layer run ("resnet18_multilayer").
Config: upstream configs/scale.cfg with the array size and dataflow set, all three SRAMs 8192 kB,
InterfaceBandwidth CALC (see CFG_TEMPLATE).
"""
import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_formula as cf  # noqa: E402

WORK = HERE
INP = os.path.join(WORK, 'inputs')
RAW = os.path.join(WORK, 'raw')
UPSTREAM_DIR = os.path.join(HERE, 'upstream')       # verbatim upstream files (see README)
LAYOUT_SRC = os.path.join(HERE, 'layout_test.csv')  # upstream layouts/conv_nets/test.csv
REFS = os.path.join(HERE, 'scalesim_refs.json')
UPSTREAM_COMMIT = 'fab89b777d7363550b7560ff615a11f888db46b9'

SRAM_KB = 8192
ARRAYS = [(8, 8), (32, 32), (128, 128)]
DATAFLOWS = ['os', 'ws', 'is']

CFG_TEMPLATE = """[general]
run_name = {run_name}

[architecture_presets]
ArrayHeight:    {rows}
ArrayWidth:     {cols}
IfmapSramSzkB:   {sram}
FilterSramSzkB:  {sram}
OfmapSramSzkB:   {sram}
IfmapOffset:    0
FilterOffset:   10000000
OfmapOffset:    20000000
Bandwidth : 10
Dataflow : {df}
MemoryBanks:   1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport : false
SparseRep : ellpack_block
OptimizedMapping : false
BlockSize : 8
RandomNumberGeneratorSeed : 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""

CONV_HDR = 'Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n'
GEMM_HDR = 'Layer Name, M, N, K,\n'   # upstream topologies/GEMM_mnk/*.csv; row order M, N, K

# (name, kind, params): conv params = (H, W, Fh, Fw, C, num_filt, stride); gemm params = (M, N, K)
SUITE = [
    ('conv3x3_56x56x64_f64_s1', 'conv', (56, 56, 3, 3, 64, 64, 1)),
    ('conv7x7_224x224x3_f64_s2', 'conv', (224, 224, 7, 7, 3, 64, 2)),
    ('conv1x1_28x28x256_f128_s1', 'conv', (28, 28, 1, 1, 256, 128, 1)),
    ('dwlike3x3_14x14x1_f1_s1', 'conv', (14, 14, 3, 3, 1, 1, 1)),
    ('fc_as_conv_1x1x2048_f1000', 'conv', (1, 1, 1, 1, 2048, 1000, 1)),
    ('gemm_M64_N768_K768', 'gemm', (64, 768, 768)),
]
CROSSCHECK = [   # ((name, kind, params), arrays)
    (SUITE[2], [(16, 8)]),
    (SUITE[5], [(16, 8)]),
    (('gemm_M64_N256_K768', 'gemm', (64, 256, 768)), [(32, 32)]),
    (('gemm_as_conv1x1_8x8x768_f768', 'conv', (8, 8, 1, 1, 768, 768, 1)), [(32, 32)]),
]
RESNET18_ROWS = 8          # first rows of upstream Resnet18.csv, one layer per run, 32x32 os
RESNET18_MULTI = 3         # first rows as one multi-layer run

DESCRIPTION = ('SCALE-Sim v3 (PyPI scalesim) reference runs for validating nvmc systolic-array compute-cycle '
               'model. compute_cycles = COMPUTE_REPORT "Total Cycles" (= "Compute cycles" in SCALE-Sim '
               'console output).')
SOURCES = {
    'scalesim': 'PyPI wheel scalesim==3.0.0 (source read from site-packages/scalesim)',
    'topologies_layouts': 'github scalesim-project/scale-sim-v3 @ ' + UPSTREAM_COMMIT + ': '
                          'topologies/conv_nets/Resnet18.csv, layouts/conv_nets/test.csv (the wheel ships no '
                          'topology/layout/config files)',
}
FORMULAS = {
    'conv_to_gemm': 'E_h=ceil((H-Fh+s)/s), E_w=ceil((W-Fw+s)/s); M=E_h*E_w, N=num_filt, K=Fh*Fw*C',
    'gemm_mode': 'CSV row "name, M, N, K," -> conv H=M, W=K, Fh=1, Fw=K, C=1, num_filt=N, s=1',
    'spatio_temporal': 'os: Sr=M,Sc=N,T=K; ws: Sr=K,Sc=N,T=M; is: Sr=K,Sc=M,T=N',
    'compute_cycles': 'F=ceil(Sr/R)*ceil(Sc/C); os: F*(R+C+T-2)-1; ws,is: F*(2R+C+T-2)-1 (+ stall cycles, 0 '
                      'here); R=ArrayHeight, C=ArrayWidth',
    'check': 'check_formula.py reproduces every ok record exactly',
}
VERSION_PKGS = ['scalesim', 'numpy', 'pandas', 'tqdm', 'numba', 'llvmlite', 'matplotlib', 'absl-py',
                'configparser', 'cython']


def set_workdir(path):
    """Where inputs/ and raw/ go (config_file etc. in the records stay relative to it)."""
    global WORK, INP, RAW
    WORK = os.path.abspath(path)
    INP = os.path.join(WORK, 'inputs')
    RAW = os.path.join(WORK, 'raw')
    os.makedirs(INP, exist_ok=True)
    os.makedirs(RAW, exist_ok=True)
    shutil.copyfile(LAYOUT_SRC, os.path.join(INP, 'layout_test.csv'))


def versions():
    from importlib.metadata import version, PackageNotFoundError
    out = {}
    for p in VERSION_PKGS:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    out['python'] = platform.python_version()
    return out


def make_cfg(rows, cols, df, sram_kb=SRAM_KB, template=CFG_TEMPLATE, name=None, **extra):
    """Write inputs/<name>.cfg (default cfg_<R>x<C>_<df>) and return its path."""
    name = name or f'cfg_{rows}x{cols}_{df}'
    path = os.path.join(INP, name + '.cfg')
    with open(path, 'w') as f:
        f.write(template.format(run_name=name, rows=rows, cols=cols, sram=sram_kb, df=df, **extra))
    return path


def conv_row(name, p):
    return '{}, {}, {}, {}, {}, {}, {}, {},\n'.format(name, *p)


def gemm_row(name, p):
    return '{}, {}, {}, {},\n'.format(name, *p)


def write_topo(name, kind, p):
    path = os.path.join(INP, f'topo_{name}.csv')
    with open(path, 'w') as f:
        f.write(GEMM_HDR + gemm_row(name, p) if kind == 'gemm' else CONV_HDR + conv_row(name, p))
    return path


def layer_fields(kind, p):
    """Layer description fields of a record, from the case's own parameters (used for timeouts)."""
    if kind == 'gemm':
        M, N, K = p
        return dict(gemm_M=M, gemm_N=N, gemm_K=K)
    H, W, fh, fw, c, n, s = p
    d = dict(ifmap_h=H, ifmap_w=W, filt_h=fh, filt_w=fw, channels=c, num_filt=n, stride=s)
    d['ofmap_h'] = -(-(H - fh + s) // s)
    d['ofmap_w'] = -(-(W - fw + s) // s)
    d.update(gemm_M=d['ofmap_h'] * d['ofmap_w'], gemm_N=n, gemm_K=fh * fw * c)
    return d


def execute(r, timeout, raw=None):
    """Run one case in a subprocess (its output also saved under ``raw``). Returns (r, status,
    wall_s, parsed run_one output or None)."""
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix='scalesim_') as tmp:
        cmd = [sys.executable, os.path.join(HERE, 'run_one.py'), r['cfg'], r['topo'], r['layout'], tmp, r['mode']]
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return r, 'timeout', round(time.time() - t0, 2), None
    wall = round(time.time() - t0, 2)
    if p.returncode != 0:
        return r, 'error', wall, {'error': (p.stderr or p.stdout)[-2000:]}
    res = json.loads(p.stdout)
    with open(os.path.join(raw or RAW, r['run_id'] + '.json'), 'w') as f:  # RAW is set by main()
        json.dump(res, f, indent=1)
    return r, 'ok', wall, res


def to_records(r, status, wall, res):
    """One record per layer of the run (a timeout/error run gives one record without results)."""
    base = dict(run_id=r['run_id'], group=r['group'], status=status, wall_s=wall, array_rows=r['rows'],
                array_cols=r['cols'], dataflow=r['df'], input_mode=r['mode'],
                config_file=os.path.relpath(r['cfg'], WORK), topology_file=os.path.relpath(r['topo'], WORK),
                layout_file=os.path.relpath(r['layout'], WORK))
    kind = 'gemm' if r['mode'] == 'gemm' else 'conv'
    if status != 'ok':
        rec = dict(base, layer=r['layer'], kind=kind)
        if r.get('params') is not None:
            rec.update(layer_fields(kind, r['params']))
            rec['NOT_SCALESIM_formula_predicted_compute_cycles'] = cf.compute_cycles(
                r['df'], r['rows'], r['cols'], *cf.mnk(rec))
        if status == 'error':
            rec['error'] = res['error']
        return [rec]
    recs = []
    for L in res['layers']:
        il, cr, da = L['scalesim_internal_layer'], L['compute_report'], L['detailed_access_report']
        rec = dict(base, layer=L['name'], layer_index=L['layer_id'], kind=kind)
        if kind == 'gemm':   # load_arrays_gemm: [name, M, K, 1, K, 1, N, 1, 1]
            rec.update(gemm_M=il['ifmap_h'], gemm_N=il['num_filt'], gemm_K=il['filt_w'])
        else:
            rec.update(ifmap_h=il['ifmap_h'], ifmap_w=il['ifmap_w'], filt_h=il['filt_h'], filt_w=il['filt_w'],
                       channels=il['channels'], num_filt=il['num_filt'], stride=il['stride_h'],
                       ofmap_h=il['ofmap_h'], ofmap_w=il['ofmap_w'], gemm_M=il['ofmap_h'] * il['ofmap_w'],
                       gemm_N=il['num_filt'], gemm_K=il['window_size'])
        rec.update(
            scalesim_internal_layer=il,
            compute_cycles=cr['Total Cycles'],
            total_cycles_incl_prefetch=cr['Total Cycles (incl. prefetch)'],
            stall_cycles=cr['Stall Cycles'],
            overall_util_pct=cr['Overall Util %'],
            mapping_efficiency_pct=cr['Mapping Efficiency %'],
            compute_util_pct=cr['Compute Util %'],
            sram_ifmap_reads=da['SRAM IFMAP Reads'],
            sram_filter_reads=da['SRAM Filter Reads'],
            sram_ofmap_writes=da['SRAM OFMAP Writes'],
            dram_ifmap_reads=da['DRAM IFMAP Reads'],
            dram_filter_reads=da['DRAM Filter Reads'],
            dram_ofmap_writes=da['DRAM OFMAP Writes'],
            bandwidth_report=L['bandwidth_report'],
            detailed_access_report=da)
        recs.append(rec)
    return recs


def read_upstream(name):
    with open(os.path.join(UPSTREAM_DIR, name)) as f:
        return f.read()


def build_runs():
    layout = os.path.join(INP, 'layout_test.csv')
    runs = []

    def add(group, name, kind, p, rows, cols, df, topo=None, run_id=None):
        runs.append(dict(group=group, layer=name, topo=topo or write_topo(name, kind, p), mode=kind, params=p,
                         rows=rows, cols=cols, df=df, cfg=make_cfg(rows, cols, df), layout=layout,
                         run_id=run_id or f'{name}__{rows}x{cols}_{df}'))

    for name, kind, p in SUITE:
        for rows, cols in ARRAYS:
            for df in DATAFLOWS:
                add('suite', name, kind, p, rows, cols, df)
    for (name, kind, p), arrays in CROSSCHECK:
        for rows, cols in arrays:
            for df in DATAFLOWS:
                add('crosscheck', name, kind, p, rows, cols, df)
    text = read_upstream('Resnet18.csv')
    with open(os.path.join(INP, 'Resnet18.csv'), 'w') as f:
        f.write(text)
    lines = text.splitlines(keepends=True)
    header, rows = lines[0], [l for l in lines[1:] if l.strip()]
    for line in rows[:RESNET18_ROWS]:
        cells = [c.strip() for c in line.split(',')]
        name, p = cells[0], tuple(int(c) for c in cells[1:8])
        t = os.path.join(INP, f'topo_resnet18_{name}.csv')
        with open(t, 'w') as f:
            f.write(header + line)
        add('resnet18', name, 'conv', p, 32, 32, 'os', topo=t, run_id=f'resnet18_{name}__32x32_os')
    t = os.path.join(INP, f'topo_resnet18_first{RESNET18_MULTI}.csv')
    with open(t, 'w') as f:
        f.write(header + ''.join(rows[:RESNET18_MULTI]))
    runs.append(dict(group='resnet18_multilayer', layer=f'resnet18_first{RESNET18_MULTI}', topo=t, mode='conv',
                     params=None, rows=32, cols=32, df='os', cfg=make_cfg(32, 32, 'os'), layout=layout,
                     run_id=f'resnet18_first{RESNET18_MULTI}__32x32_os'))
    return runs


def strip_volatile(rec):
    return {k: v for k, v in rec.items() if k != 'wall_s'}


def verify(new_records, committed_path):
    """Compare regenerated records with the committed ones (same run_id and layer_index), all fields
    but wall_s. Returns the number of differing records; prints one line per record."""
    old = {(r['run_id'], r.get('layer_index')): r for r in json.load(open(committed_path))['records']}
    bad = 0
    for rec in new_records:
        key = (rec['run_id'], rec.get('layer_index'))
        ref = old.get(key)
        if ref is None:
            print(f'VERIFY MISSING {key}: not in {os.path.basename(committed_path)}')
            bad += 1
            continue
        a, b = strip_volatile(rec), strip_volatile(ref)
        same = json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
        order = list(a) == list(b)
        if same and order:
            print(f'VERIFY SAME    {key[0]} layer {key[1]} (compute_cycles={rec.get("compute_cycles")}, '
                  f'wall {rec["wall_s"]} s vs {ref["wall_s"]} s committed)')
        else:
            bad += 1
            diffs = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
            print(f'VERIFY DIFF    {key}: fields {sorted(diffs)}' + ('' if order else ' (key order differs)'))
    print(f'verify: {len(new_records) - bad} identical, {bad} different (all fields but wall_s)')
    return bad


def write_refs(path, records, timeout):
    out = dict(description=DESCRIPTION, versions=versions(),
               config=dict(sram_kb_each=SRAM_KB, word_size_bytes=1, interface_bandwidth='CALC', sparsity=False,
                           custom_layout=False, timeout_s=timeout, config_template=CFG_TEMPLATE),
               sources=SOURCES, formulas=FORMULAS, records=records)
    with open(path, 'w') as f:
        json.dump(out, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--timeout', type=int, default=180)
    ap.add_argument('--only', help='regex on run_id: run only these cases')
    ap.add_argument('--workdir', default=HERE, help='where inputs/ and raw/ are written')
    ap.add_argument('--out', default=REFS)
    ap.add_argument('--verify', action='store_true', help='compare with the committed scalesim_refs.json')
    args = ap.parse_args()
    if args.only and os.path.abspath(args.out) == REFS:
        ap.error('--only with the committed scalesim_refs.json as --out would drop records: give --out')
    set_workdir(args.workdir)
    runs = build_runs()
    if args.only:
        runs = [r for r in runs if re.search(args.only, r['run_id'])]
    print(f'{len(runs)} runs, {args.jobs} jobs, timeout {args.timeout} s', flush=True)
    t0 = time.time()
    records = []
    with ThreadPoolExecutor(args.jobs) as ex:
        for r, status, wall, res in ex.map(lambda r: execute(r, args.timeout), runs):
            records += to_records(r, status, wall, res)
            print(f"{time.time() - t0:7.0f}s {r['run_id']:45s} {status} {wall:.1f}s", flush=True)
            write_refs(args.out, records, args.timeout)
    write_refs(args.out, records, args.timeout)
    if args.verify:
        sys.exit(1 if verify(records, REFS) else 0)


if __name__ == '__main__':
    main()
