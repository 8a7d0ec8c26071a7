#!/usr/bin/env python3
"""Parse pim_ops' stdout (pimeval_raw.txt) into pimeval_refs.json and check it against the
constants tests/test_dram_pim.py records (PIMEVAL_MS, PIMEVAL_ROW_NS, and the xor.bool runtime
its comment quotes). Called by run_pimeval.sh; standard library only."""
from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
from pathlib import Path

ELEMENTS = 262144
CASES = {"add.int8": ("add", 8), "mul.int8": ("mul", 8), "add.int32": ("add", 32),
         "mul.int32": ("mul", 32), "xor.bool": ("xor", 1)}
CMD_ROW = re.compile(r"^\s*(\S+)\s*:\s*(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


def read_kv(path: Path) -> dict:
    """key = value lines (PIMeval's config syntax: '; ' starts a comment)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split(";")[0].strip()
        if "=" in line and not line.startswith("["):
            k, v = (s.strip() for s in line.split("=", 1))
            out[k] = v
    return out


def recorded(test_file: Path) -> dict:
    src = test_file.read_text()
    consts = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name) and t.id in ("PIMEVAL_MS", "PIMEVAL_ROW_NS"):
                    consts[t.id] = ast.literal_eval(node.value)
    m = re.search(r"xor\.bool\s+([\d.]+)", src)      # quoted in the comment above PIMEVAL_MS only
    return {"ms": {f"{op}.{'int' + str(b) if b > 1 else 'bool'}": v for (op, b), v in consts["PIMEVAL_MS"].items()},
            "xor.bool_comment_ms": float(m.group(1)) if m else None,
            "row_ns": consts["PIMEVAL_ROW_NS"]}


def blocks(raw: str) -> dict:
    out = {}
    for m in re.finditer(r"^@@CASE (\S+)\n(.*?)^@@END \1\n(?:@@CHECK \1 mismatches=(\d+))?", raw, re.DOTALL | re.MULTILINE):
        out[m.group(1)] = (m.group(2), None if m.group(3) is None else int(m.group(3)))
    return out


def section(text: str, title: str) -> list[str]:
    lines = text.splitlines()
    i = next(i for i, l in enumerate(lines) if l.startswith(title))
    j = next((k for k in range(i + 1, len(lines)) if not lines[k].startswith(" ")), len(lines))
    return lines[i:j]


def params(lines: list[str]) -> dict:
    p = {}
    for l in lines[1:]:
        k, v = (s.strip() for s in l.split(":", 1))
        p[k] = v
    return p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for a in ("--raw", "--cfg", "--memcfg", "--recorded", "--commit", "--compiler", "--out"):
        ap.add_argument(a, required=True)
    a = ap.parse_args(argv)

    raw = Path(a.raw).read_text()
    got = blocks(raw)
    missing = [c for c in CASES if c not in got]
    if missing:
        print(f"parse_pimeval: no stats block for {missing}", file=sys.stderr)
        return 2

    cases, params_excerpt, dev = {}, None, None
    for name, (text, mismatches) in got.items():
        pl = section(text, "PIM Params:")
        if params_excerpt is None:
            params_excerpt, dev = pl, params(pl)
        elif pl != params_excerpt:
            print(f"parse_pimeval: PIM Params differ in {name}", file=sys.stderr)
            return 2
        cl = section(text, "PIM Command Stats:")
        rows = [CMD_ROW.match(l) for l in cl[2:]]
        cmd = [r for r in rows if r and not r.group(1).startswith("TOTAL")]
        if len(cmd) != 1:
            print(f"parse_pimeval: {name}: expected one PIM command, got {len(cmd)}", file=sys.stderr)
            return 2
        r = cmd[0]
        cases[name] = {"pim_cmd": r.group(1), "count": int(r.group(2)), "runtime_ms": float(r.group(3)),
                       "energy_mj": float(r.group(4)), "gops_per_w": float(r.group(5)),
                       "pct_read": float(r.group(6)), "pct_write": float(r.group(7)), "pct_logic": float(r.group(8)),
                       "host_check_mismatches": mismatches, "stats_excerpt": cl}

    rec = recorded(Path(a.recorded))
    checks = []
    for name in CASES:
        want = rec["ms"].get(name, rec["xor.bool_comment_ms"] if name == "xor.bool" else None)
        src = "PIMEVAL_MS" if name in rec["ms"] else "comment above PIMEVAL_MS"
        if want is not None:
            checks.append({"figure": f"{name} runtime (ms)", "recorded": want, "recorded_in": src,
                           "run": cases[name]["runtime_ms"], "equal": cases[name]["runtime_ms"] == want})
    row_ns = float(dev["Row Read (ns)"])
    checks.append({"figure": "Row Read (ns)", "recorded": rec["row_ns"], "recorded_in": "PIMEVAL_ROW_NS",
                   "run": row_ns, "equal": row_ns == rec["row_ns"]})

    memcfg = Path(a.memcfg)
    doc = {
        "peer": "PIMeval-PIMbench (UVA-LavaLab)",
        "source": "https://github.com/UVA-LavaLab/PIMeval-PIMbench",
        "commit": a.commit,
        "generator": "tests/data/refs/pimeval/run_pimeval.sh (pim_ops.cpp, pim_ops.cfg, parse_pimeval.py)",
        "compiler": a.compiler,
        "build": {"libpimeval": "make -C libpimeval perf  (g++ -Wall -Wextra -std=c++17 -O3 -Wno-unused-parameter "
                                "-DPIM_SIM_TARGET=PIM_DEVICE_NONE; ar rcs lib/libpimeval.a)",
                  "driver": "g++ -std=c++17 -O3 -Wall -I<PIMeval>/libpimeval/src pim_ops.cpp "
                            "-L<PIMeval>/libpimeval/lib -lpimeval"},
        "sim_config": read_kv(Path(a.cfg)),
        "memory_config": {"file": "configs/taco/" + memcfg.name,
                          "sha256": hashlib.sha256(memcfg.read_bytes()).hexdigest(),
                          "timing": {k: v for k, v in read_kv(memcfg).items() if k in ("tCK", "tRCD", "tRAS", "tRP", "tCCD_S", "tCCD_L")}},
        "elements_per_object": ELEMENTS,
        "device": {"cores": int(dev["Number of PIM Cores"]), "rows_per_core": int(dev["Number of Rows per Core"]),
                   "cols_per_core": int(dev["Number of Cols per Core"]),
                   "row_read_ns": row_ns, "row_write_ns": float(dev["Row Write (ns)"]), "tccd_ns": float(dev["tCCD (ns)"]),
                   "typical_rank_bw": dev["Typical Rank BW"]},
        "params_excerpt": params_excerpt,
        "cases": cases,
        "recorded": {"file": "tests/test_dram_pim.py", **rec},
        "check": checks,
        "all_equal": all(c["equal"] for c in checks),
    }
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")

    for c in checks:
        print(f"{c['figure']:26s} run {c['run']:<10g} recorded {c['recorded']:<10g} {'equal' if c['equal'] else 'DIFFERENT'}")
    bad = {n: c["host_check_mismatches"] for n, c in cases.items() if c["host_check_mismatches"]}
    if bad:
        print(f"functional results wrong: {bad}")
    print(f"wrote {a.out}")
    return 0 if doc["all_equal"] and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
