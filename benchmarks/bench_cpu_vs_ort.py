"""nvmc's cpu roofline, calibrated to this machine, against onnxruntime measured on it (issue #27).

    python benchmarks/bench_cpu_vs_ort.py [--write-target]

Reads the measurement benchmarks/bench_ort_generation.py recorded (benchmarks/data/
ort_generation_cpu.json: the machine's cores, clock, SIMD flags, STREAM bandwidth, numpy SGEMM
rate, and onnxruntime's prefill and decode latencies of a distilgpt2-size GPT-2 with past), makes
the `cpu` roofline of that machine (benchmarks/data/cpu-this-machine.toml, each value with the
JSON field it came from; ``--write-target`` rewrites it from the JSON), costs the same model's
shape (examples/models/gpt2/distilgpt2_shape_past.onnx) at the same prefill and decode contexts
with `nvmc.generate`, and prints nvmc / measured per figure. Writes nothing else.

Only the machine's own figures are calibrated (cores, clock, vector width, bandwidth, caches);
the roofline's rules are unchanged, and its assumed per-operator overhead (2 us) and LLC share
stay: the ratio shows how far a roofline of the measured peaks is from a real runtime.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "benchmarks" / "data"
MEASURED = DATA / "ort_generation_cpu.json"
TARGET = DATA / "cpu-this-machine.toml"


def target_text(m: dict) -> str:
    """The calibrated target, from the measurement's machine section."""
    mach, bw, gemm = m["machine"], m["memory_bandwidth"], m["compute"]["numpy_sgemm"]
    cores, clock = mach["cores_usable"], mach["clock"]["cpuinfo_mhz"] * 1e6
    lanes = mach["simd_width_bits"] // 32
    per_cycle = 2 * lanes
    peak = cores * clock * per_cycle
    measured_macs = gemm["gflops"] / 2 * 1e9
    util = min(1.0, measured_macs / peak)
    src = f"benchmarks/data/ort_generation_cpu.json ({m['date'][:10]})"
    return f'''# The cpu roofline calibrated to the machine benchmarks/bench_ort_generation.py measured.
# Written by benchmarks/bench_cpu_vs_ort.py --write-target from {src}; do not edit by hand.
schema = "nvmc.target/1"
name = "cpu-this-machine"
family = "roofline"
description = "The measured {cores}-core x86 VM ({mach['cpu_model']}, {mach['simd_width_bits']}-bit SIMD): the cpu roofline at its measured peaks"

[device]
name = "xeon-e3-1275-v3"     # the cpu target's device: energies, int8/binary rates, static power (not calibrated)
kind = "cpu"
extras = "xeon-e3-1275-v3"

[compute]
cores = {{ value = {cores}, source = "{src}: machine.cores_usable" }}
clock_hz = {{ value = {clock:.6g}, source = "{src}: machine.clock.cpuinfo_mhz (the TSC rate; no turbo clock is exposed under KVM)" }}
fp32_macs_per_cycle_per_core = {{ value = {per_cycle}, assumed = "{src}: machine.simd_width_bits = {mach['simd_width_bits']} ({lanes} float32 lanes, avx512f); two FMA units per core (Intel server cores since Skylake-SP; not in the measurement)" }}
utilization = {{ value = {util:.4g}, derived = "{src}: compute.numpy_sgemm {gemm['gflops']:g} GFLOP/s = {measured_macs / 1e9:.4g} GMAC/s over the nominal peak {peak / 1e9:.4g} GMAC/s (cores x clock x MACs per cycle), at most 1: above 1 the cores ran faster than the TSC rate" }}

[memory]
bandwidth_bytes_per_s = {{ value = {bw['threads_2']['read'] * 1e9:.6g}, source = "{src}: memory_bandwidth.threads_2.read (STREAM-style read of {bw['array_mib']} MiB arrays on every core, GB/s)" }}
llc = {{ value = {mach['llc_bytes']}, source = "{src}: machine.llc_bytes (sysfs)" }}
capacity = {{ value = {mach['memory_total_bytes']}, source = "{src}: machine.memory_total_bytes" }}
'''


def compare(measured: dict) -> list[tuple[str, float, float]]:
    """(figure, onnxruntime ms, nvmc ms): the prefill, then each measured decode context (the same
    costing as nvmc validate's onnxruntime rows: nvmc.validate.peers.ort_steps)."""
    from nvmc.validate.peers import ort_steps

    ort = measured["onnxruntime"]
    pre, steps = ort_steps(ort)
    rows = [(f"prefill, {ort['prefill']['prompt']}-token prompt", ort["prefill"]["median_ms"], pre.ttft_s * 1e3)]
    rows += [(f"decode step, context {d['context']}", d["median_ms"], float(step.per_token_latency_s[1]) * 1e3)
             for d, step in steps]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write-target", action="store_true", help="rewrite the calibrated target from the JSON")
    args = ap.parse_args(argv)
    measured = json.loads(MEASURED.read_text())
    if args.write_target:
        TARGET.write_text(target_text(measured))
        print(f"wrote {TARGET.relative_to(REPO)}")
    elif TARGET.read_text() != target_text(measured):
        print(f"{TARGET.relative_to(REPO)} is stale: rerun with --write-target", file=sys.stderr)
        return 1
    print(f"distilgpt2_shape_past.onnx on cpu-this-machine (nvmc) vs onnxruntime {measured['onnxruntime']['session']['provider']} "
          f"({measured['date'][:10]}):")
    for name, ort_ms, nvmc_ms in compare(measured):
        print(f"  {name:28s} onnxruntime {ort_ms:8.2f} ms   nvmc {nvmc_ms:8.2f} ms   nvmc / measured {nvmc_ms / ort_ms:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
