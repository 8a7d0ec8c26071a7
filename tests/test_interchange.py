"""Spec interchange with SCALE-Sim and Timeloop (issue 26): a SCALE-Sim config as a target, a
SCALE-Sim topology as a workload, a model's layers written as a topology and as Timeloop problems.

Reference numbers (tests/data/refs/scalesim/, README.md there): SCALE-Sim 3.0.0's own per-layer
compute cycles for

* ``scalesim_refs.json`` (run_all.py) and ``acceptance_refs.json`` (run_acceptance.py): single
  layers, the upstream ResNet-18 / AlexNet topologies and one ResNet-50 topology run, all with
  the config template in ``scalesim_refs.json`` (8192 kB SRAMs, CALC: 0 stalls);
* ``exported_refs.json`` (run_exported.py): topologies nvmc itself wrote for
  examples/models/{tiny_cnn,tiny_transformer,resnet50}.onnx, run unchanged, with the configs in
  ``exported/``.

"Config + topology in -> SCALE-Sim's cycles" reads both files through nvmc (the .cfg as a target,
the .csv as a model) and compares each layer's ``array_cycles`` exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper

import nvmc
from conftest import run_nvmc
from nvmc.backends import family_module, load_target
from nvmc.backends import systolic_map as smap
from nvmc.backends.errors import TargetError
from nvmc.backends.scalesim_config import INTERFACE_KEYS, load_scalesim_config
from nvmc.frontend.scalesim_topology import ConvRow, GemmRow, conv_ifmap_extent, format_topology, read_topology
from nvmc.interchange import layers, scalesim_rows, timeloop_instance, write_timeloop_dir
from nvmc.ir.errors import NvmcError

REPO = Path(__file__).resolve().parents[1]
REFS = Path(__file__).parent / "data" / "refs" / "scalesim"
UPSTREAM = REFS / "upstream"
MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"
TEMPLATE = json.loads((REFS / "scalesim_refs.json").read_text())["config"]["config_template"]
SUITE = json.loads((REFS / "scalesim_refs.json").read_text())["records"]
ACCEPTANCE = json.loads((REFS / "acceptance_refs.json").read_text())["records"]
EXPORTED = REFS / "exported_refs.json"
SCHEMA = family_module("systolic").SCHEMA


def cfg_file(folder: Path, rows: int, cols: int, df: str, sram_kb: int = 8192, mode: str = "CALC") -> Path:
    """The config SCALE-Sim ran (the committed template of scalesim_refs.json, as run_all.py writes it)."""
    name = f"cfg_{rows}x{cols}_{df}"
    path = folder / f"{name}.cfg"
    path.write_text(TEMPLATE.format(run_name=name, rows=rows, cols=cols, sram=sram_kb, df=df)
                    .replace("InterfaceBandwidth: CALC", f"InterfaceBandwidth: {mode}"))
    return path


def cycles(model, target) -> dict[str, int]:
    est = nvmc.compile(model, target).estimate
    return {n: int(c) for n, c in zip(est.names, est.events["array_cycles"])}


def fields(path: Path) -> list[tuple]:
    return [r.fields() for r in read_topology(path).rows]


# ------------------------------------------------------------------ config -> target
def test_upstream_config_reads_as_a_systolic_target():
    t = load_scalesim_config(UPSTREAM / "scale.cfg")
    base = load_target("systolic-sram-28nm")
    assert (t.family, t.name) == ("systolic", "scale_example_run_32x32_ws")
    assert (t["array.rows"], t["array.cols"], t["array.dataflow"]) == (32, 32, "ws")
    assert [t[f"{b}_buffer.capacity"] for b in ("ifmap", "filter", "ofmap")] == [64 * 1024] * 3
    lines = (UPSTREAM / "scale.cfg").read_text().splitlines()
    for key, word in (("array.rows", "ArrayHeight"), ("array.dataflow", "Dataflow"),
                      ("filter_buffer.capacity", "FilterSramSzkB")):
        where, _, line = t.origins[key].rpartition(":")
        assert where == str(UPSTREAM / "scale.cfg") and lines[int(line) - 1].lstrip().startswith(word)
    from_cfg = {k for k, o in t.origins.items() if o.startswith(str(UPSTREAM / "scale.cfg"))}
    assert from_cfg == {"array.rows", "array.cols", "array.dataflow", "ifmap_buffer.capacity",
                        "filter_buffer.capacity", "ofmap_buffer.capacity", INTERFACE_KEYS[0]}
    for key in ("ifmap_buffer.technology", "array.node_nm", "array.device", "ifmap_buffer.word_bits"):
        assert (t[key], t.origins[key]) == (base[key], base.origins[key])   # the rest is the base's
    assert t["buffers.activations"] == "dram" and t.origins["buffers.activations"] == "SCALE-Sim convention"


def test_base_target_and_word_size():
    t = load_scalesim_config(f"{UPSTREAM / 'scale.cfg'}@systolic-sot-7nm")
    assert t["ifmap_buffer.technology"] == "sot-mram" and t["array.node_nm"] == 7
    assert "systolic-sot-7nm" in t.description
    wide = load_scalesim_config(UPSTREAM / "scale.cfg", word_bytes=2)
    assert wide["ofmap_buffer.capacity"] == 2 * 64 * 1024
    assert wide.hash != load_scalesim_config(UPSTREAM / "scale.cfg").hash  # the word size is part of the target


def test_report_says_what_came_from_the_config_and_the_base(tmp_path):
    out = nvmc.compile(MODELS / "tiny_cnn.onnx", f"{UPSTREAM / 'scale.cfg'}@systolic-stt-28nm",
                       sets=["array.dataflow=os"])
    note = next(n for n in out.estimate.notes if n.startswith("target from SCALE-Sim config scale.cfg"))
    assert "array.rows, array.cols" in note and "array.dataflow from --set" in note
    assert "from base target 'systolic-stt-28nm'" in note and "buffers.activations = dram" in note
    assert "array.dataflow, " not in note.split(" from the config")[0]   # --set, not the config
    est = nvmc.estimate(MODELS / "tiny_cnn.onnx", UPSTREAM / "scale.cfg")   # the one-target API too
    assert est.info["array"] == "32x32" and est.info["dataflow"] == "ws"
    proc = run_nvmc("explain", "--target", str(UPSTREAM / "scale.cfg"), "--json", check=True)
    params = {p["key"]: p for p in json.loads(proc.stdout)["parameters"]}
    assert params["array.rows"]["file"].endswith("scale.cfg:5") and "ArrayHeight = 32" in params["array.rows"]["note"]
    assert params["ifmap_buffer.technology"]["file"].endswith("systolic-sram-28nm.toml:17")


def test_interface_keys_are_mapped(tmp_path):
    calc = load_scalesim_config(cfg_file(tmp_path, 32, 32, "os"))
    assert calc["interface.mode"] == "calc"
    user = load_scalesim_config(cfg_file(tmp_path, 32, 32, "ws", mode="USER"))
    assert (user["interface.mode"], user["interface.bandwidth_words_per_cycle"]) == ("user", 10)
    assert load_scalesim_config(cfg_file(tmp_path, 32, 32, "ws", mode="USER"),
                                word_bytes=2)["interface.bandwidth_words_per_cycle"] == 20   # 1-byte words
    narrow = cfg_file(tmp_path, 32, 32, "is", mode="USER")
    narrow.write_text(narrow.read_text().replace("Bandwidth : 10", "Bandwidth : 4"))
    notes = nvmc.compile(MODELS / "tiny_cnn.onnx", narrow).estimate.notes
    assert any("reads the ifmap and filter from DRAM at [layout] IfmapSRAMBankBandwidth = 10" in n for n in notes)


def test_user_configs_cost_as_the_family_user_mode(tmp_path):
    """Each USER-mode run of scalesim_user_bw_refs.json: its config read as a target costs exactly
    what the same settings given by --set cost (the stall model itself is tested in
    test_systolic_bandwidth.py), and where SCALE-Sim never waited (8192 kB SRAMs) the cycles are
    SCALE-Sim's."""
    data = json.loads((REFS / "scalesim_user_bw_refs.json").read_text())
    exact = 0
    for i, r in enumerate(x for x in data["records"] if x["status"] == "ok"):
        c = r["cfg"]
        cfg = tmp_path / f"user{i}.cfg"
        cfg.write_text(data["config_template"].format(run_name=f"user{i}", bw=c["bw_words_per_cycle"],
                                                      **{k: v for k, v in c.items() if k != "bw_words_per_cycle"}))
        row = GemmRow("L", r["gemm_M"], r["gemm_N"], r["gemm_K"]) if r["input_mode"] == "gemm" else \
            ConvRow("L", *(r[k] for k in ("ifmap_h", "ifmap_w", "filt_h", "filt_w", "channels", "num_filt", "stride")))
        topo = tmp_path / f"user{i}.csv"
        topo.write_text(format_topology(r["input_mode"], [row]))
        via_cfg = nvmc.compile(topo, cfg).estimate
        sets = [f"array.size={c['rows']}x{c['cols']}", f"array.dataflow={c['df']}", "interface.mode=user",
                f"interface.bandwidth_words_per_cycle={c['bw_words_per_cycle']}", "buffers.activations=dram",
                *(f"{b}_buffer.capacity={c[f'{b}_kb']}KiB" for b in ("ifmap", "filter", "ofmap"))]
        via_sets = nvmc.compile(topo, "systolic-sram-28nm", sets=sets).estimate
        assert via_cfg.totals == via_sets.totals and via_cfg.events.keys() == via_sets.events.keys()
        assert all(np.array_equal(via_cfg.events[k], via_sets.events[k]) for k in via_cfg.events), r["run_id"]
        if r["stall_cycles"] == 0 and c["ifmap_kb"] == 8192:
            assert int(via_cfg.events["array_cycles"][0]) == r["total_cycles"], r["run_id"]
            exact += 1
    assert exact >= 10


