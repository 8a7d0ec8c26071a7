"""nvmc's closed-form USER-mode slide counts against the event model on conv layers whose windows
overlap (im2col ifmaps that hold each pixel up to (F/s)^2 times), where SCALE-Sim has no record.

Run (nvmc's venv; the event model is check_user_bw.simulate, exact on all 88 SCALE-Sim records):
    python tests/data/refs/scalesim/check_overlap.py [--only REGEX]

Cases: 7x7/s2, 3x3/s1, 3x3/s2, 5x5/s1 layers small enough for the event model (well under a
second each), os / ws / is, 8x8 and 16x16 arrays, 1 and 4 words/cycle, 2 and 4 kB read buffers.
Columns: the read buffer's sets (n, na, np) and x = n - ceil((n - na) / np) np (the closed form's
exactness needs x = na), then ifmap slides and total cycles of both models. Output is printed,
not asserted: these are model-vs-model numbers, not SCALE-Sim output.
"""
import argparse
import math
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_user_bw as cub                                   # noqa: E402
from nvmc.backends import systolic_bandwidth as sbw           # noqa: E402

LAYERS = [(32, 7, 2, 3), (16, 3, 1, 8), (24, 3, 2, 8), (16, 5, 1, 8)]   # (H = W, F, stride, channels)


def conv_record(h, f, s, c, rows, df, kb, bw, filters=16):
    e = -(-(h - f + s) // s)                                   # SCALE-Sim: no padding, ceil
    return dict(run_id=f'conv{f}x{f}s{s}_{h}x{h}x{c}__{rows}x{rows}_{df}_{kb}kB_bw{bw}', kind='conv',
                ifmap_h=h, ifmap_w=h, filt_h=f, filt_w=f, channels=c, num_filt=filters, stride=s,
                gemm_M=e * e, gemm_N=filters, gemm_K=f * f * c,
                cfg=dict(rows=rows, cols=rows, df=df, bw_words_per_cycle=bw, ifmap_kb=kb, filter_kb=kb, ofmap_kb=kb))


def valid_words(rec):
    """Valid (on-image) words of SCALE-Sim's im2col ifmap."""
    ifmap, _, _ = cub.operand_matrices(rec)
    return int(np.count_nonzero(ifmap != -1))


def closed_form(rec):
    cfg = rec['cfg']
    out = sbw.user_cycles(cfg['df'], cfg['rows'], cfg['cols'], [rec['gemm_M']], [rec['gemm_N']], [rec['gemm_K']],
                          bandwidth=cfg['bw_words_per_cycle'], ifmap_capacity=cfg['ifmap_kb'] * 1024,
                          filter_capacity=cfg['filter_kb'] * 1024, ofmap_capacity=cfg['ofmap_kb'] * 1024,
                          ifmap_words=[valid_words(rec)])
    return {key: float(v[0]) for key, v in out.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--only')
    args = ap.parse_args()
    for h, f, s, c in LAYERS:
        for rows in (8, 16):
            for df in ('os', 'ws', 'is'):
                for kb in (2, 4):
                    for bw in (1, 4):
                        rec = conv_record(h, f, s, c, rows, df, kb, bw)
                        if args.only and not re.search(args.only, rec['run_id']):
                            continue
                        ev, cf = cub.simulate(rec), closed_form(rec)
                        (na, np_), n = ev['_window'][0], ev['_sets'][0]
                        x = n - math.ceil((n - na) / np_) * np_ if np_ else na
                        k_ev, k_cf = ev['_misses'][0], int(cf['ifmap_slides'])
                        print(f"{'=' if k_ev == k_cf else '!'} {rec['run_id']:42s} sets {n:5d} ({na},{np_}) x={x:3d} "
                              f"ifmap slides ev {k_ev:6d} cf {k_cf:6d}  filter {ev['_misses'][1]:4d} "
                              f"{int(cf['filter_slides']):4d}  total ev {ev['total_cycles']:9d} cf {cf['total']:9.0f} "
                              f"({cf['total'] / ev['total_cycles']:.2f}x)", flush=True)


if __name__ == '__main__':
    main()
