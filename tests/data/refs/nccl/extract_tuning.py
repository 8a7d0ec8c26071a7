#!/usr/bin/env python3
"""Read NCCL's ring all-reduce tuning model out of an NCCL git repository.

nvmc compares its ring all-reduce with NCCL's own cost model (nvmc/validate/peers.py,
tests/test_collective.py), whose two constants were transcribed by hand from
NVIDIA/nccl src/graph/tuning.cc (2019):

    baseLat[Ring][Simple]    = 8.4 us   (NCCL_BASE_LAT_S)
    hwLat[NET][Ring][Simple] = 6.6 us   (NCCL_HW_LAT_NET_S)

This script reads src/graph/tuning.cc (and src/enqueue.cc for the time formula) at the
given commit(s) with ``git show``, parses the ``baseLat`` and ``hwLat`` initializers
(whole tables, every entry with its line number), names the indices from the
``#define NCCL_ALGO_* / NCCL_PROTO_* / NCCL_HW_*`` of the same commit, quotes the source
lines that make up the ring all-reduce formula, and checks the two transcribed entries.
It writes one JSON file (default: nccl_tuning.json beside this script).

Only the standard library is used; no NCCL build is needed.

    python3 extract_tuning.py --repo /path/to/nccl(.git) [--commit 299c554d --commit aa15dfb2]
                              [--history HEAD] [--out nccl_tuning.json]

``--repo`` is a bare git directory or a checkout. Without ``--commit`` the two commits of
2019 on NCCL's master that touch src/graph/tuning.cc are read (299c554d, 2.5.6-1, which
introduces the file, and aa15dfb2, "Fix clang compilation"). ``--history REF`` adds one
row per commit reachable from REF that changes src/graph/tuning.cc, with the two entries
(the same two entries of ``baseLatencies`` / ``hwLatencies`` in the ``ncclTunerConstants``
layout, which replaced the static tables in NCCL 2.28).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

TUNING = "src/graph/tuning.cc"
ENQUEUE = "src/enqueue.cc"
DEFAULT_COMMITS = ["299c554d", "aa15dfb2"]
# what nvmc transcribed (nvmc/validate/peers.py NCCL_BASE_LAT_S / NCCL_HW_LAT_NET_S, in us)
TRANSCRIBED = {"baseLat[Ring][Simple]": 8.4, "hwLat[NET][Ring][Simple]": 6.6}

NUM = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?[fF]?")


def git(repo: str, *args: str) -> str:
    r = subprocess.run(["git", "-C", repo, *args], check=False, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def show(repo: str, commit: str, path: str) -> str | None:
    try:
        return git(repo, "show", f"{commit}:{path}")
    except RuntimeError:
        return None


def strip_comments(src: str) -> str:
    """C/C++ comments blanked (newlines kept, so offsets and line numbers stay put)."""
    out, i, n = [], 0, len(src)
    while i < n:
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(c if c == "\n" else " " for c in src[i:j]))
            i = j
        elif src[i] == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(src[i:j + 1])
            i = j + 1
        else:
            out.append(src[i])
            i += 1
    return "".join(out)


def line_of(src: str, offset: int) -> int:
    return src.count("\n", 0, offset) + 1


def parse_braces(code: str, start: int):
    """Parse a brace initializer starting at code[start] == '{'. Leaves are
    {"value": float, "text": literal, "line": n}. Returns (tree, end offset)."""
    assert code[start] == "{", code[start:start + 20]
    stack, i = [[]], start + 1
    while stack:
        c = code[i]
        if c == "{":
            stack.append([])
            i += 1
        elif c == "}":
            done = stack.pop()
            if not stack:
                return done, i + 1
            stack[-1].append(done)
            i += 1
        elif c in ", \t\r\n":
            i += 1
        else:
            m = NUM.match(code, i)
            if not m:
                raise ValueError(f"unexpected token at line {line_of(code, i)}: {code[i:i + 30]!r}")
            text = m.group(0)
            stack[-1].append({"value": float(text.rstrip("fF")), "text": text, "line": line_of(code, i)})
            i = m.end()
    raise ValueError("unbalanced braces")


def find_table(src: str, code: str, name: str):
    """The initializer of `static [const] float <name> [...] = {...};` (2019-2025 layouts), or of the
    member `.baseLatencies = {...}` / the block after a `// baseLatencies` comment inside
    ncclTunerConstantsDefaults (2.28-2.29 / 2.30+ layouts); likewise hwLat / hwLatencies."""
    m = re.search(r"static\s+(const\s+)?float\s+" + name + r"\s*\[[^=]*=", code)
    if m:
        start = code.index("{", m.end())
        layout = "static " + (m.group(1) or "") + "float " + name
    else:
        longname = {"baseLat": "baseLatencies", "hwLat": "hwLatencies"}[name]
        m = re.search(r"\." + longname + r"\s*=", code)       # 2.28-2.29: .baseLatencies = {...}
        if m:
            layout = "ncclTunerConstantsDefaults ." + longname
        else:                                                   # 2.30+: // baseLatencies\n {...}
            m = re.search(r"//\s*" + longname + r"\b", src)
            if not m:
                return None
            layout = "ncclTunerConstantsDefaults // " + longname
        start = code.index("{", m.end())
    tree, end = parse_braces(code, start)
    decl_line = line_of(src, m.start())
    return {"layout": layout, "decl_line": decl_line, "first_line": line_of(src, start),
            "last_line": line_of(src, end - 1), "tree": tree}


def index_names(repo: str, commit: str, prefix: str) -> dict[int, str]:
    """{index: NAME} from `#define <prefix>NAME <int>` anywhere under src/ at the commit."""
    try:
        out = git(repo, "grep", "-h", "-E", rf"#define[[:space:]]+{prefix}[A-Z0-9_]+[[:space:]]+[0-9]+", commit, "--", "src")
    except RuntimeError:
        return {}
    names = {}
    for line in out.splitlines():
        m = re.match(rf"\s*#define\s+{prefix}([A-Z0-9_]+)\s+(\d+)", line)
        if m and not m.group(1).startswith("NUM") and m.group(1) != "UNDEF":
            names.setdefault(int(m.group(2)), m.group(1))
    return names


def label(tree, levels: list[dict[int, str]]):
    """Nested lists -> nested dicts keyed by the index names (index as string when unnamed)."""
    if isinstance(tree, dict):
        return tree
    names = levels[0]
    return {names.get(i, str(i)): label(sub, levels[1:]) for i, sub in enumerate(tree)}


def values_only(tree):
    if isinstance(tree, dict) and "value" in tree:
        return tree["value"]
    return {k: values_only(v) for k, v in tree.items()}


def grep_lines(src: str, patterns: dict[str, str]) -> dict:
    """For each pattern, every source statement that matches it: {"lines": [first(, last)], "text"}
    (a statement that runs over several lines is quoted up to its ';')."""
    lines = src.splitlines()
    found = {}
    for key, pat in patterns.items():
        rx = re.compile(pat)
        hits = []
        for hit in (i for i, l in enumerate(lines) if rx.search(l)):
            j = hit
            while j < len(lines) - 1 and ";" not in lines[j] and j - hit < 4:
                j += 1
            hits.append({"lines": [hit + 1, j + 1] if j > hit else [hit + 1],
                         "text": "\n".join(l.rstrip() for l in lines[hit:j + 1])})
        found[key] = hits
    return found


TUNING_FORMULA = {
    "hw_is_net_across_nodes": r"hw\[a\]\s*=\s*.*nNodes\s*==\s*1.*NCCL_HW_NET",
    "nsteps": r"int\s+nsteps\s*=",
    "speed": r"int\s+speed\s*=",
    "bus_bw": r"float\s+busBw\s*=",
    "alg_bw_ratio": r"float\s+ratio\s*=",
    "alg_bw": r"bandwidths\[coll\]\[a\]\[p\]\s*=\s*busBw\s*\*\s*ratio",
    "latency_base": r"latencies\[coll\]\[a\]\[p\]\s*=\s*(baseLat|comm->tunerConstants\.baseLatencies)\[a\]\[p\]",
    "ring_hw_lat": r"float\s+lat\s*=\s*(hwLat|comm->tunerConstants\.hwLatencies)\[hw\[a\]\]\[a\]\[p\]",
    # several hits: Reduce/Broadcast's branches and the branch every other collective (all-reduce) takes
    "latency_ring_steps": r"latencies\[coll\]\[a\]\[p\]\s*\+=\s*nsteps\s*\*\s*lat",
}
ENQUEUE_FORMULA = {
    "time": r"float\s+time\s*=\s*comm->latencies\[.*\]\s*\+\s*\(?info->nBytes\)?\s*/\s*\(1000\s*\*\s*bw\)",
}


def commit_meta(repo: str, commit: str) -> dict:
    sha, date, subject = git(repo, "log", "-1", "--format=%H%x00%ad%x00%s", "--date=iso-strict", commit).strip().split("\x00")
    return {"commit": sha, "short": sha[:8], "date": date, "subject": subject,
            "tuning_cc_blob": git(repo, "rev-parse", f"{commit}:{TUNING}").strip()}


def extract(repo: str, commit: str) -> dict:
    src = show(repo, commit, TUNING)
    if src is None:
        raise SystemExit(f"{commit} has no {TUNING}")
    code = strip_comments(src)
    algos = index_names(repo, commit, "NCCL_ALGO_")
    protos = index_names(repo, commit, "NCCL_PROTO_")
    hws = index_names(repo, commit, "NCCL_HW_")
    base = find_table(src, code, "baseLat")
    hw = find_table(src, code, "hwLat")
    if base is None or hw is None:
        raise SystemExit(f"{commit}: no baseLat / hwLat table found in {TUNING}")
    base_t = label(base.pop("tree"), [algos, protos])
    hw_t = label(hw.pop("tree"), [hws, algos, protos])
    rec = commit_meta(repo, commit)
    rec["file"] = TUNING
    rec["units"] = "microseconds (C float literals; bandwidths elsewhere in GB/s)"
    rec["index_names"] = {"algorithm": algos, "protocol": protos, "hw": hws}
    rec["baseLat"] = {**base, "values": values_only(base_t)}
    rec["hwLat"] = {**hw, "values": values_only(hw_t)}

    entries = {"baseLat[Ring][Simple]": base_t["RING"]["SIMPLE"],
               "hwLat[NET][Ring][Simple]": hw_t["NET"]["RING"]["SIMPLE"]}
    lines = src.splitlines()
    rec["transcribed_check"] = {
        k: {"nvmc": TRANSCRIBED[k], "nccl": e["value"], "literal": e["text"], "line": e["line"],
            "source_line": lines[e["line"] - 1].strip(), "equal": e["value"] == TRANSCRIBED[k]}
        for k, e in entries.items()}

    enq = show(repo, commit, ENQUEUE)
    rec["formula"] = {
        "ring_allreduce": ("AllReduce, algorithm Ring, protocol Simple, nNodes > 1 (hw = NET, so every "
                           "ring step is charged the network latency): nsteps = 2 (nRanks - 1); "
                           "latency_us = baseLat[Ring][Simple] + nsteps * hwLat[NET][Ring][Simple]; "
                           "algBw_GBps = busBw * nRanks / nsteps, busBw = nChannels * speed (GB/s; speed = "
                           "speedIntra if nNodes <= 2 else speedInter; no Ring/Simple refinement); "
                           "time_us = latency_us + nBytes / (1000 * algBw_GBps). NCCL then runs the "
                           "algorithm/protocol of least time (enqueue.cc getAlgoInfo)"),
        TUNING: grep_lines(src, TUNING_FORMULA),
        ENQUEUE: grep_lines(enq, ENQUEUE_FORMULA) if enq is not None else None,
    }
    return rec


def history(repo: str, ref: str) -> list[dict]:
    rows = []
    for sha in git(repo, "log", "--format=%H", ref, "--", TUNING).split():
        row = {k: v for k, v in commit_meta(repo, sha).items() if k in ("short", "date", "subject")}
        src = show(repo, sha, TUNING)
        code = strip_comments(src)
        algos = index_names(repo, sha, "NCCL_ALGO_")
        protos = index_names(repo, sha, "NCCL_PROTO_")
        hws = index_names(repo, sha, "NCCL_HW_")
        try:
            base, hw = find_table(src, code, "baseLat"), find_table(src, code, "hwLat")
            b = label(base["tree"], [algos, protos])["RING"]["SIMPLE"]
            h = label(hw["tree"], [hws, algos, protos])["NET"]["RING"]["SIMPLE"]
            row.update({"layout": base["layout"],
                        "baseLat[Ring][Simple]": b["value"], "baseLat_line": b["line"],
                        "hwLat[NET][Ring][Simple]": h["value"], "hwLat_line": h["line"]})
        except (TypeError, KeyError, ValueError, IndexError) as e:
            row["error"] = f"tables not parsed: {e!r}"
        rows.append(row)
    return rows[::-1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", required=True, help="NCCL git directory (bare) or checkout")
    ap.add_argument("--commit", action="append", help=f"commit(s) to read (default: {' '.join(DEFAULT_COMMITS)})")
    ap.add_argument("--history", metavar="REF", help="also list the two entries at every commit on REF that changes tuning.cc")
    ap.add_argument("--out", default=str(Path(__file__).with_name("nccl_tuning.json")))
    a = ap.parse_args(argv)

    commits = a.commit or DEFAULT_COMMITS
    doc = {
        "source": "https://github.com/NVIDIA/nccl",
        "generator": "tests/data/refs/nccl/extract_tuning.py",
        "transcribed_in_nvmc": {"files": ["nvmc/validate/peers.py (NCCL_BASE_LAT_S, NCCL_HW_LAT_NET_S)",
                                          "tests/test_collective.py (test_ring_agrees_with_nccls_own_tuning_model)"],
                                "values_us": TRANSCRIBED},
        "commits": [extract(a.repo, c) for c in commits],
    }
    if a.history:
        doc["history"] = {"ref": a.history, "resolved": git(a.repo, "rev-parse", a.history).strip(),
                          "rows": history(a.repo, a.history)}
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")

    ok = True
    for rec in doc["commits"]:
        print(f"{rec['short']} {rec['date'][:10]} {rec['subject']}")
        for k, c in rec["transcribed_check"].items():
            ok &= c["equal"]
            print(f"  {k:26s} = {c['literal']:>5s} us  ({TUNING}:{c['line']})  nvmc {c['nvmc']}  "
                  f"{'equal' if c['equal'] else 'DIFFERENT'}")
        t = rec["formula"][ENQUEUE]["time"][0] if rec["formula"][ENQUEUE] and rec["formula"][ENQUEUE]["time"] else None
        print(f"  time formula: {ENQUEUE}:{t['lines'][0] if t else '?'}  {t['text'].strip() if t else 'not found'}")
    if a.history:
        print(f"history of {TUNING} on {a.history}:")
        for r in doc["history"]["rows"]:
            print(f"  {r['short']} {r['date'][:10]} {r.get('baseLat[Ring][Simple]', '-'):>5} "
                  f"{r.get('hwLat[NET][Ring][Simple]', '-'):>5}  {r['subject'][:50]}")
    print(f"wrote {a.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