@pytest.mark.parametrize("edit, message", [
    (("ArrayHeight:    32", "ArrayHieght:    32"), "missing key 'ArrayHeight' — did you mean 'arrayhieght'?"),
    (("Dataflow : os", "Dataflow : xs"), "Dataflow = 'xs': expected os, ws or is"),
    (("IfmapSramSzkB:   8192", "IfmapSramSzkB:   -3"), "IfmapSramSzkB = -3: must be at least 1"),
    (("ArrayWidth:     32", "ArrayWidth:     32.5"), "ArrayWidth = '32.5': expected a whole number"),
    (("SparsitySupport : false", "SparsitySupport : true"), "nvmc does not model SCALE-Sim's structured-sparsity"),
    (("UseRamulatorTrace: False", "UseRamulatorTrace: True"), "nvmc does not model Ramulator DRAM traces"),
    (("[run_presets]", "[run_presets]\n[run_presets]"), "INI syntax"),
    (("InterfaceBandwidth: CALC", "InterfaceBandwidth: FAST"), "expected CALC or USER"),
])
def test_bad_configs_are_one_clear_error(tmp_path, edit, message):
    path = cfg_file(tmp_path, 32, 32, "os")
    path.write_text(path.read_text().replace(*edit))
    proc = run_nvmc("compile", str(MODELS / "tiny_cnn.onnx"), "--target", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(f"error: {path}") and message in proc.stderr, proc.stderr


def test_config_base_must_be_systolic_and_exist(tmp_path):
    with pytest.raises(TargetError, match="family 'gpu-llc'; a SCALE-Sim config describes a systolic array"):
        load_scalesim_config(f"{UPSTREAM / 'scale.cfg'}@sram")
    with pytest.raises(TargetError, match="SCALE-Sim config not found"):
        load_scalesim_config(tmp_path / "nothing.cfg")


# ------------------------------------------------------------------ config + topology -> SCALE-Sim's cycles
def test_resnet50_topology_and_config_give_scalesim_cycles(tmp_path):
    """Acceptance: the 54-layer ResNet-50 topology SCALE-Sim ran at 128x128 os, read by nvmc with
    the same config: every layer's cycles equal SCALE-Sim's."""
    refs = sorted((r for r in ACCEPTANCE if r["group"] == "resnet50_benchmark"), key=lambda r: r["layer_index"])
    got = cycles(REFS / "topo_resnet50_all.csv", cfg_file(tmp_path, 128, 128, "os"))
    assert list(got) == [r["layer"] for r in refs] and len(refs) == 54
    assert [got[r["layer"]] for r in refs] == [r["compute_cycles"] for r in refs]


@pytest.mark.parametrize("array", [32, 128])
@pytest.mark.parametrize("df", ["os", "ws", "is"])
def test_upstream_resnet18_alexnet_topologies_give_scalesim_cycles(tmp_path, array, df):
    records = [r for r in ACCEPTANCE if r["group"] != "resnet50_benchmark" and r["array_rows"] == array
               and r["dataflow"] == df and r["status"] == "ok"]
    cfg = cfg_file(tmp_path, array, array, df)
    got = {net: cycles(UPSTREAM / f"{net}.csv", cfg) for net in ("Resnet18", "alexnet")}
    compared = 0
    for r in records:
        for layer in r["layers"]:
            net, name = layer.split(":")
            assert got["Resnet18" if net == "resnet18" else "alexnet"][name] == r["compute_cycles"], (layer, r["run_id"])
            compared += 1
    assert compared >= 20   # 25 layers per (array, dataflow), less the runs SCALE-Sim did not finish


def test_every_recorded_single_layer_run_reads_back_to_its_cycles(tmp_path):
    """Every finished run of scalesim_refs.json (8x8 to 128x128, 16x8, conv and GEMM mode): its
    topology rebuilt from the record and its config from the template give SCALE-Sim's cycles."""
    groups: dict[tuple, list] = {}
    for r in SUITE:
        if r["status"] == "ok":
            groups.setdefault((r["array_rows"], r["array_cols"], r["dataflow"], r["input_mode"]), []).append(r)
    compared = 0
    for (rows, cols, df, mode), recs in groups.items():
        folder = tmp_path / f"{rows}x{cols}_{df}_{mode}"
        folder.mkdir()
        if mode == "gemm":
            made = [GemmRow(f"{r['run_id']}#{r['layer_index']}", r["gemm_M"], r["gemm_N"], r["gemm_K"]) for r in recs]
        else:
            made = [ConvRow(f"{r['run_id']}#{r['layer_index']}", r["ifmap_h"], r["ifmap_w"], r["filt_h"], r["filt_w"],
                            r["channels"], r["num_filt"], r["stride"]) for r in recs]
        topo = folder / "topo.csv"
        topo.write_text(format_topology(mode, made))
        got = cycles(topo, cfg_file(folder, rows, cols, df))
        for row, r in zip(made, recs):
            assert got[row.name] == r["compute_cycles"], r["run_id"]
            compared += 1
    assert compared == 70


# ------------------------------------------------------------------ topology -> nvmc -> topology
@pytest.mark.parametrize("name", ["topo_resnet50_all.csv", "upstream/Resnet18.csv", "upstream/alexnet.csv"])
def test_topology_round_trips(tmp_path, name):
    src = REFS / name
    out = tmp_path / "back.csv"
    run_nvmc("export", str(src), "--scalesim-topology", str(out), check=True)
    assert fields(out) == fields(src)
    lines = [line for line in src.read_text().splitlines()[1:] if line.strip()]
    if name != "upstream/alexnet.csv":   # alexnet pads its cells with spaces; SCALE-Sim strips them
        assert out.read_text().splitlines()[1:] == lines
    if name == "topo_resnet50_all.csv":
        assert out.read_bytes() == src.read_bytes()


def test_gemm_and_depthwise_rows_round_trip(tmp_path):
    gemm = tmp_path / "gpt.csv"
    # gpt2.csv's style (CRLF, no final newline); 'DP' means nothing to SCALE-Sim's GEMM reader
    gemm.write_bytes(b"Layer,M,N,K,\r\nQKT,1024,1024,64,\r\nLinear1,1024,4800,1600,\r\nFF2_DP,1024,1600,3072,")
    out = tmp_path / "gpt_back.csv"
    run_nvmc("export", str(gemm), "--scalesim-topology", str(out), check=True)
    assert read_topology(out).kind == "gemm" and fields(out) == fields(gemm)
    w = nvmc.analyze(nvmc.load(gemm))
    assert [(int(w.columns["gemm_m"][i]), int(w.columns["gemm_n"][i]), int(w.columns["gemm_k"][i]))
            for i in range(3)] == [(1024, 1024, 64), (1024, 4800, 1600), (1024, 1600, 3072)]
    conv = tmp_path / "dw.csv"
    conv.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\nConv1,225,225,3,3,3,32,2,\nConv2_DP,114,114,3,3,32,2,1,\nConv3,112,112,1,1,64,64,1,2:4,\n")
    back = tmp_path / "dw_back.csv"
    proc = run_nvmc("export", str(conv), "--scalesim-topology", str(back), check=True)
    assert "sparsity ratios read as dense" in proc.stderr and "line 4 (2:4)" in proc.stderr
    assert fields(back) == fields(conv)
    g = nvmc.load(conv)
    dw = g.node("Conv2_DP")
    assert dw.attrs["group"] == 32 and g.type_of(dw.outputs[0]).shape == (1, 64, 112, 112)


def test_scalesim_output_size_rule_is_kept():
    """SCALE-Sim's E = ceil((H - F + s) / s): 224 / 7x7 / s2 -> 110 (floor would give 109)."""
    g = nvmc.load(UPSTREAM / "Resnet18.csv")
    w = nvmc.analyze(g)
    for i, row in enumerate(read_topology(UPSTREAM / "Resnet18.csv").rows):
        mnk = (int(w.columns["gemm_m"][i]), int(w.columns["gemm_n"][i]), int(w.columns["gemm_k"][i]))
        assert mnk == smap.conv_gemm_scalesim(*row.fields()[1:]), row.name
    assert g.type_of(g.node("Conv1").outputs[0]).shape == (1, 64, 110, 110)
    assert g.node("Conv1").attrs["pads"] == [0, 0, 1, 1]   # the window SCALE-Sim hangs over the edge


def test_ifmap_extent_rule():
    def e(h, f, s):
        return math.ceil((h - f + s) / s)

    assert conv_ifmap_extent(224 + 3, 112, 7, 2) == 228          # ResNet stem, pads 3: 230 would give 113
    assert conv_ifmap_extent(56 + 1, 56, 3, 1) == 58             # "same" 3x3
    assert conv_ifmap_extent(56, 28, 1, 2) == 55                 # 1x1 stride 2: 56 would give 29
    rng = np.random.default_rng(0)
    for _ in range(2000):
        f, s = int(rng.integers(1, 8)), int(rng.integers(1, 5))
        h = int(rng.integers(f, 80))
        assert conv_ifmap_extent(h, e(h, f, s), f, s) == h          # a SCALE-Sim row keeps its size
        x, out = int(rng.integers(0, 90)), int(rng.integers(1, 30))
        assert e(conv_ifmap_extent(x, out, f, s), f, s) == out      # any input: SCALE-Sim's size is nvmc's


@pytest.mark.parametrize("text, message, where", [
    ("Conv1,224,224,7,7,3,64,2\n", "does not end with a comma", ":2:25"),
    ("Conv1,224,224,7,7,abc,64,2,\n", "Channels = 'abc': expected a whole number", ":2:19"),
    ("Conv1,224,224,7,7,3,0,2,\n", "Num Filter = 0: must be at least 1", ":2:21"),
    ("Conv1,5,224,7,7,3,64,2,\n", "Filter Height = 7 is larger than IFMAP Height = 5", ":2:"),
    ("Conv1,224,224,7,7,3,64,2,,,110,\n", "11 fields", ":2:"),
    ("Conv1,224,224,7,7,3,64,2,x:y,\n", "sparsity ratio 'x:y'", ":2:26"),
    ("", "no layers", ""),
])
def test_bad_topology_rows_are_located(tmp_path, text, message, where):
    path = tmp_path / "bad.csv"
    path.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
                    "Strides,\n" + text)
    proc = run_nvmc("compile", str(path), "--target", "systolic-sram-28nm")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"error: {path}{where}") and message in first, proc.stderr
    if where:
        assert "^" in proc.stderr   # the row and a caret under the field


