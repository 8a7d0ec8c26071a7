"""``array.dataflow = "auto"`` in the systolic family (backends/systolic.py, choose_dataflow).

Issue 26, acceptance 2: auto is never slower per layer than the best fixed dataflow, and reports
its choice. Auto costs os, ws and is with the code a fixed dataflow runs and keeps, per node, the
fastest (ties: the lower energy, then os, ws, is), so every per-node number of an auto estimate is
*exactly* (bit for bit) the one the chosen fixed-dataflow estimate gives for that node: latency,
energy by component, busy times, cycles, stalls, buffer and DRAM traffic. Checked on ResNet-50, the
tiny transformer and a chain of 1x1 convs, in CALC and USER interface mode, at the shipped 16x16
array and at 128x128; then through the CLI, and against the SCALE-Sim config reader (a .cfg names
one of os / ws / is; auto is nvmc's own).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import nvmc
from conftest import run_nvmc
from nvmc.backends import estimate, load_target
from nvmc.backends.errors import TargetError
from nvmc.backends.scalesim_config import load_scalesim_config
from nvmc.backends.systolic_map import DATAFLOWS
from nvmc.ir.kinds import KIND

MODELS = Path(__file__).resolve().parents[1] / "examples" / "models"
UPSTREAM = Path(__file__).parent / "data" / "refs" / "scalesim" / "upstream"
TARGET = "systolic-sram-28nm"
MODES = {"calc": [], "user": ["interface.mode=user"]}


def pointwise_model() -> onnx.ModelProto:
    """A 1x1-conv-heavy net: seven pointwise convs (two strided) alternating wide and narrow,
    so the GEMMs range from tall and thin (M = 3136, K = 16) to short and wide (K = 2048)."""
    rng = np.random.default_rng(0)
    chans = [(16, 512, 1), (512, 32, 1), (32, 256, 2), (256, 1024, 1), (1024, 64, 1), (64, 2048, 2), (2048, 16, 1)]
    nodes, inits, x, hw = [], [], "x", 56
    for i, (cin, cout, stride) in enumerate(chans):
        w = (rng.standard_normal((cout, cin, 1, 1)) / np.sqrt(cin)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], kernel_shape=[1, 1], strides=[stride] * 2))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        x, hw = f"r{i}", -(-hw // stride)
    graph = helper.make_graph(nodes, "pointwise", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 56, 56])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, chans[-1][1], hw, hw])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@lru_cache(maxsize=None)
def workload(name: str):
    model = pointwise_model() if name == "pointwise" else MODELS / f"{name}.onnx"
    return nvmc.analyze(nvmc.load(model))


def estimates(name: str, sets: tuple[str, ...]):
    """(the three fixed-dataflow estimates in DATAFLOWS order, the auto estimate)."""
    w = workload(name)
    fixed = [estimate(w, load_target(TARGET, [f"array.dataflow={df}", *sets])) for df in DATAFLOWS]
    return fixed, estimate(w, load_target(TARGET, ["array.dataflow=auto", *sets]))


def chosen(fixed, per_node, choice):
    """Per node, ``per_node(estimate)`` of the fixed estimate ``choice`` names."""
    return np.stack([per_node(e) for e in fixed])[choice, np.arange(choice.size)]


# ------------------------------------------------------------------ the acceptance
@pytest.mark.parametrize("size", ["16x16", "128x128"])
@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("name", ["resnet50", "tiny_transformer", "pointwise"])
def test_auto_is_the_fastest_fixed_dataflow_of_every_layer(name, mode, size):
    fixed, auto = estimates(name, (f"array.size={size}", *MODES[mode]))
    mac = workload(name).columns["kind"] == KIND["mac"]
    latency = np.stack([e.node_latency for e in fixed])
    # never slower per layer than the best fixed dataflow: exactly its latency (the same code computed it)
    assert np.array_equal(auto.node_latency, latency.min(axis=0))

    # the choice, per MAC node; other nodes are on no dataflow (NaN, null in JSON)
    code = auto.events["dataflow"]
    assert np.isnan(code[~mac]).all() and set(np.unique(code[mac])) <= {0.0, 1.0, 2.0}
    choice = np.where(mac, code, 0).astype(int)       # a node off the array is the same on all three
    # the rule: among the fastest, the lowest energy, then the first of os, ws, is
    energy = np.stack([e.node_energy for e in fixed])
    fastest = latency == latency.min(axis=0)
    least = np.where(fastest, energy, np.inf).min(axis=0)
    first_least = np.argmax(fastest & (energy <= least * (1 + 1e-12)), axis=0)
    assert np.array_equal(choice, first_least)

    # everything per node is the chosen fixed dataflow's, bit for bit
    assert np.array_equal(auto.node_energy, chosen(fixed, lambda e: e.node_energy, choice))
    for channel in ("energy", "latency", "events"):
        keys = set(getattr(auto, channel)) - {"dataflow"}
        assert keys == set(getattr(fixed[0], channel)), channel
        for k in keys:
            assert np.array_equal(getattr(auto, channel)[k], chosen(fixed, lambda e: getattr(e, channel)[k], choice)), k

    # totals: the sum of the chosen layers', never above the best fixed dataflow's
    totals = {d: e.totals for d, e in zip(DATAFLOWS, fixed)}
    assert auto.totals["latency_s"] <= min(t["latency_s"] for t in totals.values())
    assert auto.totals["energy_j"] == pytest.approx(float(chosen(fixed, lambda e: e.node_energy, choice).sum()),
                                                    rel=1e-12)
    assert auto.totals["macs"] == fixed[0].totals["macs"] and auto.area == fixed[0].area
    for k in ("array_cycles", "stall_cycles", "dram_read_bytes", "dram_write_bytes"):
        assert auto.events_total()[k] == pytest.approx(sum(float(fixed[c].events[k][i]) for i, c in enumerate(choice)),
                                                       rel=1e-12)

    # the report: info, the note with the count per dataflow, the fixed dataflows' totals
    counts = np.bincount(choice[mac], minlength=3)
    assert auto.info["dataflow"] == "auto"
    assert auto.info["dataflow_nodes"] == dict(zip(DATAFLOWS, counts.tolist()))
    for d in DATAFLOWS:
        assert auto.info["dataflow_fixed_latency_s"][d] == pytest.approx(totals[d]["latency_s"], rel=1e-12)
    note = next(n for n in auto.notes if n.startswith("auto dataflow: "))
    assert note.startswith(f"auto dataflow: {counts[0]} os, {counts[1]} ws, {counts[2]} is (of {int(mac.sum())} MAC")
    best = min(DATAFLOWS, key=lambda d: totals[d]["latency_s"])
    assert f"with the best single dataflow ({best})" in note


@pytest.mark.parametrize("mode", sorted(MODES))
def test_every_entry_of_the_auto_table_is_the_chosen_dataflows(mode):
    """The family's per-node table (systolic_traffic.traffic: traffic, USER-mode refills, folds and
    PEs used, for the mapping record) under auto is, entry by entry, the chosen dataflow's."""
    from nvmc.backends import systolic
    from nvmc.backends.systolic_traffic import operands, traffic

    w = workload("resnet50")
    p = systolic.SPEC.params(load_target(TARGET, ["array.dataflow=auto", "array.size=32x32", *MODES[mode]]))
    chip = systolic.resolve(p)
    s = operands(w, p, chip)
    table, choice, _ = systolic.choose_dataflow(p, chip, s)
    tables = [traffic(s, p, chip, df) for df in DATAFLOWS]
    assert len(set(choice.tolist())) >= 2

    def same(got, options, key):
        if isinstance(got, dict):
            for k in got:
                same(got[k], [o[k] for o in options], f"{key}.{k}")
        elif isinstance(got, np.ndarray):
            assert np.array_equal(got, np.stack(options)[choice, np.arange(choice.size)]), key
        else:
            assert all(o == got for o in options), key

    assert table.keys() == tables[0].keys() and {"row_folds", "col_folds", "pes_used"} <= set(table)
    for key in table:
        same(table[key], [t[key] for t in tables], key)


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("size", ["16x16", "128x128"])
def test_auto_saves_on_resnet50_by_mixing_dataflows(mode, size):
    """ResNet-50's layers do not all prefer one dataflow: auto beats the best single one."""
    fixed, auto = estimates("resnet50", (f"array.size={size}", *MODES[mode]))
    assert auto.totals["latency_s"] < min(e.totals["latency_s"] for e in fixed)
    assert sum(1 for k in auto.info["dataflow_nodes"].values() if k) >= 2


