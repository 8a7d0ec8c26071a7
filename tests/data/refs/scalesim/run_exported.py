"""SCALE-Sim v3 runs of topologies written by nvmc (`nvmc export MODEL --scalesim-topology`).

Usage (from any directory; SCALE-Sim venv as in README.md, nvmc's venv for the export step):
    /work/tmp/scalesim-venv2/bin/python run_exported.py [--nvmc /work/venv/bin/python]
        [--jobs 2] [--timeout 900] [--only REGEX] [--skip-export] [--workdir DIR] [--out FILE]

1. exports examples/models/{tiny_cnn,tiny_transformer,resnet50}.onnx with nvmc
   (`python -m nvmc export MODEL --scalesim-topology exported/MODEL.csv`, format auto: conv for
   the CNNs, GEMM for the transformer) -- skipped with --skip-export (the committed files are used);
2. writes exported/cfg_<R>x<C>_<df>.cfg from run_all.py's CFG_TEMPLATE (8192 kB SRAMs, CALC
   bandwidth: 0 stall cycles, compute cycles = "Total Cycles");
3. runs SCALE-Sim on each (topology, config) unchanged, through run_one.py in a subprocess
   (`-i conv` or `-i gemm` as the topology's header says), and writes exported_refs.json:
   per case the files' sha256 and per SCALE-Sim layer its name and COMPUTE_REPORT numbers.

tests/test_interchange.py re-exports the models, checks the topologies are still the committed
bytes, and compares nvmc's per-node cycles on the same config (read as a target) with the sum of
SCALE-Sim's layers of that node (a depthwise 'DP' row runs as one SCALE-Sim layer per channel).
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, '..', '..', '..', '..'))
sys.path.insert(0, HERE)
import run_all as ra  # noqa: E402  (CFG_TEMPLATE, versions(), LAYOUT_SRC)

EXPORTED = os.path.join(HERE, 'exported')
OUT = os.path.join(HERE, 'exported_refs.json')
SRAM_KB = 8192
MODELS = {'tiny_cnn': [(8, 8), (32, 32)], 'tiny_transformer': [(8, 8), (32, 32)], 'resnet50': [(128, 128)]}
DATAFLOWS = {'tiny_cnn': ['os', 'ws', 'is'], 'tiny_transformer': ['os', 'ws', 'is'], 'resnet50': ['os', 'ws']}


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def rel(path):
    return os.path.relpath(path, HERE)


def export(nvmc_python, model):
    src = os.path.join(REPO, 'examples', 'models', f'{model}.onnx')
    out = os.path.join(EXPORTED, f'{model}.csv')
    cmd = [nvmc_python, '-m', 'nvmc', 'export', src, '--scalesim-topology', out]
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if p.returncode != 0:
        sys.exit(f'nvmc export failed:\n{p.stderr}')
    return out, [line for line in p.stderr.splitlines() if line.startswith('note:')]


def make_cfg(rows, cols, df):
    name = f'cfg_{rows}x{cols}_{df}'
    path = os.path.join(EXPORTED, name + '.cfg')
    with open(path, 'w') as f:
        f.write(ra.CFG_TEMPLATE.format(run_name=name, rows=rows, cols=cols, sram=SRAM_KB, df=df))
    return path


def input_type(topology):
    with open(topology) as f:
        names = [c.strip().upper() for c in f.readline().split(',')]
    return 'gemm' if names[1:4] == ['M', 'N', 'K'] else 'conv'


def execute(case, timeout, raw):
    """run_all's runner, with the layout every exported topology uses."""
    return ra.execute(dict(case, layout=ra.LAYOUT_SRC), timeout, raw=raw)


def record(case, status, wall, res):
    rec = dict(run_id=case['run_id'], model=case['model'], model_file=f"examples/models/{case['model']}.onnx",
               topology_file=rel(case['topo']), topology_sha256=sha256(case['topo']),
               config_file=rel(case['cfg']), config_sha256=sha256(case['cfg']), input_type=case['mode'],
               array_rows=case['rows'], array_cols=case['cols'], dataflow=case['df'], status=status, wall_s=wall)
    if status != 'ok':
        rec['error'] = (res or {}).get('error')
        return rec
    layers = []
    for lay in res['layers']:
        il, comp = lay['scalesim_internal_layer'], lay['compute_report']
        layers.append(dict(layer_id=lay['layer_id'], name=lay['name'],
                           gemm_M=il['ofmap_h'] * il['ofmap_w'], gemm_N=il['num_filt'], gemm_K=il['window_size'],
                           compute_cycles=comp['Total Cycles'], stall_cycles=comp['Stall Cycles'],
                           total_cycles_incl_prefetch=comp['Total Cycles (incl. prefetch)'],
                           overall_util_pct=comp['Overall Util %'], mapping_efficiency_pct=comp['Mapping Efficiency %']))
    rec['layers'] = layers
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--nvmc', default='/work/venv/bin/python', help="python of a venv with nvmc installed")
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--timeout', type=int, default=900)
    ap.add_argument('--only', help='regex on run_id: run only these cases (needs --out)')
    ap.add_argument('--skip-export', action='store_true', help='use the committed exported/*.csv as they are')
    ap.add_argument('--workdir', default=HERE, help='raw/ (parsed SCALE-Sim reports) goes here')
    ap.add_argument('--out', default=OUT)
    args = ap.parse_args()
    if args.only and os.path.abspath(args.out) == OUT:
        ap.error('--only with the committed exported_refs.json as --out would drop cases: give --out')
    raw = os.path.join(os.path.abspath(args.workdir), 'raw')
    os.makedirs(raw, exist_ok=True)
    os.makedirs(EXPORTED, exist_ok=True)
    notes = {}
    cases = []
    for model, arrays in MODELS.items():
        topo = os.path.join(EXPORTED, f'{model}.csv')
        if not args.skip_export:
            topo, notes[model] = export(args.nvmc, model)
        for rows, cols in arrays:
            for df in DATAFLOWS[model]:
                run_id = f'{model}__{rows}x{cols}_{df}'
                if args.only and not re.search(args.only, run_id):
                    continue
                cases.append(dict(run_id=run_id, model=model, topo=topo, cfg=make_cfg(rows, cols, df),
                                  mode=input_type(topo), rows=rows, cols=cols, df=df))
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        done = list(pool.map(lambda c: execute(c, args.timeout, raw), cases))
    records = [record(*d) for d in done]
    for r in records:
        print(f"{r['run_id']}: {r['status']} {r['wall_s']} s, {len(r.get('layers', []))} layers", file=sys.stderr)
    out = dict(
        description='SCALE-Sim 3.0.0 runs of topologies written by nvmc export (exported/*.csv) with configs '
                    'exported/cfg_*.cfg (8192 kB SRAMs, CALC: 0 stalls). compute_cycles = COMPUTE_REPORT '
                    '"Total Cycles". Made by run_exported.py.',
        versions=ra.versions(), sram_kb_each=SRAM_KB, timeout_s=args.timeout, export_notes=notes,
        records=records)
    with open(args.out, 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
