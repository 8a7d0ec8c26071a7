"""Run ONE SCALE-Sim v3 simulation through its Python API and print the parsed reports as JSON.

Usage (with the SCALE-Sim venv, see README.md):
    /work/tmp/scalesim-venv/bin/python run_one.py CFG TOPO LAYOUT OUTDIR conv|gemm

This is what `python -m scalesim.scale -c CFG -t TOPO -l LAYOUT -p OUTDIR -i conv|gemm` does
(scalesim/scale.py), except that traces are not written: scale.py always passes
save_disk_space=False (its -s flag is parsed but ignored in 3.0.0), here we pass True.

SCALE-Sim writes COMPUTE_REPORT.csv, BANDWIDTH_REPORT.csv and DETAILED_ACCESS_REPORT.csv to
OUTDIR/<run_name from the cfg>/ (simulator.generate_reports). They are parsed unmodified: one dict
per layer, keyed by the CSV header names; a value is an int when its text is an integer or an
integral float ("32.0" -> 32), else a float. Also printed per layer: SCALE-Sim's own view of the
layer (topology_utils: topo_arrays and topo_calc_hyperparams), so a caller can check how the CSV
row was parsed.

Output (stdout, one JSON object):
    {"scalesim_version": ..., "config": CFG, "topology": TOPO, "input_type": "conv"|"gemm",
     "layers": [{"layer_id", "name", "scalesim_internal_layer": {...},
                 "compute_report": {...}, "bandwidth_report": {...},
                 "detailed_access_report": {...}}, ...]}
"""
import contextlib
import csv
import io
import json
import os
import sys


def parse_number(text):
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        pass
    v = float(text)
    return int(v) if v.is_integer() else v


def read_report(path):
    """SCALE-Sim report CSV -> {layer_id: {header: value}} (every row ends with ',')."""
    with open(path) as f:
        rows = [r for r in csv.reader(f) if r]
    header = [h.strip() for h in rows[0]]
    out = {}
    for r in rows[1:]:
        rec = {}
        for h, v in zip(header, r):
            if h == '':
                continue
            rec[h] = parse_number(v) if v.strip() != '' else None
        out[int(rec.pop('LayerID'))] = rec
    return out


def internal_layers(topo):
    topo.topo_calc_hyperparams()
    layers = []
    for arr, hyp in zip(topo.topo_arrays, topo.layers_calculated_hyperparams):
        layers.append(dict(name=arr[0], ifmap_h=arr[1], ifmap_w=arr[2], filt_h=arr[3], filt_w=arr[4],
                           channels=arr[5], num_filt=arr[6], stride_h=arr[7], stride_w=arr[8],
                           ofmap_h=hyp[0], ofmap_w=hyp[1], num_macs=hyp[2], window_size=hyp[3]))
    return layers


def run(cfg, topo, layout, outdir, input_type):
    from importlib.metadata import version
    from scalesim.scale_sim import scalesim

    # SCALE-Sim prints (and on bad input calls exit()) on stdout: keep our stdout pure JSON
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout,
                     input_type_gemm=(input_type == 'gemm'))
        s.run_scale(top_path=outdir)
    sys.stderr.write(buf.getvalue())
    rep_dir = os.path.join(outdir, s.config.get_run_name())
    comp = read_report(os.path.join(rep_dir, 'COMPUTE_REPORT.csv'))
    bw = read_report(os.path.join(rep_dir, 'BANDWIDTH_REPORT.csv'))
    det = read_report(os.path.join(rep_dir, 'DETAILED_ACCESS_REPORT.csv'))
    layers = []
    for lid, il in enumerate(internal_layers(s.topo)):
        name = il.pop('name')
        layers.append(dict(layer_id=lid, name=name, scalesim_internal_layer=il, compute_report=comp[lid],
                           bandwidth_report=bw[lid], detailed_access_report=det[lid]))
    return dict(scalesim_version=version('scalesim'), config=cfg, topology=topo, layout=layout,
                input_type=input_type, layers=layers)


def main(argv):
    if len(argv) != 6 or argv[5] not in ('conv', 'gemm'):
        sys.exit(__doc__)
    _, cfg, topo, layout, outdir, input_type = argv
    os.makedirs(outdir, exist_ok=True)
    print(json.dumps(run(cfg, topo, layout, outdir, input_type), indent=1))


if __name__ == '__main__':
    main(sys.argv)
