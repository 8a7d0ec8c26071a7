"""GPT-2 generation latency in onnxruntime on this machine, and the machine's own figures:
the measurement that nvmc's `cpu` target is calibrated and compared against (issue #27).

    # 1. the model, with its random weights (needs torch + transformers: a throwaway venv,
    #    see examples/models/gpt2/README.md); ~480 MB, not committed
    python examples/models/gpt2/export_gpt2.py --weighted-distil /tmp/gpt2
    # 2. the measurement (needs numpy + onnxruntime only; nvmc's venv has both)
    python benchmarks/bench_ort_generation.py --model /tmp/gpt2/distilgpt2_past.onnx

Without --model it imports the export script and writes the model into a temporary folder
(torch then has to be importable). It prints the figures and writes them as JSON
(--json, default benchmarks/data/ort_generation_cpu.json).

What it measures:

* The machine: CPU model, cores (those this process may run on), clock (what /proc/cpuinfo
  and lscpu say: under a hypervisor there is often no max clock, only the TSC rate), caches
  (sysfs), the SIMD flags (avx2, fma, avx512*, amx*).
* Memory bandwidth, STREAM-style on float64 arrays of --stream-mib each (default 4x the
  last-level cache): read (max(b), not in STREAM: the pattern of streaming weights), copy
  (a = b), scale (a = s*b), add (a = b + c), triad (a = b + s*c), on 1 thread and on every
  core (numpy on contiguous slices, one per thread; numpy drops the GIL). Scale and triad run
  in L2-sized blocks so that the temporary s*b never reaches DRAM: every kernel moves exactly
  STREAM's bytes (read 1 array; copy, scale 2; add, triad 3), counted as STREAM counts them,
  without the write-allocate read of the destination (which copy, through glibc's
  non-temporal memcpy, may not pay and the others do). Best of --stream-reps, GB/s (1e9 B/s).
* onnxruntime, CPUExecutionProvider, intra_op_num_threads = the core count, graph
  optimisations at onnxruntime's default (ORT_ENABLE_ALL), batch 1:
  - prefill: input_ids[1,P], attention_mask[1,P], past tensors [1,heads,0,head_dim];
  - decode at context C: input_ids[1,1], attention_mask[1,C], past [1,heads,C-1,head_dim]
    (random values), i.e. the step that produces token C+1 attending over C keys; its
    present outputs (C per layer, K and V) are allocated and written each step, as in a
    real decoder-with-past loop;
  - a real greedy loop: prefill at P, then --loop-tokens steps feeding present back as past
    (per-token first/median/last).
  Prefill and the decode steps take turns run by run (so that a slow spell of the host lands
  on all of them alike), in --blocks blocks of --runs rounds, each block after its own idle
  check and warm-up (--warmup runs each, excluded). Each figure is the median of all
  blocks' runs, with quartiles, min, max and each block's median (the drift between blocks).

The machine may be shared. Each figure records `others_cpu_fraction`, the share of all CPUs
that other processes used while it was measured (from /proc/stat less this process's own
CPU time); --wait-idle S waits (up to S seconds) before each measurement for the CPUs to be
under 25% busy, and retries one during which others took over 10% (3 tries, the quietest
kept). Medians are what to compare against.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "benchmarks" / "data" / "ort_generation_cpu.json"
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
              "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8")


# ---------------------------------------------------------------------------------- machine

def _cpuinfo() -> dict[str, str]:
    first: dict[str, str] = {}
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if not line.strip():
            break  # the first processor's block is enough
        key, _, value = line.partition(":")
        first[key.strip()] = value.strip()
    return first


def _lscpu() -> dict[str, str]:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {k.strip(): v.strip() for k, _, v in (l.partition(":") for l in out.splitlines()) if v}


def _caches() -> list[dict]:
    caches = []
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        read = {f.name: f.read_text().strip() for f in index.iterdir() if f.is_file()}
        caches.append({"level": int(read["level"]), "type": read.get("type"), "size": read.get("size"),
                       "shared_cpu_list": read.get("shared_cpu_list")})
    return caches


def _size_bytes(text: str) -> int:
    m = re.fullmatch(r"(\d+)\s*([KMG]?)", text.strip())
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def machine() -> dict:
    info, ls = _cpuinfo(), _lscpu()
    flags = set(info.get("flags", "").split())
    cpufreq = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    caches = _caches()
    llc = max(caches, key=lambda c: c["level"]) if caches else None
    meminfo = dict(l.split(":", 1) for l in Path("/proc/meminfo").read_text().splitlines())
    return {
        "cpu_model": info.get("model name"),
        "vendor": info.get("vendor_id"),
        "family_model_stepping": [int(info.get(k, -1)) for k in ("cpu family", "model", "stepping")],
        "hypervisor": ls.get("Hypervisor vendor"),
        "cores_usable": len(os.sched_getaffinity(0)),
        "cpus_online": os.cpu_count(),
        "threads_per_core": int(ls.get("Thread(s) per core", "1")),
        "clock": {
            "cpuinfo_mhz": float(info["cpu MHz"]) if "cpu MHz" in info else None,
            "bogomips": float(info["bogomips"]) if "bogomips" in info else None,
            "lscpu_max_mhz": float(ls["CPU max MHz"]) if "CPU max MHz" in ls else None,
            "cpufreq_max_khz": int(cpufreq.read_text()) if cpufreq.exists() else None,
            "note": "no max/turbo clock is exposed when lscpu_max_mhz and cpufreq_max_khz are null "
                    "(e.g. under KVM); cpuinfo_mhz is then the nominal TSC rate (bogomips / 2)",
        },
        "simd": {f: f in flags for f in SIMD_FLAGS},
        "simd_width_bits": 512 if "avx512f" in flags else 256 if "avx2" in flags else 128,
        "caches": caches,
        "llc_bytes": _size_bytes(llc["size"]) if llc else None,
        "memory_total_bytes": int(meminfo["MemTotal"].split()[0]) * 1024,
        "kernel": platform.release(),
    }


# ------------------------------------------------------------------------------ bandwidth

BLOCK = 1 << 16  # float64 elements per block: 512 KiB, well inside L2


def _scale(a, b, s):
    for i in range(0, len(a), BLOCK):
        np.multiply(b[i:i + BLOCK], s, out=a[i:i + BLOCK])


def _triad(a, b, c, s, tmp):
    for i in range(0, len(a), BLOCK):
        t = tmp[:len(a[i:i + BLOCK])]
        np.multiply(c[i:i + BLOCK], s, out=t)
        np.add(b[i:i + BLOCK], t, out=a[i:i + BLOCK])


def stream(mib: int, threads: int, reps: int) -> dict:
    """Best-of-reps GB/s of read and STREAM's four kernels on `threads` threads."""
    n = mib * (1 << 20) // 8
    a, b, c = np.zeros(n), np.full(n, 1.0), np.full(n, 2.0)  # zeros/full touch every page
    s = 3.0
    bounds = np.linspace(0, n, threads + 1).astype(int)
    parts = [slice(bounds[t], bounds[t + 1]) for t in range(threads)]
    tmps = [np.empty(BLOCK) for _ in range(threads)]
    kernels = {
        "read": (1, lambda t, p: b[p].max()),
        "copy": (2, lambda t, p: np.copyto(a[p], b[p])),
        "scale": (2, lambda t, p: _scale(a[p], b[p], s)),
        "add": (3, lambda t, p: np.add(b[p], c[p], out=a[p])),
        "triad": (3, lambda t, p: _triad(a[p], b[p], c[p], s, tmps[t])),
    }
    out = {}
    with ThreadPoolExecutor(threads) as pool:
        for name, (arrays, fn) in kernels.items():
            best = float("inf")
            for _ in range(reps):
                start = time.perf_counter()
                list(pool.map(fn, range(threads), parts))
                best = min(best, time.perf_counter() - start)
            out[name] = round(arrays * n * 8 / best / 1e9, 2)
    assert np.allclose(a[:4], b[:4] + s * c[:4])  # the last kernel (triad) really ran
    return out