def test_fixed_dataflows_report_no_choice():
    fixed, _ = estimates("pointwise", ())
    for df, e in zip(DATAFLOWS, fixed):
        assert e.info["dataflow"] == df and "dataflow" not in e.events and "dataflow_nodes" not in e.info
        assert not any(n.startswith("auto dataflow") for n in e.notes)


def test_idle_leakage_follows_auto_latency_and_the_choice_stays():
    """With a required rate the idle leakage is spread over auto's own latency; the choice and
    every other number are still the chosen fixed dataflow's."""
    rate = ("operation.inferences_per_s=20", "buffers.power_gating=off")
    fixed, auto = estimates("pointwise", rate)
    _, plain = estimates("pointwise", ())
    assert np.array_equal(auto.events["dataflow"], plain.events["dataflow"], equal_nan=True)
    choice = np.nan_to_num(auto.events["dataflow"]).astype(int)
    assert np.array_equal(auto.node_latency, np.stack([e.node_latency for e in fixed]).min(axis=0))
    for k in set(auto.energy) - {"idle_leakage"}:
        assert np.array_equal(auto.energy[k], chosen(fixed, lambda e: e.energy[k], choice)), k
    period = 1 / 20
    idle_w = auto.info["idle_leakage_w"]
    assert auto.energy["idle_leakage"].sum() == pytest.approx(idle_w * (period - auto.totals["latency_s"]), rel=1e-9)


