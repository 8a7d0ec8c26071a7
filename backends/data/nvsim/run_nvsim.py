#!/usr/bin/env python3
"""Run NVSim on the nvmc L2 (last-level cache) configs and tabulate the results.

Usage:
    python3 run_nvsim.py /path/to/nvsim [--jobs N] [--parse-only]

* Runs every ``configs/L2_*.cfg`` with the given NVSim binary (working directory
  ``configs/`` so that the relative ``-MemoryCellInputFile`` paths resolve) and
  stores NVSim's stdout as ``raw/<config stem>.txt``.
* Parses the raw outputs and writes ``llc_tables.csv``.
* ``--parse-only`` skips running NVSim and only re-parses the files in ``raw/``.

The script neither downloads nor builds NVSim; pass a binary you built yourself
(see README.md for the commit and build flags used for the checked-in tables).

Non-power-of-two capacities (3, 6, 12, 24 MB) cannot be expressed in NVSim (its
bank/mat/subarray counts are powers of two; it aborts with "DATA capacity
violation").  They are composed of three identical slices of 1/2/4/8 MB: area
and leakage are 3x one slice, per-access latency and energy are those of one
slice (an access goes to one slice; no inter-slice interconnect is modelled).
Such rows carry ``config_file = "3x:<slice config>"``.
"""
import argparse
import concurrent.futures as cf
import csv
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CFG_DIR = os.path.join(HERE, "configs")
RAW_DIR = os.path.join(HERE, "raw")
CSV_OUT = os.path.join(HERE, "llc_tables.csv")

# config-name token -> technology label written to the table
TECH_LABEL = {
    "SRAM": "SRAM",
    "STT": "STT-MRAM",                 # sample_STTRAM.cell @6334d00, 54 F^2
    "SOT": "SOT-MRAM",                 # SOTRAM_vp1.cell @713fc0d, 81.5 F^2
    "STT57": "STT-MRAM_57.5F2",        # sample_STTRAM.cell @4bc8fbb (variant)
    "SOT60": "SOT-MRAM_60.61F2",       # SOTRAM_vp1.cell @0dfd1d1 (variant)
    "VGSOT": "VGSOT-MRAM",             # VGSOT_derived.cell, 48.7 F^2 (derived, ../nvsim_buffers/README.md)
}
TECH_ORDER = ["SRAM", "STT", "SOT", "STT57", "SOT60", "VGSOT"]
COMPOSED = {3: 1, 6: 2, 12: 4, 24: 8}   # capacity MB -> slice MB (3 slices)
CAPS_MB = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32]

COLUMNS = ["technology", "capacity_bytes", "node_nm", "assoc", "line_bytes",
           "area_mm2", "read_latency_ns", "write_latency_ns", "read_energy_nj",
           "write_energy_nj", "leakage_mw", "cell_file", "config_file"]

CFG_RE = re.compile(r"^L2_(?P<tech>[A-Za-z0-9]+)_(?P<cap>\d+)MB_(?P<line>\d+)B\.cfg$")

_SCALE = {  # to ns / nJ / mW / mm
    "ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6,
    "pJ": 1e-3, "nJ": 1.0, "uJ": 1e3, "mJ": 1e6,
    "pW": 1e-9, "nW": 1e-6, "uW": 1e-3, "mW": 1.0, "W": 1e3,
    "nm": 1e-6, "um": 1e-3, "mm": 1.0, "m": 1e3,
}
_NUM = r"([0-9.eE+-]+)\s*(ps|ns|us|ms|pJ|nJ|uJ|mJ|pW|nW|uW|mW|W|nm|um|mm|m)\b"


def read_cfg(path):
    """Return the '-Key: value' settings of an NVSim config as a dict."""
    out = {}
    with open(path) as f:
        for line in f:
            if line.startswith("-") and ":" in line:
                k, v = line[1:].split(":", 1)
                out[k.strip()] = v.strip()
    return out


def run_one(nvsim, cfg_name):
    raw_path = os.path.join(RAW_DIR, cfg_name[:-4] + ".txt")
    with open(raw_path, "w") as out:
        rc = subprocess.call([nvsim, cfg_name], cwd=CFG_DIR, stdout=out,
                             stderr=subprocess.STDOUT)
    return cfg_name, rc