def test_upstream_resnet50_with_spreadsheet_columns_is_refused():
    """Upstream Resnet50.csv has 5 extra columns and an empty row: SCALE-Sim cannot read it either."""
    proc = run_nvmc("analyze", str(UPSTREAM / "Resnet50.csv"))
    assert proc.returncode == 2 and "Resnet50.csv:2:" in proc.stderr and "fields" in proc.stderr
    proc = run_nvmc("compile", str(REFS / "topo_resnet50_all.csv"), "--target", "sram",
                    "--input-shape", "x=1x3x8x8")
    assert proc.returncode == 2 and "a SCALE-Sim topology's layers have fixed sizes" in proc.stderr


# ------------------------------------------------------------------ model -> topology / Timeloop
def _conv_model(tmp_path, name="m", *, x=(1, 8, 56, 56), w=(16, 8, 3, 3), **attrs) -> Path:
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "c", "h", "w"])   # inferred on import
    node = helper.make_node("Conv", ["x", "w"], ["y"], name=name, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x)], [y],
                              [helper.make_tensor("w", TensorProto.FLOAT, w, np.ones(w, np.float32).ravel())])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


@pytest.mark.parametrize("attrs, x, w, rows", [
    (dict(pads=[3, 3, 3, 3], strides=[2, 2]), (1, 3, 224, 224), (64, 3, 7, 7), [("m", 228, 228, 7, 7, 3, 64, 2)]),
    (dict(pads=[1, 1, 1, 1]), (1, 8, 56, 56), (16, 8, 3, 3), [("m", 58, 58, 3, 3, 8, 16, 1)]),
    (dict(strides=[2, 2]), (1, 8, 56, 56), (16, 8, 1, 1), [("m", 55, 55, 1, 1, 8, 16, 2)]),
    (dict(group=2, pads=[1, 1, 1, 1]), (1, 8, 14, 14), (6, 4, 3, 3),
     [("m_g0", 16, 16, 3, 3, 4, 3, 1), ("m_g1", 16, 16, 3, 3, 4, 3, 1)]),
    (dict(group=8, pads=[1, 1, 1, 1]), (1, 8, 14, 14), (16, 1, 3, 3), [("m_DP", 16, 16, 3, 3, 8, 2, 1)]),
    # SAME_UPPER: output 8, padding 1 + 1; 15 + 1 leading = 16 already gives SCALE-Sim's ceil(15 / 2) = 8
    (dict(auto_pad="SAME_UPPER", strides=[2, 2]), (1, 8, 15, 15), (16, 8, 3, 3), [("m", 16, 16, 3, 3, 8, 16, 2)]),
])
def test_conv_layers_export_with_nvmc_shapes(tmp_path, attrs, x, w, rows):
    g = nvmc.load(_conv_model(tmp_path, x=x, w=w, **attrs))
    kind, got, notes = scalesim_rows(g)
    assert kind == "conv" and [r.row.fields() for r in got] == rows
    # a DP row's M, N, K (Channels as K) hold all its single-channel layers' MACs
    assert sum(math.prod(smap.conv_gemm_scalesim(*r.row.fields()[1:])) for r in got) == \
        int(nvmc.analyze(g).totals["macs"])


