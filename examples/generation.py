"""Text generation on memory-centric hardware: where decode time and energy go, and why.

    python examples/generation.py [--model PATH] [--prompt 512] [--tokens 512]

A GPT-2-class decoder with past (default: the committed distilgpt2-shape export,
examples/models/gpt2/distilgpt2_shape_past.onnx, 6 layers x 768, 50257-token vocabulary) generates
``--tokens`` tokens after a ``--prompt``-token prompt. Printed, from `nvmc.generate`:

1. UPMEM against the GPU (paper 5's pairing, on decode instead of one GEMV), fp32 and int8
   (``quantize``): per-token latency and energy, and what bounds each: the GPU streams every
   weight from DRAM for every token; UPMEM keeps weights (and the KV cache) in the DPUs' MRAM
   but sends each layer's activations through the host and computes on in-order DPU pipelines.
2. UPMEM with the KV cache resident in MRAM against sent from the host at every step
   (``mapping.kv_cache``), at the end of the context, where the cache is largest.
3. The GPU with an SRAM, STT- or SOT-MRAM L2 (gpu-llc): how the L2 technology changes decode energy.

Every figure is computed now; none is a paper's. The energies of different families cover
different parts (the comparison lines say which).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nvmc

HERE = Path(__file__).resolve().parent
INT8 = "quantize{bits=8,measure=false,samples=1}"


def per_token(r) -> str:
    s = r.summary()
    return (f"{s['per_token_latency_s']['median'] * 1e3:8.3f} ms/token  {s['decode_j_per_token'] * 1e3:9.3f} mJ/token  "
            f"decode bound by " + ", ".join(f"{k} {100 * v:.0f} %" for k, v in sorted(
                s["decode_bound_by"].items(), key=lambda kv: -kv[1])[:2] if v >= 0.005))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=HERE / "models" / "gpt2" / "distilgpt2_shape_past.onnx")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--tokens", type=int, default=512)
    args = ap.parse_args(argv)
    run = dict(prompt=args.prompt, tokens=args.tokens, samples=5)

    print(f"{args.model.name}: {args.prompt}-token prompt, {args.tokens} tokens")
    print("\n1. UPMEM vs GPU")
    for label, passes in (("fp32", None), ("int8", INT8)):
        g = nvmc.generate(args.model, ["gpu", "upmem"], passes=passes, **run)
        for r in g.results:
            print(f"  {label} {r.target:6s} {per_token(r)}")
        for line in g.comparison():
            print(f"  {label}: {line}")

    print("\n2. UPMEM, KV cache resident in MRAM vs sent by the host every step (int8)")
    last = {}
    for kv in ("resident", "stream"):
        g = nvmc.generate(args.model, "upmem", passes=INT8, sets=[f"mapping.kv_cache={kv}"], **run)
        last[kv] = g.results[0].per_token_latency_s[-1]
        print(f"  {kv:8s} {per_token(g.results[0])}; last token {last[kv] * 1e3:.3f} ms")
    print(f"  streaming the cache costs {100 * (last['stream'] / last['resident'] - 1):.1f} % more time at the last token "
          f"(cache {g.kv_bytes_total / 2**20:.1f} MiB)")

    print("\n3. The GPU's L2 technology (gpu-llc; energy of the L2, DRAM transfers and arithmetic)")
    g = nvmc.generate(args.model, ["sram", "stt-mram", "sot-mram"], **run)
    for r in g.results:
        print(f"  {r.target:9s} {per_token(r)}")
    for line in g.comparison():
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