def _val(text, label):
    """First '<label> = <number><unit>' in text, converted to ns/nJ/mW/mm."""
    m = re.search(re.escape(label) + r"\s*=\s*" + _NUM, text)
    if not m:
        raise ValueError("cannot find %r" % label)
    return float(m.group(1)) * _SCALE[m.group(2)]


def _summary_val(text, label):
    m = re.search(re.escape(label) + r"\s*=\s*([0-9.eE+-]+)", text)
    if not m:
        raise ValueError("cannot find %r" % label)
    return float(m.group(1))


def parse_raw(path):
    """Parse one NVSim cache output (any access mode).

    Area and dynamic energies are recomputed from the per-array sections (more
    digits than the 3-decimal summary) with NVSim's own formulas from
    Result.cpp; everything is checked against the printed summary.  Latencies
    and leakage are the printed summary values.
    """
    with open(path) as f:
        text = f.read()
    if "CACHE DESIGN -- SUMMARY" not in text:
        raise ValueError("%s: no cache summary (NVSim failed?)" % path)
    summary, rest = text.split("CACHE DESIGN -- SUMMARY", 1)[1].split("CACHE DATA ARRAY", 1)
    data, tag = rest.split("CACHE TAG ARRAY", 1)
    mode = re.search(r"Access Mode:\s*(\w+)", summary).group(1)

    def dims(label):
        m = re.search(re.escape(label) + r"\s*=\s*" + _NUM + r"\s*x\s*" + _NUM, summary)
        return (float(m.group(1)) * _SCALE[m.group(2)]) * (float(m.group(3)) * _SCALE[m.group(4)])

    area = dims("Data Array Area") + dims("Tag Array Area")          # mm^2
    d_rl, d_wl = _val(data, "Read Latency"), _val(data, "Write Latency")
    t_rl, t_wl = _val(tag, "Read Latency"), _val(tag, "Write Latency")
    d_re, d_we = _val(data, "Read Dynamic Energy"), _val(data, "Write Dynamic Energy")
    t_re, t_we = _val(tag, "Read Dynamic Energy"), _val(tag, "Write Dynamic Energy")
    # per-array leakage is printed in W above 1 W (3 decimals); the summary
    # prints it in mW with 3 decimals, so take the summary value
    leak = _summary_val(summary, "Cache Total Leakage Power")         # mW
    if mode != "Sequential":
        raise ValueError("%s: only Sequential access mode is recomputed" % path)
    res = {
        "area_mm2": area,
        "read_latency_ns": t_rl + d_rl,          # Result.cpp, sequential: tag then data
        "write_latency_ns": max(t_wl, d_wl),     # data and tag written in parallel
        "read_energy_nj": t_re + d_re,
        "write_energy_nj": t_we + d_we,
        "leakage_mw": leak,
    }
    printed = {
        "area_mm2": _summary_val(summary, "Total Area"),
        "read_latency_ns": _summary_val(summary, "Cache Hit Latency"),
        "write_latency_ns": _summary_val(summary, "Cache Write Latency"),
        "read_energy_nj": _summary_val(summary, "Cache Hit Dynamic Energy"),
        "write_energy_nj": _summary_val(summary, "Cache Write Dynamic Energy"),
        "leakage_mw": _summary_val(summary, "Cache Total Leakage Power"),
    }
    for k, v in printed.items():   # printed with 3 decimals
        if abs(res[k] - v) > 0.0015 + 2e-4 * abs(v):
            raise ValueError("%s: %s recomputed %.6g vs printed %.6g" % (path, k, res[k], v))
    # Latencies: the summary (ns, 3 decimals, i.e. 1 ps) is at least as precise as
    # the sum of the rounded parts, so keep the printed value.  Area and energies:
    # the parts (um x um; pJ with 3 decimals) carry more digits than the summary.
    res["read_latency_ns"] = printed["read_latency_ns"]
    res["write_latency_ns"] = printed["write_latency_ns"]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("nvsim", nargs="?", help="path to the nvsim binary")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--parse-only", action="store_true",
                    help="do not run NVSim, parse raw/*.txt only")
    args = ap.parse_args()

    cfgs = sorted(f for f in os.listdir(CFG_DIR) if CFG_RE.match(f))
    if not args.parse_only:
        if not args.nvsim:
            ap.error("give the nvsim binary (or --parse-only)")
        nvsim = os.path.abspath(args.nvsim)
        os.makedirs(RAW_DIR, exist_ok=True)
        with cf.ThreadPoolExecutor(max_workers=args.jobs) as ex:
            for name, rc in ex.map(lambda c: run_one(nvsim, c), cfgs):
                print("%-32s rc=%d" % (name, rc), file=sys.stderr)

    runs = {}  # (tech, cap_mb, line) -> (row dict)
    for c in cfgs:
        m = CFG_RE.match(c)
        tech, cap, line = m.group("tech"), int(m.group("cap")), int(m.group("line"))
        s = read_cfg(os.path.join(CFG_DIR, c))
        assert int(s["Capacity (MB)"]) == cap and int(s["WordWidth (bit)"]) == 8 * line
        res = parse_raw(os.path.join(RAW_DIR, c[:-4] + ".txt"))
        row = {"technology": TECH_LABEL[tech], "capacity_bytes": cap << 20,
               "node_nm": int(s["ProcessNode"]),
               "assoc": int(s["Associativity (for cache only)"]),
               "line_bytes": line, "cell_file": "configs/" + s["MemoryCellInputFile"],
               "config_file": "configs/" + c}
        row.update(res)
        runs[(tech, cap, line)] = row

    rows = []
    lines = sorted({k[2] for k in runs}, reverse=True)
    for line in lines:
        for tech in TECH_ORDER:
            for cap in CAPS_MB:
                if (tech, cap, line) in runs:
                    rows.append(runs[(tech, cap, line)])
                elif cap in COMPOSED and (tech, COMPOSED[cap], line) in runs:
                    sl = runs[(tech, COMPOSED[cap], line)]
                    n = cap // COMPOSED[cap]
                    r = dict(sl)
                    r["capacity_bytes"] = cap << 20
                    r["area_mm2"] = n * sl["area_mm2"]
                    r["leakage_mw"] = n * sl["leakage_mw"]
                    r["config_file"] = "%dx:%s" % (n, sl["config_file"])
                    rows.append(r)

    fmt = {"area_mm2": "%.4f", "read_latency_ns": "%.4f", "write_latency_ns": "%.4f",
           "read_energy_nj": "%.5f", "write_energy_nj": "%.5f", "leakage_mw": "%.3f"}
    with open(CSV_OUT, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([fmt[c] % r[c] if c in fmt else r[c] for c in COLUMNS])
    print("wrote %s (%d rows)" % (CSV_OUT, len(rows)), file=sys.stderr)

    # SRAM : STT : SOT ratios (main cells), per line size and capacity
    print("line cap_MB | area SRAM/STT SRAM/SOT | leak SRAM/STT SRAM/SOT | "
          "readEDP SRAM/STT SRAM/SOT | writeEDP SRAM/STT SRAM/SOT")
    idx = {(r["technology"], r["capacity_bytes"], r["line_bytes"]): r for r in rows}
    for line in lines:
        for cap in CAPS_MB:
            k = lambda t: idx.get((TECH_LABEL[t], cap << 20, line))
            s, t, o = k("SRAM"), k("STT"), k("SOT")
            if not (s and t and o):
                continue
            redp = lambda r: r["read_latency_ns"] * r["read_energy_nj"]
            wedp = lambda r: r["write_latency_ns"] * r["write_energy_nj"]
            print("%4d %6d | %5.2f %5.2f | %5.2f %5.2f | %5.2f %5.2f | %6.3f %6.3f" % (
                line, cap, s["area_mm2"] / t["area_mm2"], s["area_mm2"] / o["area_mm2"],
                s["leakage_mw"] / t["leakage_mw"], s["leakage_mw"] / o["leakage_mw"],
                redp(s) / redp(t), redp(s) / redp(o), wedp(s) / wedp(t), wedp(s) / wedp(o)))


if __name__ == "__main__":
    main()