def sgemm(n: int = 2048, reps: int = 5) -> dict:
    """numpy float32 matmul GFLOP/s (numpy's BLAS, its own thread count): a compute reference."""
    x = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    np.matmul(x, x)
    best = min(_timed(lambda: np.matmul(x, x)) for _ in range(reps))
    return {"n": n, "gflops": round(2 * n ** 3 / best / 1e9, 1)}


def _proc_stat() -> tuple[int, int]:
    """All CPUs' (total, busy) jiffies since boot, from /proc/stat (steal counts as busy)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), sum(fields) - fields[3] - fields[4]  # less idle and iowait


def busy_fraction(seconds: float = 1.0) -> float:
    """Fraction of all CPUs busy (any process) over `seconds`."""
    t0, b0 = _proc_stat()
    time.sleep(seconds)
    t1, b1 = _proc_stat()
    return round((b1 - b0) / max(t1 - t0, 1), 3)


def wait_idle(limit_s: float, threshold: float = 0.25) -> float:
    """Wait up to limit_s for the machine to be under `threshold` busy; the last reading."""
    deadline = time.monotonic() + limit_s
    busy = busy_fraction()
    while busy > threshold and time.monotonic() < deadline:
        busy = busy_fraction(5.0)
    return busy


def watched(fn) -> tuple[object, float]:
    """fn() and the fraction of all CPUs that *other* processes kept busy while it ran."""
    clk = os.sysconf("SC_CLK_TCK")
    own = lambda: sum(os.times()[:2])  # this process, every thread
    (t0, b0), o0 = _proc_stat(), own()
    result = fn()
    (t1, b1), o1 = _proc_stat(), own()
    others = ((b1 - b0) / clk - (o1 - o0)) / max((t1 - t0) / clk, 1e-9)
    return result, round(min(max(others, 0.0), 1.0), 3)


def quietly(fn, idle_wait: float, tries: int = 3, threshold: float = 0.1) -> tuple[object, float]:
    """Run fn after waiting (up to idle_wait s) for an idle machine; while other processes
    took more than `threshold` of the CPUs meanwhile, try again (at most `tries` times) and
    keep the quietest try. Returns (fn's result, others' CPU fraction during it)."""
    best = None
    for _ in range(tries):
        wait_idle(idle_wait)
        result, others = watched(fn)
        if best is None or others < best[1]:
            best = (result, others)
        if others <= threshold or idle_wait <= 0:
            break
    return best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- onnxruntime

def model_config(path: Path) -> dict:
    """n_layer, heads, head_dim, vocab and parameter counts, read from the graph itself."""
    proto = onnx.load(str(path), load_external_data=False)
    dims = lambda vi: [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
    past = [i for i in proto.graph.input if i.name.startswith("past_key_values.")]
    logits = next(o for o in proto.graph.output if o.name == "logits")
    _, heads, _, head_dim = dims(past[0])
    sizes = {t.name: int(np.prod(t.dims)) for t in proto.graph.initializer}
    return {
        "n_layer": len(past) // 2, "n_head": heads, "head_dim": head_dim, "n_embd": heads * head_dim,
        "vocab_size": dims(logits)[-1],
        "initializer_elements": sum(sizes.values()),
        "initializer_bytes_f32": 4 * sum(sizes.values()),
        "note": "initializers include the tied lm_head's transposed copy that the exporter "
                "writes (vocab x n_embd), as onnxruntime runs it",
        "doc_string": proto.doc_string,
        "inputs": {i.name: dims(i) for i in proto.graph.input},
        "outputs": {o.name: dims(o) for o in proto.graph.output},
    }


def _stats(times: list[float]) -> dict:
    ms = [t * 1e3 for t in times]
    q1, _, q3 = statistics.quantiles(ms, n=4) if len(ms) > 1 else (ms[0], 0, ms[0])
    return {"median_ms": round(statistics.median(ms), 3), "p25_ms": round(q1, 3), "p75_ms": round(q3, 3),
            "min_ms": round(min(ms), 3), "max_ms": round(max(ms), 3), "runs": len(ms)}


def ort_generation(path: Path, threads: int, prompt: int, contexts: list[int], runs: int,
                   blocks: int, warmup: int, loop_tokens: int, idle_wait: float) -> dict:
    cfg = model_config(path)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    past_names = [i.name for i in sess.get_inputs() if i.name.startswith("past_key_values.")]

    def feed(seq: int, past_seq: int) -> dict:
        shape = (1, cfg["n_head"], past_seq, cfg["head_dim"])
        f = {"input_ids": rng.integers(0, cfg["vocab_size"], (1, seq), dtype=np.int64),
             "attention_mask": np.ones((1, past_seq + seq), dtype=np.int64)}
        return f | {n: rng.standard_normal(shape, dtype=np.float32) for n in past_names}

    # prefill and each decode step take turns, run by run, so that a slow spell of the host
    # (other tenants, clock changes) lands on all of them alike; `blocks` blocks of `runs`
    # rounds, each block after an idle wait, each block's median kept to show the drift
    feeds = {"prefill": feed(prompt, 0)} | {c: feed(1, c - 1) for c in contexts}

    def block() -> dict:
        for f in feeds.values():
            for _ in range(warmup):
                sess.run(None, f)
        times: dict = {k: [] for k in feeds}
        for _ in range(runs):
            for k, f in feeds.items():
                times[k].append(_timed(partial(sess.run, None, f)))
        return times

    samples: dict = {k: [] for k in feeds}
    block_medians: dict = {k: [] for k in feeds}
    others_max = 0.0
    for _ in range(blocks):
        times, others = quietly(block, idle_wait)
        others_max = max(others_max, others)
        for k, t in times.items():
            samples[k] += t
            block_medians[k].append(round(statistics.median(t) * 1e3, 3))

    def figure(k) -> dict:
        return {**_stats(samples[k]), "block_medians_ms": block_medians[k], "others_cpu_fraction": others_max}

    result = {"prefill": {"prompt": prompt, **figure("prefill")},
              "decode": [{"context": c, "past_seq": c - 1, **figure(c)} for c in contexts]}

    def greedy_loop() -> list[float]:
        """A real loop: prefill, then loop_tokens steps with present fed back as past."""
        f, times = feed(prompt, 0), []
        for _ in range(loop_tokens + 1):
            start = time.perf_counter()
            out = sess.run(None, f)
            times.append(time.perf_counter() - start)
            nxt = out[0][:, -1].argmax(-1)[:, None].astype(np.int64)
            mask = np.ones((1, f["attention_mask"].shape[1] + 1), dtype=np.int64)
            f = {"input_ids": nxt, "attention_mask": mask} | dict(zip(past_names, out[1:]))
        return times

    times, others = quietly(greedy_loop, idle_wait)
    steps = [t * 1e3 for t in times[1:]]
    result["loop"] = {"prompt": prompt, "tokens": loop_tokens, "prefill_ms": round(times[0] * 1e3, 3),
                      "decode_first_ms": round(steps[0], 3), "decode_median_ms": round(statistics.median(steps), 3),
                      "decode_last_ms": round(steps[-1], 3),
                      "tokens_per_s": round(len(steps) / (sum(steps) / 1e3), 2), "others_cpu_fraction": others}
    return {"config": cfg, "session": {
        "provider": "CPUExecutionProvider", "intra_op_num_threads": threads,
        "graph_optimization_level": str(so.graph_optimization_level)}, **result}


# ---------------------------------------------------------------------------------- main

def export_model(folder: Path) -> Path:
    sys.path.insert(0, str(ROOT / "examples" / "models" / "gpt2"))
    import export_gpt2  # needs torch + transformers

    model = export_gpt2.make_model(export_gpt2.DISTILGPT2)
    path = folder / "distilgpt2_past.onnx"
    export_gpt2.export(model, path, with_past=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, help="a decoder-with-past GPT-2 ONNX file (default: export one)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--prompt", type=int, default=128)
    ap.add_argument("--contexts", default="128,256,512")
    ap.add_argument("--runs", type=int, default=20, help="timed rounds per block")
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--loop-tokens", type=int, default=64)
    ap.add_argument("--stream-mib", type=int, help="MiB per STREAM array (default 4x LLC, >= 256)")
    ap.add_argument("--stream-reps", type=int, default=5)
    ap.add_argument("--wait-idle", type=float, default=0, metavar="S",
                    help="before each measurement wait up to S seconds for the CPUs to be under 25%% "
                         "busy, and retry (3 tries) one during which others took over 10%%")
    a = ap.parse_args()

    load_before = os.getloadavg()
    mach = machine()
    cores = mach["cores_usable"]
    mib = a.stream_mib or max(256, 4 * (mach["llc_bytes"] or 0) >> 20)
    print(f"machine: {mach['cpu_model']}, {cores} cores, {mach['clock']['cpuinfo_mhz']} MHz, "
          f"SIMD {mach['simd_width_bits']} bit ({', '.join(k for k, v in mach['simd'].items() if v)}), "
          f"LLC {mach['llc_bytes'] >> 20} MiB")
    bandwidth = {"array_mib": mib, "reps": a.stream_reps, "unit": "GB/s (1e9 B/s), STREAM byte counts"}
    for t in sorted({1, cores}):
        bandwidth[f"threads_{t}"], others = quietly(partial(stream, mib, t, a.stream_reps), a.wait_idle)
        bandwidth[f"threads_{t}"]["others_cpu_fraction"] = others
    for k in ("threads_1", f"threads_{cores}"):
        print(f"stream {k}: " + ", ".join(f"{n} {v} GB/s" for n, v in bandwidth[k].items()
                                         if n != "others_cpu_fraction"))
    compute = {"numpy_sgemm": quietly(sgemm, a.wait_idle)[0]}
    print(f"numpy sgemm {compute['numpy_sgemm']['n']}^3: {compute['numpy_sgemm']['gflops']} GFLOP/s")

    with tempfile.TemporaryDirectory() as tmp:
        path = a.model or export_model(Path(tmp))
        gen = ort_generation(path, cores, a.prompt, [int(c) for c in a.contexts.split(",")],
                             a.runs, a.blocks, a.warmup, a.loop_tokens, a.wait_idle)
    pre = gen["prefill"]
    print(f"onnxruntime prefill prompt={a.prompt}: {pre['median_ms']} ms (median of {pre['runs']}; "
          f"block medians {pre['block_medians_ms']})")
    for d in gen["decode"]:
        print(f"onnxruntime decode context={d['context']}: {d['median_ms']} ms/token "
              f"(block medians {d['block_medians_ms']})")
    lp = gen["loop"]
    print(f"greedy loop prompt={lp['prompt']} +{lp['tokens']} tokens: first {lp['decode_first_ms']}, median "
          f"{lp['decode_median_ms']}, last {lp['decode_last_ms']} ms/token, {lp['tokens_per_s']} tokens/s")

    record = {
        "schema": "nvmc.bench.ort_generation/1",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python benchmarks/bench_ort_generation.py " + " ".join(sys.argv[1:]),
        "model_file": Path(path).name,
        "machine": mach,
        "memory_bandwidth": bandwidth,
        "compute": compute,
        "onnxruntime": gen,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "onnxruntime": ort.__version__, "onnx": onnx.__version__},
        "other_load": {"note": "others_cpu_fraction (per figure): the share of all CPUs that other "
                               "processes used while it was measured",
                       "load_average_before": [round(x, 2) for x in load_before],
                       "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                           "OPENBLAS_NUM_THREADS") if k in os.environ},
    }
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
