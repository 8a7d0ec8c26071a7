"""SCALE-Sim v3 reference runs for nvmc's acceptance test 1: the conv layers of AlexNet and
ResNet-18 on 32x32 and 128x128 arrays, dataflows os / ws / is; and one multi-layer run of
ResNet-50 at 128x128 os (wall time for benchmarks/bench_systolic.py).

Usage (from any directory; with the SCALE-Sim venv, see README.md):
    /work/tmp/scalesim-venv/bin/python run_acceptance.py [--jobs 2] [--timeout 180]
        [--skip-resnet50] [--only REGEX] [--workdir DIR] [--out FILE] [--verify]

--only/--workdir/--out/--verify work as in run_all.py: --only REGEX runs only the cases whose
run_id matches (and needs --out), --verify compares the regenerated records with the committed
acceptance_refs.json (all fields but wall_s) and exits 1 on a difference.

Topologies: scalesim-project/scale-sim-v3 @ fab89b777d7363550b7560ff615a11f888db46b9
topologies/conv_nets/{alexnet,Resnet18,Resnet50}.csv, committed byte-identical in upstream/
(rows copied verbatim; FC rows left out of the acceptance set, they are not conv layers).
Configs: the same template as run_all.py (8192 kB SRAMs, CALC bandwidth: 0 stall cycles). Each unique layer shape is run once per
(array, dataflow); layers with the same shape share that run (listed in `layers`). A shape
already simulated in scalesim_refs.json (run_all.py) is not re-run: its record is reused and
marked `reused_from`. A run that exceeds the timeout is recorded with status "timeout" and
`NOT_SCALESIM_formula_predicted_compute_cycles` from check_formula.py (not SCALE-Sim output).
"""
import argparse, json, os, re, sys, time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_all as ra          # noqa: E402  (configs, execute(), to_records())
import check_formula as cf    # noqa: E402

COMMIT = ra.UPSTREAM_COMMIT
# upstream path at COMMIT -> file in upstream/ (byte-identical copies, see README.md)
UPSTREAM_FILES = {'topologies/conv_nets/alexnet.csv': 'alexnet.csv',
                  'topologies/conv_nets/Resnet18.csv': 'Resnet18.csv',
                  'topologies/conv_nets/Resnet50.csv': 'Resnet50.csv'}
NETS = {'alexnet': 'topologies/conv_nets/alexnet.csv', 'resnet18': 'topologies/conv_nets/Resnet18.csv'}
REFS = os.path.join(HERE, 'acceptance_refs.json')
ARRAYS, DATAFLOWS = [32, 128], ['os', 'ws', 'is']


def read_topology(text):
    rows = []
    for line in text.splitlines()[1:]:
        cells = [c.strip() for c in line.split(',')]
        if not cells[0] or cells[0].upper().startswith('FC'):
            continue
        rows.append((cells[0], tuple(int(c) for c in cells[1:8]), line))
    return rows