def test_strides_dilations_batches_and_names(tmp_path):
    g = nvmc.load(_conv_model(tmp_path, "odd,DP\nname", x=(1, 8, 20, 20), w=(4, 8, 3, 3), strides=[2, 1],
                              dilations=[1, 2]))
    _, rows, notes = scalesim_rows(g)
    (r,) = rows
    assert r.row.name == "odd_Dp_name" and r.row.stride == 2
    w = nvmc.analyze(g)
    assert smap.conv_gemm_scalesim(*r.row.fields()[1:]) == (int(w.columns["gemm_m"][0]), 4, 72)
    assert any("odd" in n and "written otherwise" in n for n in notes)
    assert any("SCALE-Sim's addresses are not those layers' own" in n for n in notes)
    batch = nvmc.load(_conv_model(tmp_path, x=(2, 8, 8, 8), w=(4, 8, 1, 1)))
    with pytest.raises(NvmcError, match="batch 2: a SCALE-Sim conv row has batch 1"):
        scalesim_rows(batch, "conv")
    kind, rows, _ = scalesim_rows(batch, "gemm")
    assert kind == "gemm" and [r.row.fields()[1:] for r in rows] == [(128, 4, 8)]


def test_exported_topologies_cost_what_the_model_costs(tmp_path):
    """Model -> topology -> nvmc: per node, the rows' cycles sum to the model's (all dataflows)."""
    for model in ("tiny_cnn", "tiny_transformer"):
        g = nvmc.load(MODELS / f"{model}.onnx")
        out = tmp_path / f"{model}.csv"
        proc = run_nvmc("export", str(MODELS / f"{model}.onnx"), "--scalesim-topology", str(out), check=True)
        assert f"wrote {out}" in proc.stderr
        _, rows, _ = scalesim_rows(g)
        for df in ("os", "ws", "is"):
            sets = ["array.size=8x8", f"array.dataflow={df}"]
            a = nvmc.compile(g, "systolic-sram-28nm", sets=sets).estimate
            b = nvmc.compile(out, "systolic-sram-28nm", sets=sets).estimate
            want = dict(zip(a.names, a.events["array_cycles"]))
            summed: dict[str, float] = {}
            for r, c in zip(rows, b.events["array_cycles"]):
                summed[r.node] = summed.get(r.node, 0) + c
            assert summed == {n: want[n] for n in summed} and len(summed) == int((a.macs > 0).sum())


