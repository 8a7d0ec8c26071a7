#!/usr/bin/env python3
"""Run ZigZag on the layers of inputs/workload_*.yaml and write zigzag_raw.json.

Run in the throwaway ZigZag venv (README.md, "Regenerate"), after ``nvmc_side.py specs``:

    /work/tmp/zigzag-venv/bin/python run_zigzag.py            # both models, both variants (~10 min, 1 core)
    /work/tmp/zigzag-venv/bin/python run_zigzag.py --variants os_pinned --models resnet18

Variants: ``os_pinned`` uses inputs/mapping_os_<model>.yaml (nvmc's output-stationary spatial
mapping, one entry per layer); ``free`` uses inputs/mapping_free.yaml (no spatial mapping:
ZigZag generates ``--spatial-mappings`` candidates and keeps the best). In both, LOMA searches
the temporal mapping (loop order and memory allocation) and keeps the best by ``--opt``.
Layers of identical shape are run once and their result is recorded under every name.
It also checks that the ResNet-18 layers equal those of ZigZag's shipped
inputs/workload/resnet18.onnx (kernel, stride, padding and shapes, layer by layer).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import yaml

logging.basicConfig(level=logging.ERROR)   # before ZigZag's api calls basicConfig(INFO), which then does nothing

import zigzag  # noqa: E402
from zigzag.api import get_hardware_performance_zigzag  # noqa: E402
from zigzag.mapping.data_movement import DataDirection  # noqa: E402

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "inputs"
ACCEL = INPUTS / "accelerator_systolic_sram_28nm.yaml"
MODELS = ("resnet18", "bert_base_layer")
VARIANTS = {"os_pinned": lambda model: INPUTS / f"mapping_os_{model}.yaml",
            "free": lambda model: INPUTS / "mapping_free.yaml"}


def signature(layer: dict) -> str:
    return json.dumps({k: v for k, v in layer.items() if k not in ("id", "name", "operand_source")}, sort_keys=True)


def cme_record(cme) -> dict:
    acc = cme.accelerator
    links = cme.memory_operand_links
    energy, accesses = {}, {}
    for layer_op, per_level in cme.mem_energy_breakdown.items():
        mem_op = links.layer_to_mem_op(layer_op)
        names = [acc.get_memory_level(mem_op, i).name for i in range(len(per_level))]
        energy[str(layer_op)] = {n: float(e) for n, e in zip(names, per_level)}
        rows = []
        for i, a in enumerate(cme.memory_word_access[layer_op]):
            level = acc.get_memory_level(mem_op, i)
            bws = [level.get_max_bandwidth(mem_op, d) for d in DataDirection]
            rows.append({"memory": level.name, "bandwidth_max_bits": max(b for b in bws if b),
                         "rd_out_to_low": float(a.get(DataDirection.RD_OUT_TO_LOW)),
                         "wr_in_by_low": float(a.get(DataDirection.WR_IN_BY_LOW)),
                         "rd_out_to_high": float(a.get(DataDirection.RD_OUT_TO_HIGH)),
                         "wr_in_by_high": float(a.get(DataDirection.WR_IN_BY_HIGH))})
        accesses[str(layer_op)] = rows
    rec = {"total_mac_count": int(cme.layer.total_mac_count),
           "spatial_mapping": str(cme.layer.spatial_mapping), "temporal_mapping": str(cme.temporal_mapping),
           "energy_total_pJ": float(cme.energy_total), "mac_energy_pJ": float(cme.mac_energy),
           "mem_energy_pJ": float(cme.mem_energy), "energy_by_memory_pJ": energy, "accesses": accesses,
           "mac_spatial_utilization": float(cme.mac_spatial_utilization)}
    for k in ("ideal_cycle", "ideal_temporal_cycle", "stall_slack_comb", "data_onloading_cycle",
              "data_offloading_cycle", "systolic_drain_cycle", "latency_total0", "latency_total1", "latency_total2"):
        rec[k] = float(getattr(cme, k))
    return rec


def run(model: str, variant: str, opt: str, lpf: int, nb_sm: int) -> tuple[dict, float]:
    layers = yaml.safe_load((INPUTS / f"workload_{model}.yaml").read_text())
    unique, first = [], {}
    for L in layers:
        sig = signature(L)
        if sig not in first:
            first[sig] = L["name"]
            unique.append(L)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        _, _, cmes = get_hardware_performance_zigzag(
            unique, str(ACCEL), str(VARIANTS[variant](model)), opt=opt, dump_folder=tmp, lpf_limit=lpf,
            nb_spatial_mappings_generated=nb_sm, loma_show_progress_bar=False)
    seconds = time.time() - t0
    by_name = {}
    for cme, _ in cmes[0][1]:
        by_name[cme.layer.name] = cme_record(cme)
    out = {}
    for L in layers:
        rec = dict(by_name[first[signature(L)]])
        rec["run_as"] = first[signature(L)]
        out[L["name"]] = rec
    print(f"{model}/{variant}: {len(unique)} unique of {len(layers)} layers in {seconds:.0f} s", flush=True)
    return out, seconds


def check_shipped_resnet18() -> dict:
    """Our ResNet-18 layers against ZigZag's own inputs/workload/resnet18.onnx (shapes only: its
    weights are an external file the wheel does not ship)."""
    import onnx
    from onnx import helper
    path = Path(zigzag.__file__).parent / "inputs" / "workload" / "resnet18.onnx"
    m = onnx.load(str(path), load_external_data=False)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(m.graph.input) + list(m.graph.value_info) + list(m.graph.output)}
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    shipped = []
    for n in m.graph.node:
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        if n.op_type == "Conv":
            k, c = inits[n.input[1]][0], inits[n.input[1]][1]
            ih, oh = shapes[n.input[0]], shapes[n.output[0]]
            shipped.append({"K": k, "C": c, "OY": oh[2], "OX": oh[3], "FY": a["kernel_shape"][0],
                            "FX": a["kernel_shape"][1], "stride": a["strides"][0], "pad": a["pads"][0], "IX": ih[3]})
        elif n.op_type == "Gemm":
            shipped.append({"N": inits[n.input[1]][0], "K": inits[n.input[1]][1]})
    ours = []
    for L in yaml.safe_load((INPUTS / "workload_resnet18.yaml").read_text()):
        s = dict(zip(L["loop_dims"], L["loop_sizes"]))
        if L["operator_type"] == "Conv":
            stride = int(L["dimension_relations"][0].split("=")[1].split("*")[0])
            ours.append({"K": s["K"], "C": s["C"], "OY": s["OY"], "OX": s["OX"], "FY": s["FY"], "FX": s["FX"],
                         "stride": stride, "pad": L["padding"][0][0], "IX": L["pr_loop_sizes"][0]})
        else:
            ours.append({"N": s["K"], "K": s["C"]})
    same = sum(a == b for a, b in zip(shipped, ours))
    return {"file": "zigzag/inputs/workload/resnet18.onnx (in the zigzag-dse wheel)",
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "layers_shipped": len(shipped),
            "layers_ours": len(ours), "identical": same, "ok": same == len(shipped) == len(ours)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--opt", default="EDP", choices=("energy", "latency", "EDP"))
    ap.add_argument("--lpf-limit", type=int, default=6)
    ap.add_argument("--spatial-mappings", type=int, default=3)
    ap.add_argument("--out", default=str(HERE / "zigzag_raw.json"))
    args = ap.parse_args(argv)
    out_path = Path(args.out)
    doc = json.loads(out_path.read_text()) if out_path.exists() else {"results": {}}
    check = check_shipped_resnet18()
    print(f"shipped resnet18.onnx check: {check['identical']}/{check['layers_shipped']} layers identical")
    if not check["ok"]:
        sys.exit("our ResNet-18 layer list differs from ZigZag's shipped resnet18.onnx")
    seconds = doc.get("meta", {}).get("seconds", {})
    for model in args.models.split(","):
        for variant in args.variants.split(","):
            res, s = run(model, variant, args.opt, args.lpf_limit, args.spatial_mappings)
            doc["results"].setdefault(model, {})[variant] = res
            seconds[f"{model}/{variant}"] = round(s, 1)
    doc["variants"] = sorted({v for m in doc["results"].values() for v in m}, key=list(VARIANTS).index)
    doc["meta"] = {
        "zigzag_dse": version("zigzag-dse"), "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"),
        "api": "zigzag.api.get_hardware_performance_zigzag", "opt": args.opt, "lpf_limit": args.lpf_limit,
        "nb_spatial_mappings_generated": args.spatial_mappings, "temporal_mapping_search_engine": "loma",
        "temporal_mapping_type": "uneven", "exploit_data_locality": False,
        "inputs_sha256": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(INPUTS.iterdir())},
        "shipped_resnet18_check": check, "seconds": seconds}
    out_path.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