def git_show(path):
    """The upstream file `path` at COMMIT (read from its committed copy in upstream/)."""
    return ra.read_upstream(UPSTREAM_FILES[path])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--timeout', type=int, default=180)
    ap.add_argument('--skip-resnet50', action='store_true')
    ap.add_argument('--only', help='regex on run_id: run only these cases (reused records are kept if they match)')
    ap.add_argument('--workdir', default=HERE, help='where inputs/ and raw/ are written')
    ap.add_argument('--out', default=REFS)
    ap.add_argument('--verify', action='store_true', help='compare with the committed acceptance_refs.json')
    args = ap.parse_args()
    if args.only and os.path.abspath(args.out) == REFS:
        ap.error('--only with the committed acceptance_refs.json as --out would drop records: give --out')
    ra.set_workdir(args.workdir)
    old = json.load(open(os.path.join(HERE, 'scalesim_refs.json')))['records']
    layout = os.path.join(ra.INP, 'layout_test.csv')
    shapes = {}   # params -> list of (net, layer)
    topo_text = {}
    for net, path in NETS.items():
        text = git_show(path)
        topo_text[net] = text
        with open(os.path.join(ra.INP, f'upstream_{os.path.basename(path)}'), 'w') as f:
            f.write(text)
        for name, p, line in read_topology(text):
            shapes.setdefault(p, []).append(f'{net}:{name}')
    runs, records = [], []
    for p, layers in shapes.items():
        tag = 'conv{}x{}_{}x{}x{}_f{}_s{}'.format(p[2], p[3], p[0], p[1], p[4], p[5], p[6])
        t = os.path.join(ra.INP, f'topo_acc_{tag}.csv')
        with open(t, 'w') as f:
            f.write(ra.CONV_HDR + ra.conv_row(tag, p))
        for A in ARRAYS:
            for df in DATAFLOWS:
                prev = [r for r in old if r['status'] == 'ok' and r.get('kind') == 'conv' and r['array_rows'] == A
                        and r['array_cols'] == A and r['dataflow'] == df and r['layer_index'] == 0 and
                        (r['ifmap_h'], r['ifmap_w'], r['filt_h'], r['filt_w'], r['channels'], r['num_filt'],
                         r['stride']) == p]
                if prev:
                    rec = dict(prev[0], layers=layers, reused_from=f"scalesim_refs.json:{prev[0]['run_id']}")
                    records.append(rec)
                    continue
                cfg = ra.make_cfg(A, A, df)
                runs.append(dict(group='acceptance', layer=tag, topo=t, mode='conv', params=p, rows=A, cols=A,
                                 df=df, cfg=cfg, layout=layout, layers=layers,
                                 run_id=f'{tag}__{A}x{A}_{df}'))
    if not args.skip_resnet50:
        # upstream Resnet50.csv has 5 extra spreadsheet columns and an empty second row: keep the
        # header and the layer rows' first 8 fields (as in Resnet18.csv), nothing else changed
        lines = git_show('topologies/conv_nets/Resnet50.csv').splitlines()
        keep = [lines[0].split(',,,')[0]] + [l for l in lines[1:] if l.split(',')[0].strip()]
        t = os.path.join(ra.INP, 'topo_resnet50_all.csv')
        with open(t, 'w') as f:
            f.write('\n'.join(','.join(l.split(',')[:8]) + ',' for l in keep) + '\n')
        runs.append(dict(group='resnet50_benchmark', layer='resnet50', topo=t, mode='conv', params=None,
                         rows=128, cols=128, df='os', cfg=ra.make_cfg(128, 128, 'os'), layout=layout,
                         layers=['resnet50:all'], run_id='resnet50_all__128x128_os'))
    if args.only:
        runs = [r for r in runs if re.search(args.only, r['run_id'])]
        records = [r for r in records if re.search(args.only, r['run_id'])]
    runs.sort(key=lambda r: 0 if r['params'] is None else cf.compute_cycles(
        r['df'], r['rows'], r['cols'], *cf.mnk(dict(zip(
            ('ifmap_h', 'ifmap_w', 'filt_h', 'filt_w', 'channels', 'num_filt', 'stride'), r['params']),
            kind='conv'))))
    print(f'{len(records)} reused, {len(runs)} to run', flush=True)
    t0 = time.time()
    timeout = {id(r): (3600 if r['params'] is None else args.timeout) for r in runs}
    with ThreadPoolExecutor(args.jobs) as ex:
        for r, status, wall, res in ex.map(lambda r: ra.execute(r, timeout[id(r)]), runs):
            for rec in ra.to_records(r, status, wall, res):
                rec['layers'] = r['layers']
                records.append(rec)
            print(f"{time.time() - t0:7.0f}s {r['run_id']:45s} {status} {wall:.1f}s", flush=True)
            out = dict(description='SCALE-Sim v3 reference runs for nvmc acceptance 1 (AlexNet and ResNet-18 conv '
                                   'layers, 32x32 and 128x128, os/ws/is) and a ResNet-50 128x128 os multi-layer run '
                                   '(wall time). See run_acceptance.py.',
                       versions=json.load(open(os.path.join(HERE, 'scalesim_refs.json')))['versions'],
                       topologies=f'scalesim-project/scale-sim-v3 @ {COMMIT}: ' + ', '.join(
                           [*NETS.values(), 'topologies/conv_nets/Resnet50.csv']),
                       config=dict(sram_kb_each=ra.SRAM_KB, interface_bandwidth='CALC', timeout_s=args.timeout),
                       records=records)
            with open(args.out, 'w') as f:
                json.dump(out, f, indent=1)
    if args.verify:
        sys.exit(1 if ra.verify(records, REFS) else 0)


if __name__ == '__main__':
    main()