def test_timeloop_problems(tmp_path):
    g = nvmc.load(MODELS / "resnet50.onnx")
    folder = tmp_path / "tl"
    proc = run_nvmc("export", str(MODELS / "resnet50.onnx"), "--timeloop-dir", str(folder), check=True)
    assert "54 files and layers.csv" in proc.stderr
    found, _ = layers(g)
    files = sorted(folder.glob("*.yaml"))
    assert len(files) == len(found) == 54
    w = nvmc.analyze(g)
    macs = dict(zip(w.names, w.columns["macs"]))
    total = 0
    for path, layer in zip(files, found):
        doc = yaml.safe_load(path.read_text())["problem"]
        assert doc["shape"]["dimensions"] == ["C", "M", "R", "S", "N", "P", "Q"]
        assert doc["shape"]["data-spaces"][1]["projection"][2] == [["R", "Wdilation"], ["P", "Wstride"]]
        inst = doc["instance"]
        assert inst == timeloop_instance(layer)
        n = int(np.prod([inst[d] for d in "CMRSNPQ"])) * layer.repeat
        assert n == macs[layer.node]
        total += n
    assert total == int(w.columns["macs"][w.columns["macs"] > 0].sum())
    stem = yaml.safe_load((folder / "000_n0.yaml").read_text())["problem"]["instance"]
    assert (stem["P"], stem["Q"], stem["R"], stem["S"], stem["Wstride"], stem["C"], stem["M"]) == (112, 112, 7, 7,
                                                                                                   2, 3, 64)
    index = (folder / "layers.csv").read_text().splitlines()
    assert index[0].startswith("file,node,op,repeat,C,M,R,S,N,P,Q") and len(index) == 55


