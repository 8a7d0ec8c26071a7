"""Start-up time of the `nvmc` command line (not a timed test; run by hand).

    python benchmarks/bench_startup.py [--repeat 5] [--python PATH] [--env KEY=VALUE ...] [--no-pyc]

Runs each command below as a fresh subprocess, ``PYTHON -m nvmc ARGS`` (stdout and stderr to
a pipe, in an empty temporary folder, so that the interpreter's installed nvmc is the one
timed, not a folder that happens to be the current one), --repeat times, and prints the
median and the shortest wall time of each:

    nvmc --version
    nvmc --help
    nvmc targets
    nvmc explain --target sot-mram
    nvmc passes
    nvmc compile examples/models/tiny_cnn.onnx --target sot-mram

Each command first runs once untimed (a warm-up that also fills the .pyc cache), then once
under ``-X importtime``: "imports" is the total import time of that run (the top-level
cumulative times, the interpreter's own start-up modules included), and "heavy" lists the
heavy third-party modules it imported with their cumulative import time (nested ones are
counted in their parent too: onnx includes the ml_dtypes and numpy it imports). A command
that needs none of them should list none; wall time minus "imports" is roughly the
command's own work plus the bare interpreter start. A command that exits non-zero is
printed as "failed (exit N)" with its last stderr line, and not timed.

Bytecode: by default the subprocesses cache .pyc files under a temporary PYTHONPYCACHEPREFIX
(and PYTHONDONTWRITEBYTECODE is dropped), so the figures are those of an installed nvmc
whose .pyc files exist, and nothing is written into the source tree. --no-pyc keeps the
inherited environment as it is (with PYTHONDONTWRITEBYTECODE=1, every nvmc module is
compiled from source on every run: a little slower).

Before/after comparison: the figures depend on which nvmc the interpreter imports.
--python PATH times another interpreter (e.g. a virtual environment with an older commit
installed), and --env KEY=VALUE (repeatable; applied last) is added to the subprocesses'
environment (e.g. a PYTHONPATH entry that makes the interpreter import another checkout).
The "before" figures are this script run against a checkout of the older commit by either
route; the "after" figures are the same run with neither.

Recorded figures (2026-12-06, a 2-core machine; +-0.1 s is noise; --repeat 5, .pyc cached;
median wall seconds). before = commit 4afff3c (before the lazy imports, ml_dtypes 0.7.0);
lazy = 99e9e7f (lazy imports, ml_dtypes 0.7.0); after = eb6b9bb+ with ml_dtypes 0.6.0
(pyproject pins ml_dtypes<0.7: 0.7.0's C extension takes 0.9 s to initialise, 0.6.0's 0.1 s):

    command                                   before     lazy    after  heavy modules imported, after
    --version                                  2.111    0.262    0.223  numpy
    --help                                     2.025    0.254    0.233  numpy
    targets                                    2.082    0.408    0.270  numpy
    explain --target sot-mram                  2.224    0.417    0.339  numpy
    passes                                     2.150    0.660    0.485  networkx, numpy
    compile tiny_cnn.onnx --target sot-mram    2.036    2.245    0.700  networkx, numpy, onnx (ml_dtypes 0.01 s)

Before, every command imported onnx (1.15-1.26 s, nearly all of it ml_dtypes' C extension),
networkx, numpy and scipy. Now only compile imports onnx; numpy (0.06-0.07 s) still comes with
nvmc.cli (nvmc.ir.dataout imports it at module level), and networkx with the pass registry
(ir/graph.py). The whole script takes about 30 s after, 1.5 min before.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "examples" / "models" / "tiny_cnn.onnx"
HEAVY = ("onnx", "ml_dtypes", "onnxruntime", "numpy", "scipy", "networkx", "plotly", "dask", "pandas", "jinja2")
TIMEOUT_S = 300


def commands(model: Path) -> list[list[str]]:
    return [["--version"], ["--help"], ["targets"], ["explain", "--target", "sot-mram"], ["passes"],
            ["compile", str(model), "--target", "sot-mram"]]


def parse_importtime(stderr: str) -> tuple[float, dict[str, float]]:
    """Total import seconds (top-level cumulative times) and {heavy module: cumulative seconds}."""
    total, heavy = 0.0, {}
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:"):].split("|")
        if len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the header line
        cumulative = int(parts[1]) / 1e6
        name = parts[2][1:] if parts[2].startswith(" ") else parts[2]
        if not name.startswith(" "):
            total += cumulative
        name = name.strip()
        if name in HEAVY and name not in heavy:
            heavy[name] = cumulative
    return total, heavy


def last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1].strip()[:100] if lines else ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--python", default=sys.executable, help="interpreter to time (default: this one)")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="add to the subprocesses' environment (repeatable)")
    ap.add_argument("--no-pyc", action="store_true",
                    help="no temporary bytecode cache: keep the inherited PYTHONDONTWRITEBYTECODE")
    ap.add_argument("--model", type=Path, default=MODEL)
    args = ap.parse_args()
    extra = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            ap.error(f"--env wants KEY=VALUE, got {item!r}")
        extra[key] = value
    if not args.model.exists():
        ap.error(f"no model at {args.model}")

    with tempfile.TemporaryDirectory() as cwd:
        env = dict(os.environ)
        if not args.no_pyc:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(cwd) / "pycache")
        env.update(extra)
        pyc = "off" if env.get("PYTHONDONTWRITEBYTECODE") else "on" + ("" if args.no_pyc else " (temporary prefix)")
        print(f"nvmc start-up, {args.python} -m nvmc, median and min of {args.repeat} runs, .pyc cache {pyc}"
              + (f", env {' '.join(args.env)}" if args.env else ""))
        print(f"  {'command':<40} {'median':>8} {'min':>8} {'imports':>8}  heavy (cumulative import)")
        for argv in commands(args.model.resolve()):
            shown = " ".join(Path(a).name if a.endswith(".onnx") else a for a in argv)
            print(f"  {shown:<40} {measure([args.python, '-m', 'nvmc', *argv], cwd, env, args.repeat)}", flush=True)


def measure(cmd: list[str], cwd: str, env: dict[str, str], repeat: int) -> str:
    """One table row after the command's name: the figures, or why there are none."""

    def run(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([cmd[0], *flags, *cmd[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=TIMEOUT_S)

    try:
        warm = run()  # fills the .pyc cache, so that the probe does not count compiling
        probe = run("-X", "importtime") if warm.returncode == 0 else warm
        results = [warm, probe]
        times = []
        while probe.returncode == 0 and len(times) < repeat:
            start = time.perf_counter()
            results.append(run())
            times.append(time.perf_counter() - start)
            if results[-1].returncode != 0:
                break
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"failed ({type(e).__name__}: {e})"
    failed = next((r for r in results if r.returncode != 0), None)
    if failed is not None:
        why = last_line(failed.stderr)
        return f"failed (exit {failed.returncode})" + (f": {why}" if why else "")
    imports, heavy = parse_importtime(probe.stderr)
    listed = ", ".join(f"{m} {s:.2f}s" for m, s in sorted(heavy.items(), key=lambda kv: -kv[1])) or "-"
    return f"{statistics.median(times):7.3f}s {min(times):7.3f}s {imports:7.3f}s  {listed}"


if __name__ == "__main__":
    main()
