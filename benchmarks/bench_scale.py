"""Scaling: generated transformer-like stacks of 1k, 10k and 100k nodes through every stage.

    python benchmarks/bench_scale.py [--sizes 1000,10000,100000] [--targets all|gpu,sram,...]

For each size a fresh child process loads the generated model and runs, in order:

* ``import``: ``nvmc.load(path, verify_graph=False)`` (read, checker, ONNX shape inference, build);
* ``verify``: ``nvmc.verify`` (structure; the ONNX type check is cached from the import);
* ``verify-types``: the ONNX type check forced (cache dropped): export + strict shape inference;
* ``canonicalize``: ``nvmc.run_passes(g, "canonicalize")`` (with the verifier after each pass);
* ``analyze``: ``nvmc.analyze`` (the per-node workload table);
* ``nvir-print`` / ``nvir-parse``: the .nvir text form out and back (checked: parse(print(g)) prints the same);
* ``backend:<target>``: ``nvmc.compile(g, target)`` for every shipped target (backends/targets/),
  ``eie`` last (it runs the model in onnxruntime to measure activation sparsity, and the memory
  onnxruntime took stays with the process); an HDC-only family refuses the model with a clear
  message: its row is the time to refuse;
* ``backends``: the sum over targets; ``end-to-end``: import + verify + canonicalize + analyze + backends.

Printed per stage and size: total seconds, µs per node and the peak resident memory of the
child during that stage (Linux: VmHWM, reset before each stage through /proc/self/clear_refs;
elsewhere the child's ru_maxrss so far), then the per-node ratio largest/smallest size
(goal: <= 1.5, i.e. linear total time) and the end-to-end time at the largest size (goal:
< 15 s for 100k nodes on 2 cores).

The model (``nvmc.validate.nets.transformer_stack``): pre-norm transformer blocks of 18 nodes
on a [seq, d] activation, their seeded weights shared by every block, so the file stays small
(~100 bytes a node).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx

from nvmc.validate.nets import transformer_stack

def shipped_targets() -> list[str]:
    import nvmc.backends

    folder = Path(nvmc.backends.__file__).parent / "targets"
    return sorted(p.stem for p in folder.glob("*.toml"))


# ------------------------------------------------------------------------- the child
def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_mb(reset_ok: bool) -> float:
    if reset_ok:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_stages(path: Path, targets: list[str], *, check: bool = True) -> dict[str, tuple[float, float]]:
    """Every stage on the model at ``path``, in order: {stage: (seconds, peak MB)}."""
    import nvmc
    from nvmc.ir import parse_text, print_graph

    out: dict[str, tuple[float, float]] = {}

    from nvmc.backends.errors import UnsupportedOpError

    cpu: dict[str, float] = {}

    def stage(name, fn, *args, **kw):
        ok = _reset_peak()
        t, c = time.perf_counter(), time.process_time()
        try:
            result = fn(*args, **kw)
        except UnsupportedOpError as e:  # a clear refusal (an HDC-only family): the time to refuse
            result, refused = None, (e.message,)
        else:
            refused = ()
        out[name] = (time.perf_counter() - t, _peak_mb(ok), *refused)
        cpu[name] = time.process_time() - c
        return result

    graph = stage("import", nvmc.load, path, verify_graph=False)
    stage("verify", nvmc.verify, graph)
    graph.analysis_cache.pop("onnx-types", None)
    stage("verify-types", nvmc.verify, graph)
    stage("canonicalize", nvmc.run_passes, graph, "canonicalize")
    workload = stage("analyze", nvmc.analyze, graph)
    text, arrays = stage("nvir-print", print_graph, graph)
    back = stage("nvir-parse", parse_text, text, sidecar=arrays)
    if check and print_graph(back)[0] != text:
        raise SystemExit("the .nvir text does not round-trip")
    del back
    for t in targets:
        compiled = stage(f"backend:{t}", nvmc.compile, graph, t)
        if compiled is None:
            continue
        est = compiled.estimate
        if check and len(est.layers()) != len(workload):
            raise SystemExit(f"{t}: {len(est.layers())} layers for {len(workload)} nodes")
    out["nodes"] = (float(len(graph)), 0.0)
    out["cpu"] = cpu  # type: ignore[assignment]  # process CPU seconds per stage (all threads)
    return out


def _child(args) -> None:
    result = run_stages(Path(args.child), args.targets.split(","))
    print(json.dumps(result))


# ------------------------------------------------------------------------ the parent
def measure(n: int, targets: list[str], folder: Path) -> dict[str, tuple[float, float]]:
    path = folder / f"scale_{n}.onnx"
    if not path.exists():
        onnx.save(transformer_stack(n), path)
    cmd = [sys.executable, __file__, "--child", str(path), "--targets", ",".join(targets)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    if done.returncode:
        raise SystemExit(f"size {n} failed:\n{done.stderr[-3000:]}")
    return {k: v if k == "cpu" else tuple(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def table(results: dict[int, dict[str, tuple[float, float]]], targets: list[str]) -> str:
    sizes = sorted(results)
    for r in results.values():  # derived rows
        back = [f"backend:{t}" for t in targets]
        r["backends"] = (sum(r[k][0] for k in back), max(r[k][1] for k in back))
        e2e = ["import", "verify", "canonicalize", "analyze", "backends"]
        r["end-to-end"] = (sum(r[k][0] for k in e2e), max(r[k][1] for k in e2e))
    stages = [k for k in results[sizes[0]] if k not in ("nodes", "cpu")]
    nodes = {n: int(results[n]["nodes"][0]) for n in sizes}
    head = f"{'stage':28s}" + "".join(f" | {nodes[n]:>7d} nodes: s    µs/node  peakMB" for n in sizes)
    lines = [head + f" | ratio {nodes[sizes[-1]]}/{nodes[sizes[0]]}", "-" * len(head)]
    for s in stages:
        row = f"{s:28s}"
        for n in sizes:
            sec, mb = results[n][s][:2]
            row += f" | {sec:13.3f} {1e6 * sec / nodes[n]:10.1f} {mb:7.0f}"
        first, last = (results[n][s][0] / nodes[n] for n in (sizes[0], sizes[-1]))
        ratio = last / first if first > 0 else float("nan")
        row += f" | {ratio:5.2f}" + ("  <-- above 1.5" if ratio > 1.5 else "")
        if len(results[sizes[0]][s]) > 2:
            row += "  (refused: unsupported op)"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--targets", default="all", help="'all' (every shipped target) or a comma list")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--repeat", type=int, default=1,
                        help="children per size; each stage's figures are the least over them (a shared machine)")
    parser.add_argument("--json", help="also write the raw results here")
    args = parser.parse_args()
    if args.child:
        return _child(args)
    targets = shipped_targets() if args.targets == "all" else args.targets.split(",")
    targets.sort(key=lambda t: t == "eie")  # onnxruntime's memory stays: the others' peaks first
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            start = time.perf_counter()
            runs = [measure(n, targets, Path(tmp)) for _ in range(max(1, args.repeat))]
            results[n] = {k: (min(r[k][0] for r in runs), min(r[k][1] for r in runs), *runs[0][k][2:])
                          for k in runs[0] if k != "cpu"}
            results[n]["cpu"] = {k: min(r["cpu"][k] for r in runs) for k in runs[0]["cpu"]}
            print(f"size {n}: child ran {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({str(k): v for k, v in results.items()}, indent=1))
    print(f"cores available: {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}")
    print(table(results, targets))
    largest = sizes[-1]
    e2e = results[largest]["end-to-end"][0]
    cpu = results[largest]["cpu"]
    e2e_cpu = sum(v for k, v in cpu.items() if k in ("import", "verify", "canonicalize", "analyze")
                  or k.startswith("backend:"))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nend to end at {int(results[largest]['nodes'][0])} nodes: {e2e:.2f} s wall, {e2e_cpu:.2f} s CPU of the "
          f"process (all its threads) (goal < 15 s for 100k nodes); load average now {load:.1f} on "
          f"{os.cpu_count()} cores: other processes slow the wall figures")


if __name__ == "__main__":
    main()