def test_timeloop_grouped_gemm_and_odd_names(tmp_path):
    g = nvmc.load(MODELS / "tiny_cnn.onnx")
    written, _ = write_timeloop_dir(g, tmp_path / "tl")
    dw = yaml.safe_load((tmp_path / "tl" / "002_dwconv.yaml").read_text())
    assert dw["problem"]["instance"]["C"] == 1 and "runs 16 times (groups" in (tmp_path / "tl" / "002_dwconv.yaml"
                                                                                ).read_text().splitlines()[0]
    fc = yaml.safe_load((tmp_path / "tl" / "003_fc.yaml").read_text())["problem"]["instance"]
    assert (fc["C"], fc["M"], fc["N"], fc["P"], fc["R"]) == (16, 10, 1, 1, 1)
    odd = nvmc.load(_conv_model(tmp_path, "a\nproblem: {}\n#x", x=(1, 2, 4, 4), w=(2, 2, 1, 1)))
    path = write_timeloop_dir(odd, tmp_path / "odd")[0][0]
    doc = yaml.safe_load(path.read_text())   # the name is one escaped comment line, not YAML
    assert doc["problem"]["instance"]["C"] == 2 and path.name == "000_a_problem_x.yaml"


def test_export_cli_refuses_bad_requests(tmp_path):
    src = tmp_path / "t.csv"
    src.write_bytes((REFS / "topo_resnet50_all.csv").read_bytes())
    for args, message in ((["--scalesim-topology", str(src)], "would overwrite the input"),
                          ([], "nothing to write"),
                          (["--timeloop-dir", str(src)], "names a file, not a directory"),
                          (["--timeloop-dir", str(tmp_path / "no" / "such")], "")):
        proc = run_nvmc("export", str(src), *args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr and message in proc.stderr, (args, proc.stderr)
    assert src.read_bytes() == (REFS / "topo_resnet50_all.csv").read_bytes()


# ------------------------------------------------------------------ nvmc's topology, run by SCALE-Sim
def test_exported_topologies_ran_in_scalesim_with_nvmc_cycles():
    """The topologies nvmc writes ran in SCALE-Sim 3.0.0 unchanged (run_exported.py); nvmc's
    per-node cycles on the same config equal the sum of SCALE-Sim's layers of that node."""
    data = json.loads(EXPORTED.read_text())
    ok = [r for r in data["records"] if r["status"] == "ok"]
    assert len(ok) == len(data["records"]) == 14   # 2 arrays x 3 dataflows x 2 small models, ResNet-50 os and ws
    assert {r["model"] for r in ok} == {"tiny_cnn", "tiny_transformer", "resnet50"}
    graphs = {}
    compared = 0
    for r in ok:
        topo, cfg = REFS / r["topology_file"], REFS / r["config_file"]
        assert hashlib.sha256(topo.read_bytes()).hexdigest() == r["topology_sha256"]
        assert hashlib.sha256(cfg.read_bytes()).hexdigest() == r["config_sha256"]
        if r["model"] not in graphs:
            graphs[r["model"]] = nvmc.load(MODELS / f"{r['model']}.onnx")
            kind, rows, _ = scalesim_rows(graphs[r["model"]])
            assert format_topology(kind, [x.row for x in rows]) == topo.read_text()   # still what SCALE-Sim ran
            graphs[r["model"]] = (graphs[r["model"]], rows)
        graph, rows = graphs[r["model"]]
        scalesim = iter(r["layers"])
        summed: dict[str, int] = {}
        for row in rows:
            for i in range(row.expands):
                layer = next(scalesim)
                assert layer["name"] == (row.row.name if row.expands == 1 else f"{row.row.name}Channel_{i}")
                assert layer["stall_cycles"] == 0
                summed[row.node] = summed.get(row.node, 0) + layer["compute_cycles"]
        assert next(scalesim, None) is None
        got = cycles(graph, cfg)
        assert summed == {n: got[n] for n in summed}, r["run_id"]
        compared += len(summed)
    assert compared == 4 * 6 + 8 * 6 + 54 * 2   # (nodes x runs): every exported node of every run


def test_timeloop_dir_refuses_before_writing_anything(tmp_path):
    # a name in the folder that is the input, or a device, stops the export before its first file
    import shutil

    topo = tmp_path / "layers.csv"
    shutil.copy(REPO / "tests" / "data" / "refs" / "scalesim" / "upstream" / "Resnet18.csv", topo)
    r = run_nvmc("export", str(topo), "--timeloop-dir", str(tmp_path))
    assert r.returncode == 2 and "would overwrite the input" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layers.csv"]
    out = tmp_path / "d"
    out.mkdir()
    os.mknod(out / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    (out / "layers.csv").symlink_to(out / "null")
    r = run_nvmc("export", str(topo), "--timeloop-dir", str(out))
    assert r.returncode == 2 and "character device" in r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["layers.csv", "null"]
