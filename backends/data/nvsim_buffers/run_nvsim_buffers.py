#!/usr/bin/env python3
"""Run NVSim on the systolic-buffer configs (on-chip RAMs) and tabulate the results.

Usage:
    python3 run_nvsim_buffers.py /path/to/nvsim [--jobs N] [--parse-only]

* Writes one config per (technology, device roadmap, word width, capacity) into
  ``configs/`` (BUF_<TECH>_<ROADMAP>_<KB>KB_<BITS>b.cfg), runs it with the given NVSim
  binary in ``configs/`` (the cell files are there) and keeps NVSim's stdout as
  ``raw/<config stem>.txt``.
* Parses the raw outputs and writes ``buffer_tables.csv`` (SI-prefixed columns as in
  ../nvsim/llc_tables.csv: mm^2, ns, nJ, mW). A configuration NVSim cannot organise is
  left out of the table (listed at the end of the run).
* ``--parse-only`` re-parses ``raw/`` without running NVSim.

The script neither downloads nor builds NVSim (see README.md for commit and build).
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
CSV_OUT = os.path.join(HERE, "buffer_tables.csv")

TECHS = {  # config token -> (table label, cell file)
    "SRAM": ("SRAM", "SRAM.cell"),
    "STT": ("STT-MRAM", "sample_STTRAM.cell"),
    "SOT": ("SOT-MRAM", "SOTRAM_vp1.cell"),
    "VGSOT": ("VGSOT-MRAM", "VGSOT_derived.cell"),
}
ROADMAPS = ["LOP", "LSTP"]
NODE_NM = 28
CAPS_KB = [8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192]
WORD_BITS = [64, 256, 1024]
COLUMNS = ["technology", "roadmap", "capacity_bytes", "node_nm", "word_bytes", "area_mm2", "read_latency_ns",
           "write_latency_ns", "read_energy_nj", "write_energy_nj", "leakage_mw", "cell_file", "config_file"]

TEMPLATE = """# nvmc systolic buffer: NVSim @6334d00 RAM, {label}, {cell} (see README.md)
-DesignTarget: RAM
-OptimizationTarget: ReadEDP
-EnablePruning: Yes
-ProcessNode: {node}
-Capacity (KB): {kb}
-WordWidth (bit): {bits}
-DeviceRoadmap: {roadmap}
-LocalWireType: LocalAggressive
-LocalWireRepeaterType: RepeatedNone
-LocalWireUseLowSwing: No
-GlobalWireType: GlobalAggressive
-GlobalWireRepeaterType: RepeatedNone
-GlobalWireUseLowSwing: No
-Routing: H-tree
-InternalSensing: true
-MemoryCellInputFile: {cell}
-Temperature (K): 350
-BufferDesignOptimization: latency
-UseCactiAssumption: Yes
"""

_SCALE = {"ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6, "pJ": 1e-3, "nJ": 1.0, "uJ": 1e3, "mJ": 1e6,
          "pW": 1e-9, "nW": 1e-6, "uW": 1e-3, "mW": 1.0, "W": 1e3}
_FIELDS = {  # output line -> csv column
    "read_latency_ns": r"^ -  Read Latency = ([0-9.eE+-]+)(ps|ns|us|ms)",
    "write_latency_ns": r"^ - Write Latency = ([0-9.eE+-]+)(ps|ns|us|ms)",
    "read_energy_nj": r"^ -  Read Dynamic Energy = ([0-9.eE+-]+)(pJ|nJ|uJ|mJ)",
    "write_energy_nj": r"^ - Write Dynamic Energy = ([0-9.eE+-]+)(pJ|nJ|uJ|mJ)",
    "leakage_mw": r"^ - Leakage Power = ([0-9.eE+-]+)(pW|nW|uW|mW|W)\b",
}
_AREA = re.compile(r"^ - Total Area = .* = ([0-9.eE+-]+)(um|mm)\^2", re.M)


def configs():
    for tech, (label, cell) in TECHS.items():
        for roadmap in ROADMAPS:
            for bits in WORD_BITS:
                for kb in CAPS_KB:
                    name = f"BUF_{tech}_{roadmap}_{kb}KB_{bits}b.cfg"
                    yield name, dict(tech=tech, label=label, cell=cell, roadmap=roadmap, bits=bits, kb=kb)


def write_configs():
    for name, c in configs():
        with open(os.path.join(CFG_DIR, name), "w") as f:
            f.write(TEMPLATE.format(node=NODE_NM, **c))


def run_one(nvsim, name):
    with open(os.path.join(RAW_DIR, name[:-4] + ".txt"), "w") as out:
        rc = subprocess.call([nvsim, name], cwd=CFG_DIR, stdout=out, stderr=subprocess.STDOUT)
    return name, rc


def parse(text):
    """The RAM's figures from NVSim's stdout, or None when NVSim found no design."""
    if "RESULT" not in text:
        return None
    result = text[text.index("RESULT"):]
    row = {}
    m = _AREA.search(result)
    if not m:
        return None
    row["area_mm2"] = float(m.group(1)) * (1e-6 if m.group(2) == "um" else 1.0)
    for col, pattern in _FIELDS.items():
        m = re.search(pattern, result, re.M)
        if not m:
            return None
        row[col] = float(m.group(1)) * _SCALE[m.group(2)]
    return row


def tabulate():
    rows, missing = [], []
    for name, c in configs():
        path = os.path.join(RAW_DIR, name[:-4] + ".txt")
        row = parse(open(path).read()) if os.path.exists(path) else None
        if row is None:
            missing.append(name)
            continue
        rows.append(dict(technology=c["label"], roadmap=c["roadmap"], capacity_bytes=c["kb"] * 1024,
                         node_nm=NODE_NM, word_bytes=c["bits"] // 8, cell_file="configs/" + c["cell"],
                         config_file="configs/" + name,
                         **{k: f"{v:.6g}" for k, v in row.items()}))
    with open(CSV_OUT, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return rows, missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nvsim", nargs="?")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--parse-only", action="store_true")
    args = ap.parse_args()
    if not args.parse_only:
        if not args.nvsim:
            sys.exit("give the path to an NVSim binary (or --parse-only)")
        write_configs()
        os.makedirs(RAW_DIR, exist_ok=True)
        names = [n for n, _ in configs()]
        with cf.ThreadPoolExecutor(args.jobs) as ex:
            for i, (name, rc) in enumerate(ex.map(lambda n: run_one(os.path.abspath(args.nvsim), n), names), 1):
                print(f"[{i}/{len(names)}] {name} rc={rc}", flush=True)
    rows, missing = tabulate()
    print(f"{len(rows)} rows -> {CSV_OUT}")
    for name in missing:
        print(f"no design: {name}")


if __name__ == "__main__":
    main()