# ------------------------------------------------------------------ the CLI
def test_compile_and_explain_from_the_cli(tmp_path):
    report, table = tmp_path / "r.json", tmp_path / "r.csv"
    proc = run_nvmc("compile", str(MODELS / "resnet50.onnx"), "--target", TARGET, "--set", "array.dataflow=auto",
                    "--json", str(report), "--csv", str(table), check=True)
    assert "Traceback" not in proc.stderr
    _, auto = estimates("resnet50", ())            # the same estimate, in process
    note = next(n for n in auto.notes if n.startswith("auto dataflow: "))
    assert note.split(";")[0] in proc.stdout      # "auto dataflow: 46 os, 0 ws, 8 is (of 54 MAC nodes"
    data = json.loads(report.read_text())
    assert data["target"]["dataflow"] == "auto"
    assert data["target"]["dataflow_nodes"] == auto.info["dataflow_nodes"]
    assert sum(auto.info["dataflow_nodes"].values()) == 54          # 53 convs and the classifier
    assert all(row["dataflow"] in (0, 1, 2) for row in data["layers"] if row["op"] in ("Conv", "Gemm"))
    assert all(row["dataflow"] is None for row in data["layers"] if row["op"] in ("Relu", "Add", "MaxPool"))
    assert [row["dataflow"] for row in data["layers"]] == \
        [None if np.isnan(c) else int(c) for c in auto.events["dataflow"]]
    assert "dataflow" in table.read_text().splitlines()[0].split(",")

    short = run_nvmc("compile", str(MODELS / "tiny_transformer.onnx"), "--target", TARGET, "--set", "dataflow=auto",
                     check=True)
    assert "auto dataflow: " in short.stdout   # the --set alias

    explain = run_nvmc("explain", "--target", TARGET, "--set", "array.dataflow=auto", "--json", check=True)
    params = {p["key"]: p for p in json.loads(explain.stdout)["parameters"]}
    assert params["array.dataflow"]["value"] == "auto"
    text = run_nvmc("explain", "--target", TARGET, "--set", "array.dataflow=auto", check=True).stdout
    assert any(line.split()[:2] == ["array.dataflow", "auto"] for line in text.splitlines())


def test_a_bad_dataflow_names_auto_among_the_choices():
    proc = run_nvmc("compile", str(MODELS / "tiny_cnn.onnx"), "--target", TARGET, "--set", "array.dataflow=best")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "expected one of 'os', 'ws', 'is', 'auto'" in proc.stderr


# ------------------------------------------------------------------ SCALE-Sim configs
def _cfg(tmp_path: Path, dataflow: str) -> Path:
    lines = (UPSTREAM / "scale.cfg").read_text().splitlines()
    at = [i for i, line in enumerate(lines) if line.replace(" ", "").lower().startswith("dataflow:")]
    assert len(at) == 1
    lines[at[0]] = f"Dataflow : {dataflow}"
    path = tmp_path / f"df_{dataflow}.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_a_scalesim_config_still_maps_its_dataflow(tmp_path, dataflow):
    target = load_scalesim_config(_cfg(tmp_path, dataflow))
    assert target["array.dataflow"] == dataflow


def test_a_scalesim_config_cannot_say_auto(tmp_path):
    """SCALE-Sim has no such dataflow: a config that names it is refused, as any other unknown one;
    nvmc's own --set may still ask for auto on the array a config describes."""
    path = _cfg(tmp_path, "auto")
    with pytest.raises(TargetError, match="Dataflow = 'auto': expected os, ws or is"):
        load_scalesim_config(path)
    proc = run_nvmc("compile", str(MODELS / "tiny_cnn.onnx"), "--target", str(path))
    assert proc.returncode == 2 and "Dataflow = 'auto': expected os, ws or is" in proc.stderr
    est = nvmc.compile(MODELS / "tiny_cnn.onnx", UPSTREAM / "scale.cfg", sets=["array.dataflow=auto"]).estimate
    assert est.info["dataflow"] == "auto" and est.info["array"] == "32x32"
    assert any("array.dataflow from --set" in n for n in est.notes)
